"""Tests for the synthetic nanoparticle simulator: shape, noise, mechanism and difficulty."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

from data import is_safe, sample_designs
from data import nanoparticles as nano

OUTCOMES = ["tcell_activation", "complement_activation"]
# The optima found offline (see BEST_SAFE_VALUE in data/nanoparticles.py).
BEST_SAFE_DESIGN = {
    "diameter_nm": 64.3438,
    "zeta_mV": 21.9559,
    "peg_pct": 5.80441,
    "ligand": "antiCD3",
    "n_layers": 5,
    "dose_ug": 50.3985,
}
BEST_OVERALL_DESIGN = {
    "diameter_nm": 65.0,
    "zeta_mV": 40.0,
    "peg_pct": 3.0,
    "ligand": "antiCD3",
    "n_layers": 5,
    "dose_ug": 100.0,
}


def _designs(n: int = 1, **changes: object) -> pd.DataFrame:
    row = {
        "diameter_nm": 65.0,
        "zeta_mV": 5.0,
        "peg_pct": 3.0,
        "ligand": "antiCD3",
        "n_layers": 3,
        "dose_ug": 20.0,
    }
    designs_df = pd.DataFrame([row] * n)
    for name, value in changes.items():
        designs_df[name] = value
    return designs_df


@pytest.fixture(scope="module")
def random_df() -> pd.DataFrame:
    designs_df = sample_designs(nano.config(), 20000, np.random.default_rng(0))
    return designs_df.join(nano.simulate(designs_df))


def test_simulate_returns_only_outcomes_on_the_same_index():
    designs_df = _designs(3).set_axis([10, 20, 30])
    outcomes_df = nano.simulate(designs_df)
    assert list(outcomes_df.columns) == OUTCOMES
    assert list(outcomes_df.index) == [10, 20, 30]
    assert list(designs_df.columns) == list(_designs().columns)  # input left alone
    assert np.isfinite(outcomes_df.to_numpy()).all()


def test_noise_is_reproducible_and_of_the_documented_size():
    designs_df = _designs(4000)
    true_df = nano.simulate(designs_df)
    noisy_df = nano.simulate(designs_df, np.random.default_rng(1))
    pd.testing.assert_frame_equal(noisy_df, nano.simulate(designs_df, np.random.default_rng(1)))
    pd.testing.assert_frame_equal(true_df, nano.simulate(designs_df, None))
    log_ratio = np.log(noisy_df["tcell_activation"] / true_df["tcell_activation"])
    offset = noisy_df["complement_activation"] - true_df["complement_activation"]
    assert log_ratio.std() == pytest.approx(0.05, rel=0.1)
    assert offset.std() == pytest.approx(0.05, rel=0.1)
    assert abs(offset.mean()) < 0.005


def test_corners_of_the_box_are_accepted():
    designs_df = sample_designs(nano.config(), 64, np.random.default_rng(2))
    designs_df["diameter_nm"] = np.where(designs_df.index % 2, 20.0, 200.0)
    designs_df["dose_ug"] = np.where(designs_df.index % 3, 1.0, 100.0)
    designs_df["zeta_mV"] = -40.0
    assert np.isfinite(nano.simulate(designs_df).to_numpy()).all()


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"dose_ug": 150.0}, "dose_ug"),
        ({"ligand": "antiCD4"}, "ligand"),
        ({"zeta_mV": np.nan}, "zeta_mV"),
    ],
)
def test_invalid_designs_raise_a_message_naming_the_column(changes, match):
    with pytest.raises(ValueError, match=match):
        nano.simulate(_designs(**changes))


def test_missing_column_is_named():
    with pytest.raises(ValueError, match="peg_pct"):
        nano.simulate(_designs().drop(columns="peg_pct"))


def test_fractional_layers_are_rounded():
    outcomes_df = nano.simulate(_designs(2, n_layers=[3.0, 3.2]))
    assert outcomes_df.iloc[0].tolist() == outcomes_df.iloc[1].tolist()


def test_activation_rises_with_dose_and_saturates():
    dose = np.geomspace(1, 100, 50)
    activation = nano.simulate(_designs(50, dose_ug=dose))["tcell_activation"].to_numpy()
    assert (np.diff(activation) > 0).all()
    x = {
        "diameter_nm": np.full(3, 65.0),
        "zeta_mV": np.full(3, 5.0),
        "peg_pct": np.full(3, 3.0),
        "ligand": np.full(3, "antiCD3"),
        "n_layers": np.full(3, 3.0),
        "dose_ug": np.array([1e3, 1e5, 1e7]),
    }  # far past the box, to see the plateau
    far = nano.true_activation(x)
    assert far[2] - far[1] < 1e-3 * far[2]  # a plateau, not growth without end
    assert activation[-1] > 0.8 * far[2]  # the box reaches well into saturation


def test_ligands_rank_none_below_antiCD28_below_antiCD3():
    activation = nano.simulate(_designs(3, ligand=["none", "antiCD28", "antiCD3"]))
    none, cd28, cd3 = activation["tcell_activation"]
    assert none < 0.3 * cd28
    assert cd28 < cd3


def test_peg_has_an_interior_optimum_and_shields_complement():
    outcomes_df = nano.simulate(_designs(3, peg_pct=[0.0, 3.0, 10.0]))
    low, mid, high = outcomes_df["tcell_activation"]
    assert mid > low and mid > high
    assert outcomes_df["complement_activation"].is_monotonic_decreasing


def test_size_optimum_is_near_65_nm_and_charge_raises_complement():
    activation = nano.simulate(_designs(3, diameter_nm=[20.0, 65.0, 200.0]))["tcell_activation"]
    assert activation.idxmax() == 1
    complement = nano.simulate(_designs(3, zeta_mV=[-40.0, 0.0, 40.0]))["complement_activation"]
    assert complement.is_monotonic_increasing and complement.iloc[-1] > 1.5


def test_a_third_of_random_designs_are_unsafe(random_df):
    unsafe = 1 - is_safe(random_df, nano.config()).mean()
    assert 0.25 <= unsafe <= 0.5


def test_the_unconstrained_optimum_is_unsafe_and_clearly_better():
    best_overall = nano.simulate(_designs(**BEST_OVERALL_DESIGN))
    assert best_overall["complement_activation"].iloc[0] > 1.5
    assert nano.BEST_SAFE_VALUE < 0.9 * best_overall["tcell_activation"].iloc[0]


def test_best_safe_design_is_safe_and_reaches_the_hard_coded_value():
    outcomes_df = nano.simulate(_designs(**BEST_SAFE_DESIGN))
    assert outcomes_df["complement_activation"].iloc[0] <= 1.5 + 1e-4
    assert outcomes_df["tcell_activation"].iloc[0] == pytest.approx(nano.BEST_SAFE_VALUE, abs=1e-3)


def test_best_safe_value_beats_random_search_and_matches_a_local_polish(random_df):
    safe_df = random_df[is_safe(random_df, nano.config())]
    assert nano.BEST_SAFE_VALUE >= safe_df["tcell_activation"].max()
    polished = [_polish(row) for _, row in safe_df.nlargest(3, "tcell_activation").iterrows()]
    assert max(polished) <= nano.BEST_SAFE_VALUE + 1e-3
    assert max(polished) >= 0.98 * nano.BEST_SAFE_VALUE


def _polish(row: pd.Series) -> float:
    """SLSQP over (diameter, charge, PEG, log dose) with the categorical and integer fixed."""

    def arrays(v: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "diameter_nm": v[:1],
            "zeta_mV": v[1:2],
            "peg_pct": v[2:3],
            "ligand": np.array([row["ligand"]]),
            "n_layers": np.array([float(row["n_layers"])]),
            "dose_ug": np.exp(v[3:4]),
        }

    constraints = [
        {"type": "ineq", "fun": lambda v: 8 - v[2] - 0.1 * v[1]},
        {"type": "ineq", "fun": lambda v: 1.5 - nano.true_complement(arrays(v))[0]},
    ]
    start = [row["diameter_nm"], row["zeta_mV"], row["peg_pct"], np.log(row["dose_ug"])]
    result = minimize(
        lambda v: -nano.true_activation(arrays(v))[0],
        start,
        method="SLSQP",
        bounds=[(20, 200), (-40, 40), (0, 10), (0, np.log(100))],
        constraints=constraints,
        options={"ftol": 1e-10, "maxiter": 300},
    )
    feasible = all(c["fun"](result.x) >= -1e-6 for c in constraints)
    return -result.fun if feasible else -np.inf
