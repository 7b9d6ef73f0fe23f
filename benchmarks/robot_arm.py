"""A small analytic inverse problem: a planar three-link robot arm, joint angles to end point.

Links of 1.0, 0.8 and 0.6 m (base at the origin) turn by joint angles `theta1` (shoulder,
0-180 degrees from the x axis), `theta2` and `theta3` (elbow and wrist, -150 to 150 degrees,
relative to the previous link). The end point is::

    end_x = sum_k l_k cos(theta1 + ... + theta_k),    end_y = sum_k l_k sin(theta1 + ... + theta_k)

Exact forward kinematics (no simulator error); with a generator, 2 mm of Gaussian noise is added
to each coordinate. Many joint configurations reach the same point, so the inverse problem has a
whole curve of solutions: a good test of `n` distinct designs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from data.core import parameter_arrays

LINKS_M = (1.0, 0.8, 0.6)
NOISE_M = 0.002


def config() -> dict[str, Any]:
    """Return a fresh campaign config dict: bring the end point to (1.2, 0.9) m."""
    return {
        "name": "robot_arm",
        "seed": 0,
        "parameters": [
            {"name": "theta1_deg", "type": "continuous", "bounds": [0.0, 180.0]},
            {"name": "theta2_deg", "type": "continuous", "bounds": [-150.0, 150.0]},
            {"name": "theta3_deg", "type": "continuous", "bounds": [-150.0, 150.0]},
        ],
        "constraints": [],
        "objectives": [
            {"name": "end_x", "goal": "target", "target": 1.2},
            {"name": "end_y", "goal": "target", "target": 0.9},
        ],
        "safety": [],
        "surrogate": {"kind": "gp"},
    }


def simulate(designs_df: pd.DataFrame, rng: np.random.Generator | None = None) -> pd.DataFrame:
    """End point of the arm for each row of joint angles.

    Example:
        >>> simulate(pd.DataFrame({"theta1_deg": [90.0], "theta2_deg": [0.0], "theta3_deg": [0.0]})).round(6)
           end_x  end_y
        0    0.0    2.4
    """
    x = parameter_arrays(designs_df, config())
    angle = np.zeros(len(designs_df))
    end_x, end_y = np.zeros(len(designs_df)), np.zeros(len(designs_df))
    for length, name in zip(LINKS_M, ("theta1_deg", "theta2_deg", "theta3_deg"), strict=True):
        angle = angle + np.deg2rad(x[name])
        end_x += length * np.cos(angle)
        end_y += length * np.sin(angle)
    if rng is not None:
        end_x += NOISE_M * rng.standard_normal(len(end_x))
        end_y += NOISE_M * rng.standard_normal(len(end_y))
    return pd.DataFrame({"end_x": end_x, "end_y": end_y}, index=designs_df.index)


def generate_dataset(n: int, seed: int = 0) -> pd.DataFrame:
    """`n` uniformly random joint configurations and their exact end points."""
    rng = np.random.default_rng(seed)
    designs_df = pd.DataFrame(
        {p["name"]: rng.uniform(p["bounds"][0], p["bounds"][1], size=n) for p in config()["parameters"]}
    )
    return pd.concat([designs_df, simulate(designs_df)], axis=1)


# The benchmark arm of Ardizzone et al. (2019) and Kruse et al. (2021), with the priors of Ren et al. (2020).
BENCHMARK_LINKS = (0.5, 0.5, 1.0)
BENCHMARK_PRIOR_SD = (0.25, 0.5, 0.5, 0.5)  # x1 (rail height) and the three joint angles x2..x4 (rad)
BENCHMARK_PARAMETERS = ("x1", "x2", "x3", "x4")
BENCHMARK_OUTCOMES = ("y1", "y2")


def benchmark_bounds() -> list[tuple[float, float]]:
    """The box of the benchmark arm: each prior's mean +- 3 standard deviations."""
    return [(-3.0 * s, 3.0 * s) for s in BENCHMARK_PRIOR_SD]


def benchmark_simulate(designs_df: pd.DataFrame, rng: np.random.Generator | None = None) -> pd.DataFrame:
    """End point of the benchmark arm: a rail at height `x1` and links of 0.5, 0.5 and 1.0 at angles `x2..x4`.

    `y1 = x1 + sum_k l_k sin(x2 + ... + x_{k+1})`, `y2 = sum_k l_k cos(x2 + ... + x_{k+1})`
    (Kruse et al. 2021, eq. 9). Exact; `rng` is accepted for the simulator signature and unused.

    Example:
        >>> benchmark_simulate(pd.DataFrame({"x1": [0.1], "x2": [0.0], "x3": [0.0], "x4": [0.0]})).round(6)
            y1   y2
        0  0.1  2.0
    """
    del rng
    x = designs_df[list(BENCHMARK_PARAMETERS)].to_numpy(dtype=float)
    angle = np.zeros(len(x))
    y1, y2 = x[:, 0].copy(), np.zeros(len(x))
    for k, length in enumerate(BENCHMARK_LINKS):
        angle = angle + x[:, k + 1]
        y1 += length * np.sin(angle)
        y2 += length * np.cos(angle)
    return pd.DataFrame({"y1": y1, "y2": y2}, index=designs_df.index)


def benchmark_dataset(n: int, seed: int = 0) -> pd.DataFrame:
    """`n` designs drawn from the priors (clipped to the box) and their exact end points."""
    rng = np.random.default_rng(seed)
    draws = rng.standard_normal((n, len(BENCHMARK_PRIOR_SD))) * np.asarray(BENCHMARK_PRIOR_SD)
    bounds = np.asarray(benchmark_bounds())
    designs_df = pd.DataFrame(np.clip(draws, bounds[:, 0], bounds[:, 1]), columns=list(BENCHMARK_PARAMETERS))
    return pd.concat([designs_df, benchmark_simulate(designs_df)], axis=1)
