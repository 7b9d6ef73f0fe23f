"""Synthetic simulator of nanoparticles for cancer immunotherapy (a safe-optimization system).

This simulator is SYNTHETIC. Its equations are mechanistically motivated, with
round-number constants chosen to make an interesting safe-optimization problem; they are
not fitted to any measurement and its numbers are not predictions about real particles.

A nanoparticle carrying T-cell-engaging antibodies is described by six parameters:
diameter `d` (`diameter_nm`, 20-200 nm), surface charge `z` (`zeta_mV`, -40 to 40 mV),
PEG density `p` (`peg_pct`, 0-10 %), ligand `l` (`ligand`: none, antiCD3 or antiCD28),
ligand density as the number of coating layers `n` (`n_layers`, 1-5) and dose `D`
(`dose_ug`, 1-100 ug, log scale). Formulations must satisfy `p + 0.1 z <= 8` (dense PEG
cannot be grafted onto a strongly charged surface). Two outcomes are simulated.

T-cell activation (an index in arbitrary units, about 0-10; maximize) is a product of
independent factors::

    A = E_max * H(D) * U(d) * Q(z) * G(p) * L(l, n)
    H(D)    = D^h / (D^h + EC50_l^h)                    dose response (Emax / Hill)
    U(d)    = exp(-ln(d / d_0)^2 / (2 s^2))              uptake and lymph-node drainage
    Q(z)    = q_0 + (1 - q_0) * sigmoid((z - z_q) / w_q)  charge-assisted uptake
    G(p)    = (1 + p / p_1) * exp(-p / p_2) / G_max      the "PEG dilemma"
    L(l, n) = L_none + (L_l - L_none) * (1 - exp(-n / n_sat))   ligand presentation

with `sigmoid(u) = 1 / (1 + exp(-u))`, `E_max = 10`, Hill coefficient `h = 1.5`,
`EC50_l` = 30 / 12 / 6 ug for none / antiCD28 / antiCD3, `d_0 = 65 nm`, `s = 0.45`,
`q_0 = 0.4`, `z_q = 5 mV`, `w_q = 8 mV`,
`p_1 = 1 %`, `p_2 = 4 %` (so `G` peaks at `p = p_2 - p_1 = 3 %` and
`G_max = (p_2 / p_1) exp(-(p_2 - p_1) / p_2)`), `L_none = 0.15`, `L_antiCD28 = 0.7`,
`L_antiCD3 = 1.0` and `n_sat = 1.5` (for `l = none`, `L = L_none` whatever `n`).
Why these shapes: receptor engagement saturates with dose; particles of about 20-100 nm
drain to lymph nodes and are taken up by antigen-presenting cells, smaller ones leak
away and larger ones stay at the injection site; a mildly positive surface binds the
negatively charged cell membrane; some PEG lengthens circulation but dense PEG hides the
particle from cells; anti-CD3 engages the T-cell receptor complex (signal 1) and
anti-CD28 only co-stimulates (signal 2), and more coating layers present more ligand,
up to saturation.

Complement activation (a toxicity in arbitrary units; safe while `K <= 1.5`) is::

    K = k_0 + (k_z * sigmoid((z - z_k) / w_k) + k_d * d / 100 + k_D * log10(D))
              * exp(-p / p_k) + k_n * (n - 1)

with `k_0 = 0.35`, `k_z = 1.8`, `z_k = 10 mV`, `w_k = 6 mV`, `k_d = 0.4`,
`k_D = 0.7`, `p_k = 5 %` and `k_n = 0.05`: cationic surfaces, larger surface area and
larger doses activate complement, PEG shields the surface, and each extra protein layer
adds a little.

Measurement noise (when `simulate` gets a generator): activation is multiplied by
`exp(e)`, `e ~ N(0, 0.05^2)` (about 5 %), and `N(0, 0.05^2)` is added to complement.
About 31 % of uniformly random feasible designs are unsafe. The best safe activation
(`BEST_SAFE_VALUE` = 7.35: antiCD3, 5 layers, 64 nm, +22 mV, 5.8 % PEG, 50 ug) lies 22 %
below the best unconstrained one (9.49: antiCD3, 5 layers, 65 nm, +40 mV, 3 % PEG,
100 ug), whose complement activation of 2.44 is far over the limit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from data.core import System, parameter_arrays

LIGANDS = ("none", "antiCD3", "antiCD28")
SAFETY_LIMIT = 1.5

# Activation constants (see the module docstring).
E_MAX = 10.0
HILL = 1.5
EC50_UG = {"none": 30.0, "antiCD3": 6.0, "antiCD28": 12.0}
SIZE_PEAK_NM, SIZE_WIDTH = 65.0, 0.45
CHARGE_FLOOR, CHARGE_MID_MV, CHARGE_WIDTH_MV = 0.4, 5.0, 8.0
PEG_RISE_PCT, PEG_DECAY_PCT = 1.0, 4.0
LIGAND_PLATEAU = {"none": 0.15, "antiCD3": 1.0, "antiCD28": 0.7}
LAYER_SATURATION = 1.5

# Complement constants (see the module docstring).
COMPLEMENT_BASE = 0.35
COMPLEMENT_CHARGE, COMPLEMENT_CHARGE_MID_MV, COMPLEMENT_CHARGE_WIDTH_MV = 1.8, 10.0, 6.0
COMPLEMENT_SIZE, COMPLEMENT_DOSE, COMPLEMENT_PEG_PCT = 0.4, 0.7, 5.0
COMPLEMENT_LAYER = 0.05

ACTIVATION_LOG_NOISE = 0.05
COMPLEMENT_NOISE = 0.05

# Best noise-free activation over the box, the PEG/charge constraint and complement <= 1.5.
# Computed once offline: 200,000 random feasible designs (seed 1), then SLSQP (scipy)
# polishing of the 20 best safe ones for each of the 15 ligand x n_layers combinations over
# (diameter, charge, PEG, log dose) with both constraints. Best: 7.35194 at antiCD3,
# 5 layers, 64.34 nm, 21.96 mV, 5.804 % PEG, 50.40 ug, with complement exactly 1.5.
BEST_SAFE_VALUE = 7.3519


def config() -> dict[str, Any]:
    """Return a fresh campaign config dict for this system."""
    return {
        "name": "nanoparticles",
        "seed": 0,
        "parameters": [
            {"name": "diameter_nm", "type": "continuous", "bounds": [20, 200]},
            {"name": "zeta_mV", "type": "continuous", "bounds": [-40, 40]},
            {"name": "peg_pct", "type": "continuous", "bounds": [0, 10]},
            {"name": "ligand", "type": "categorical", "values": list(LIGANDS)},
            {"name": "n_layers", "type": "integer", "bounds": [1, 5]},
            {"name": "dose_ug", "type": "continuous", "bounds": [1, 100], "log": True},
        ],
        "constraints": ["peg_pct + 0.1 * zeta_mV <= 8"],
        "objectives": [{"name": "tcell_activation", "goal": "maximize"}],
        "safety": [{"name": "complement_activation", "upper": SAFETY_LIMIT, "confidence": 0.95}],
        "surrogate": {"kind": "gp"},
    }


def simulate(designs_df: pd.DataFrame, rng: np.random.Generator | None = None) -> pd.DataFrame:
    """Simulate T-cell and complement activation for a batch of nanoparticle designs.

    Args:
        designs_df: One row per design, with the columns `diameter_nm`, `zeta_mV`,
            `peg_pct`, `ligand`, `n_layers` and `dose_ug` in user units.
        rng: `None` for the noise-free values; a generator to add measurement noise.

    Returns:
        A new DataFrame with the index of `designs_df` and the columns
        `tcell_activation` and `complement_activation`.

    Example:
        >>> designs_df = pd.DataFrame({"diameter_nm": [65.0], "zeta_mV": [10.0],
        ...     "peg_pct": [3.0], "ligand": ["antiCD3"], "n_layers": [3], "dose_ug": [30.0]})
        >>> simulate(designs_df)["tcell_activation"].round(2).tolist()
        [6.42]
    """
    x = parameter_arrays(designs_df, config())
    activation = true_activation(x)
    complement = true_complement(x)
    if rng is not None:
        activation = activation * np.exp(rng.normal(0.0, ACTIVATION_LOG_NOISE, len(activation)))
        complement = complement + rng.normal(0.0, COMPLEMENT_NOISE, len(complement))
    return pd.DataFrame(
        {"tcell_activation": activation, "complement_activation": complement},
        index=designs_df.index,
    )


def true_activation(x: dict[str, np.ndarray]) -> np.ndarray:
    """Noise-free T-cell activation `A` from the parameter arrays of `parameter_arrays`."""
    ligand = x["ligand"]
    ec50 = _lookup(EC50_UG, ligand)
    dose_response = x["dose_ug"] ** HILL / (x["dose_ug"] ** HILL + ec50**HILL)
    uptake = np.exp(-(np.log(x["diameter_nm"] / SIZE_PEAK_NM) ** 2) / (2 * SIZE_WIDTH**2))
    charge = CHARGE_FLOOR + (1 - CHARGE_FLOOR) * _sigmoid((x["zeta_mV"] - CHARGE_MID_MV) / CHARGE_WIDTH_MV)
    peg_max = (PEG_DECAY_PCT / PEG_RISE_PCT) * np.exp(-(PEG_DECAY_PCT - PEG_RISE_PCT) / PEG_DECAY_PCT)
    peg = (1 + x["peg_pct"] / PEG_RISE_PCT) * np.exp(-x["peg_pct"] / PEG_DECAY_PCT) / peg_max
    floor = LIGAND_PLATEAU["none"]
    presentation = floor + (_lookup(LIGAND_PLATEAU, ligand) - floor) * (1 - np.exp(-x["n_layers"] / LAYER_SATURATION))
    return E_MAX * dose_response * uptake * charge * peg * presentation


def true_complement(x: dict[str, np.ndarray]) -> np.ndarray:
    """Noise-free complement activation `K` from the parameter arrays of `parameter_arrays`."""
    charge = COMPLEMENT_CHARGE * _sigmoid((x["zeta_mV"] - COMPLEMENT_CHARGE_MID_MV) / COMPLEMENT_CHARGE_WIDTH_MV)
    exposed = charge + COMPLEMENT_SIZE * x["diameter_nm"] / 100 + COMPLEMENT_DOSE * np.log10(x["dose_ug"])
    shielding = np.exp(-x["peg_pct"] / COMPLEMENT_PEG_PCT)
    return COMPLEMENT_BASE + exposed * shielding + COMPLEMENT_LAYER * (x["n_layers"] - 1)


def _sigmoid(u: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * u))


def _lookup(table: dict[str, float], keys: np.ndarray) -> np.ndarray:
    codes = pd.Categorical(keys, categories=LIGANDS).codes
    return np.array([table[ligand] for ligand in LIGANDS])[codes]


NANOPARTICLES = System(
    name="nanoparticles",
    description=(
        "Synthetic, mechanistically motivated simulator of T-cell-engaging nanoparticles for "
        "cancer immunotherapy: maximize T-cell activation while complement activation, a "
        "toxicity, stays under 1.5."
    ),
    config=config(),
    simulate=simulate,
    best_safe_value=BEST_SAFE_VALUE,
)
