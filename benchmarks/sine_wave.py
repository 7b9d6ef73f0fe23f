"""The sine wave of Ren, Padilla and Malof (NeurIPS 2020): two inputs in [-1, 1], one outcome.

`y = sin(3 pi x1) + cos(3 pi x2)`: a smooth, periodic, many-to-one map (each target value is met
along whole curves of `(x1, x2)`), a standard test of inverse-design methods. Exact; designs are
drawn uniformly from the box.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PARAMETERS = ("x1", "x2")
OUTCOMES = ("y",)
BOUNDS = ((-1.0, 1.0), (-1.0, 1.0))


def simulate(designs_df: pd.DataFrame, rng: np.random.Generator | None = None) -> pd.DataFrame:
    """`y = sin(3 pi x1) + cos(3 pi x2)` for each row; `rng` is accepted for the simulator signature and unused.

    Example:
        >>> simulate(pd.DataFrame({"x1": [0.5 / 3], "x2": [0.0]})).round(6)
             y
        0  2.0
    """
    del rng
    x1, x2 = designs_df["x1"].to_numpy(dtype=float), designs_df["x2"].to_numpy(dtype=float)
    return pd.DataFrame({"y": np.sin(3 * np.pi * x1) + np.cos(3 * np.pi * x2)}, index=designs_df.index)


def generate_dataset(n: int, seed: int = 0) -> pd.DataFrame:
    """`n` designs drawn uniformly from the box and their exact outcomes."""
    rng = np.random.default_rng(seed)
    designs_df = pd.DataFrame({name: rng.uniform(lo, hi, n) for name, (lo, hi) in zip(PARAMETERS, BOUNDS, strict=True)})
    return pd.concat([designs_df, simulate(designs_df)], axis=1)
