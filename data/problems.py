"""Standard constrained benchmark problems from the literature, as bundled systems.

Every problem minimizes its objective; each inequality constraint `g(x) <= 0` becomes a
safety outcome with `"upper": 0.0` (Gardner's `c <= 0.5` keeps its own limit), so a safe
optimizer must learn the constraints from measurements as it learns the objective. With
`rng=None` the outcomes are the exact textbook functions; with a generator, Gaussian
noise of the size listed in each problem's `NOISE_SD` is added to every outcome. The bounds are
the literature's; a parameter spanning 20x or more from a positive lower bound is declared
`log: true`, as `valley init` advises, so designs are drawn log-uniformly along it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from data.core import System, parameter_arrays

# Welded-beam constants (Ragsdell & Phillips 1976): load (lb), overhang (in), Young's and
# shear moduli (psi), and the allowed shear stress, bending stress (psi) and deflection (in).
LOAD, OVERHANG, YOUNG, SHEAR = 6000.0, 14.0, 30e6, 12e6
TAU_MAX, SIGMA_MAX, DELTA_MAX = 13600.0, 30000.0, 0.25

NOISE_SD = {
    "gardner": {"f": 0.01, "c": 0.01},
    "spring": {"weight": 1e-4, "g1": 0.01, "g2": 0.01, "g3": 0.01, "g4": 0.01},
    "pressure_vessel": {"cost": 50.0, "g1": 0.005, "g2": 0.005, "g3": 0.01, "g4": 0.5},
    "welded_beam": {"cost": 0.02, **{f"g{i}": 0.01 for i in range(1, 8)}},
    "gramacy": {"f": 0.01, "c1": 0.01, "c2": 0.01},
    "three_bar_truss": {"volume": 0.5, "g1": 0.01, "g2": 0.01, "g3": 0.01},
}
# Three-bar truss (Ray and Saini 2001): bar length (cm), load and allowed stress (kN / cm^2).
TRUSS_LENGTH, TRUSS_LOAD, TRUSS_STRESS = 100.0, 2.0, 2.0


def gardner(designs_df: pd.DataFrame, rng: np.random.Generator | None = None) -> pd.DataFrame:
    """Gardner et al. (2014) toy problem: outcomes `f` (minimize) and `c` (`c <= 0.5`).

    `f = cos(2 x1) cos(x2) + sin(x1)` and `c = cos(x1) cos(x2) - sin(x1) sin(x2)` on
    `[0, 6]^2` (J. Gardner et al., "Bayesian optimization with inequality constraints",
    ICML 2014). `c = cos(x1 + x2)` bans diagonal bands of the square; the optimum
    `f = -2` at `(3 pi / 2, 0)` lies outside them, so the test is to find it without
    stepping into a band.
    """
    x = parameter_arrays(designs_df, GARDNER.config)
    x1, x2 = x["x1"], x["x2"]
    values = {
        "f": np.cos(2 * x1) * np.cos(x2) + np.sin(x1),
        "c": np.cos(x1) * np.cos(x2) - np.sin(x1) * np.sin(x2),
    }
    return _frame(designs_df, values, NOISE_SD["gardner"], rng)


def spring(designs_df: pd.DataFrame, rng: np.random.Generator | None = None) -> pd.DataFrame:
    """Tension/compression spring: outcome `weight` (minimize) and `g1`..`g4` (`<= 0`).

    Weight `(N + 2) D d^2` of a spring of wire diameter `d`, mean coil diameter `D` and
    `N` active coils, under minimum deflection (`g1`), shear stress (`g2`), surge
    frequency (`g3`) and outer diameter (`g4`) limits (J. Arora, "Introduction to Optimum
    Design", 1989; C. Coello, Computers in Industry 41, 2000). Columns `wire_diameter`
    (`d`), `coil_diameter` (`D`) and `n_coils` (`N`, continuous here).
    """
    x = parameter_arrays(designs_df, SPRING.config)
    d, D, N = x["wire_diameter"], x["coil_diameter"], x["n_coils"]
    # d^3 (D - d) vanishes where d = D; those designs fail g1 anyway, keep them finite.
    shear_area = _away_from_zero(D * d**3 - d**4)
    values = {
        "weight": (N + 2) * D * d**2,
        "g1": 1 - D**3 * N / (71785 * d**4),
        "g2": (4 * D**2 - d * D) / (12566 * shear_area) + 1 / (5108 * d**2) - 1,
        "g3": 1 - 140.45 * d / (D**2 * N),
        "g4": (D + d) / 1.5 - 1,
    }
    return _frame(designs_df, values, NOISE_SD["spring"], rng)


def pressure_vessel(designs_df: pd.DataFrame, rng: np.random.Generator | None = None) -> pd.DataFrame:
    """Pressure vessel: outcome `cost` (minimize) and `g1`..`g4` (`<= 0`).

    Material, forming and welding cost of a cylindrical vessel with hemispherical heads,
    shell thickness `Ts`, head thickness `Th`, inner radius `R` and length `L`
    (B. Kannan and S. Kramer, J. Mech. Des. 116, 1994), with the continuous bounds of
    D. Eriksson and M. Poloczek, "Scalable constrained Bayesian optimization", AISTATS
    2021. Columns `shell_thickness`, `head_thickness`, `radius` and `length` (inches).
    The volume constraint `g3` is divided by its constant 1,296,000 so that all
    constraints have magnitudes of order one.
    """
    x = parameter_arrays(designs_df, PRESSURE_VESSEL.config)
    ts, th = x["shell_thickness"], x["head_thickness"]
    r, length = x["radius"], x["length"]
    volume = np.pi * r**2 * length + 4 / 3 * np.pi * r**3
    values = {
        "cost": 0.6224 * ts * r * length + 1.7781 * th * r**2 + 3.1661 * ts**2 * length + 19.84 * ts**2 * r,
        "g1": -ts + 0.0193 * r,
        "g2": -th + 0.00954 * r,
        "g3": 1 - volume / 1296000,
        "g4": length - 240,
    }
    return _frame(designs_df, values, NOISE_SD["pressure_vessel"], rng)


def welded_beam(designs_df: pd.DataFrame, rng: np.random.Generator | None = None) -> pd.DataFrame:
    """Welded beam: outcome `cost` (minimize) and `g1`..`g7` (`<= 0`).

    Fabrication cost of a cantilever welded to a support, weld thickness `h`, weld length
    `l`, bar height `t` and bar thickness `b`, with limits on weld shear stress (`g1`),
    bending stress (`g2`), `h <= b` (`g3`), a cost cap (`g4`), `h >= 0.125` (`g5`), end
    deflection (`g6`) and buckling load (`g7`), in the formulation of C. Coello,
    Computers in Industry 41 (2000) (after K. Ragsdell and D. Phillips, J. Eng. Ind. 98,
    1976). Columns `weld_thickness`, `weld_length`, `bar_height`, `bar_thickness`
    (inches). Stress, deflection, cost and buckling constraints are divided by their limits.
    """
    x = parameter_arrays(designs_df, WELDED_BEAM.config)
    h, l, t, b = x["weld_thickness"], x["weld_length"], x["bar_height"], x["bar_thickness"]
    tau_primary = LOAD / (np.sqrt(2) * h * l)
    moment = LOAD * (OVERHANG + l / 2)
    radius = np.sqrt(l**2 / 4 + ((h + t) / 2) ** 2)
    polar_moment = 2 * np.sqrt(2) * h * l * (l**2 / 12 + ((h + t) / 2) ** 2)
    tau_secondary = moment * radius / polar_moment
    tau = np.sqrt(tau_primary**2 + tau_primary * tau_secondary * l / radius + tau_secondary**2)
    sigma = 6 * LOAD * OVERHANG / (b * t**2)
    delta = 4 * LOAD * OVERHANG**3 / (YOUNG * t**3 * b)
    buckling = (
        4.013
        * YOUNG
        * np.sqrt(t**2 * b**6 / 36)
        / OVERHANG**2
        * (1 - t / (2 * OVERHANG) * np.sqrt(YOUNG / (4 * SHEAR)))
    )
    values = {
        "cost": 1.10471 * h**2 * l + 0.04811 * t * b * (14 + l),
        "g1": tau / TAU_MAX - 1,
        "g2": sigma / SIGMA_MAX - 1,
        "g3": h - b,
        "g4": (0.10471 * h**2 + 0.04811 * t * b * (14 + l)) / 5 - 1,
        "g5": 0.125 - h,
        "g6": delta / DELTA_MAX - 1,
        "g7": 1 - buckling / LOAD,
    }
    return _frame(designs_df, values, NOISE_SD["welded_beam"], rng)


def gramacy(designs_df: pd.DataFrame, rng: np.random.Generator | None = None) -> pd.DataFrame:
    """Gramacy et al. (2016) toy problem: outcome `f` (minimize) and `c1`, `c2` (`<= 0`).

    `f = x1 + x2` on `[0, 1]^2` with `c1 = 3/2 - x1 - 2 x2 - sin(2 pi (x1^2 - 2 x2)) / 2`
    and `c2 = x1^2 + x2^2 - 3/2` (R. Gramacy et al., "Modeling an augmented Lagrangian for
    blackbox constrained optimization", Technometrics 58, 2016). The sine makes the safe
    region's edge wavy, and the optimum lies on it: `f = 0.5998` at `(0.1951, 0.4047)`.
    """
    x = parameter_arrays(designs_df, GRAMACY.config)
    x1, x2 = x["x1"], x["x2"]
    values = {
        "f": x1 + x2,
        "c1": 1.5 - x1 - 2 * x2 - 0.5 * np.sin(2 * np.pi * (x1**2 - 2 * x2)),
        "c2": x1**2 + x2**2 - 1.5,
    }
    return _frame(designs_df, values, NOISE_SD["gramacy"], rng)


def three_bar_truss(designs_df: pd.DataFrame, rng: np.random.Generator | None = None) -> pd.DataFrame:
    """Three-bar truss: outcome `volume` (minimize) and `g1`..`g3` (`<= 0`).

    Volume `(2 sqrt(2) A1 + A2) l` of a planar truss of three bars, cross-sections `A1` (both
    outer bars) and `A2` (the middle one), `l = 100` cm, under a load of 2 kN / cm^2; each
    `g` is a bar's stress divided by the allowed 2 kN / cm^2, minus 1 (T. Ray and P. Saini,
    Eng. Optim. 33, 2001; the form of H. Nowacki's original). Columns `area_outer` and
    `area_middle` (cm^2, bounds `[0, 1]`). A bar of no section would have infinite stress; below
    1e-6 cm^2 the stresses are those of 1e-6 cm^2 (finite, and far beyond the limit).
    """
    x = parameter_arrays(designs_df, THREE_BAR_TRUSS.config)
    a1, a2 = x["area_outer"], x["area_middle"]
    root2 = np.sqrt(2.0)
    b1, b2 = np.maximum(a1, 1e-6), np.maximum(a2, 1e-6)  # the stresses of a bar of no section, kept finite
    shared = root2 * b1**2 + 2 * b1 * b2
    ratio = TRUSS_LOAD / TRUSS_STRESS
    values = {
        "volume": (2 * root2 * a1 + a2) * TRUSS_LENGTH,
        "g1": (root2 * b1 + b2) / shared * ratio - 1,
        "g2": b2 / shared * ratio - 1,
        "g3": ratio / (root2 * b2 + b1) - 1,
    }
    return _frame(designs_df, values, NOISE_SD["three_bar_truss"], rng)


def _frame(
    designs_df: pd.DataFrame,
    values: dict[str, np.ndarray],
    noise_sd: dict[str, float],
    rng: np.random.Generator | None,
) -> pd.DataFrame:
    if rng is not None:
        values = {name: v + rng.normal(0.0, noise_sd[name], len(v)) for name, v in values.items()}
    return pd.DataFrame(values, index=designs_df.index)


def _away_from_zero(values: np.ndarray, smallest: float = 1e-12) -> np.ndarray:
    return np.where(np.abs(values) < smallest, np.where(values < 0, -smallest, smallest), values)


def _config(
    name: str, bounds: dict[str, tuple[float, float]], objective: str, limits: dict[str, float]
) -> dict[str, Any]:
    return {
        "name": name,
        "seed": 0,
        "parameters": [_parameter(p, low, high) for p, (low, high) in bounds.items()],
        "constraints": [],
        "objectives": [{"name": objective, "goal": "minimize"}],
        "safety": [{"name": g, "upper": upper, "confidence": 0.95} for g, upper in limits.items()],
        "surrogate": {"kind": "gp"},
    }


def _parameter(name: str, low: float, high: float) -> dict[str, Any]:
    """A continuous parameter, on a log scale where it spans 20x or more (the advice of `valley init`)."""
    return {"name": name, "type": "continuous", "bounds": [low, high], "log": low > 0 and high >= 20 * low}


def _zero_limits(n: int) -> dict[str, float]:
    return {f"g{i}": 0.0 for i in range(1, n + 1)}


# Best values: computed once offline with SLSQP (scipy, ftol 1e-12) from 200 random
# starts in the box per problem, keeping the best run that meets every constraint to 1e-8;
# each matches the literature optimum (point quoted with each value).
GARDNER = System(
    name="gardner",
    description="Gardner et al. (2014) two-dimensional toy problem with one constraint.",
    config=_config("gardner", {"x1": (0, 6), "x2": (0, 6)}, "f", {"c": 0.5}),
    simulate=gardner,
    # f = -2 at (3 pi / 2, 0), where c = 0: the constraint is not active at the optimum.
    best_safe_value=-2.0,
)
SPRING = System(
    name="spring",
    description="Tension/compression spring weight under four mechanical constraints.",
    config=_config(
        "spring",
        {"wire_diameter": (0.05, 2.0), "coil_diameter": (0.25, 1.3), "n_coils": (2.0, 15.0)},
        "weight",
        _zero_limits(4),
    ),
    simulate=spring,
    # d = 0.051689, D = 0.356717, N = 11.28899 (g1, g2 active); literature 0.012665.
    best_safe_value=0.01266523,
)
PRESSURE_VESSEL = System(
    name="pressure_vessel",
    description="Pressure-vessel fabrication cost under thickness, volume, length limits.",
    config=_config(
        "pressure_vessel",
        {
            "shell_thickness": (0.0, 10.0),
            "head_thickness": (0.0, 10.0),
            "radius": (10.0, 200.0),
            "length": (10.0, 200.0),
        },
        "cost",
        _zero_limits(4),
    ),
    simulate=pressure_vessel,
    # Ts = 0.778169, Th = 0.384649, R = 40.319619, L = 200 (g1, g2, g3 and the L bound).
    best_safe_value=5885.3328,
)
WELDED_BEAM = System(
    name="welded_beam",
    description="Welded-beam fabrication cost under stress, deflection, buckling limits.",
    config=_config(
        "welded_beam",
        {
            "weld_thickness": (0.1, 2.0),
            "weld_length": (0.1, 10.0),
            "bar_height": (0.1, 10.0),
            "bar_thickness": (0.1, 2.0),
        },
        "cost",
        _zero_limits(7),
    ),
    simulate=welded_beam,
    # h = b = 0.205730, l = 3.470489, t = 9.036624 (g1, g2, g3, g7 active).
    best_safe_value=1.7248523,
)
GRAMACY = System(
    name="gramacy",
    description="Gramacy et al. (2016) two-dimensional toy problem with two constraints, one wavy.",
    config=_config("gramacy", {"x1": (0, 1), "x2": (0, 1)}, "f", {"c1": 0.0, "c2": 0.0}),
    simulate=gramacy,
    # x1 = 0.195123, x2 = 0.404665 (c1 active); literature 0.5998.
    best_safe_value=0.59978805,
)
THREE_BAR_TRUSS = System(
    name="three_bar_truss",
    description="Three-bar truss volume under the stress limits of its three bars.",
    config=_config("three_bar_truss", {"area_outer": (0, 1), "area_middle": (0, 1)}, "volume", _zero_limits(3)),
    simulate=three_bar_truss,
    # A1 = 0.788675, A2 = 0.408248 (g1 active); literature 263.8958.
    best_safe_value=263.89584337,
)
