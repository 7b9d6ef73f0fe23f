"""Tests for the constrained benchmark problems: optima, feasibility and noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data import get_system, is_safe, sample_designs

# Optimum points as published (Gardner's is exact; the others are quoted to 6 digits).
LITERATURE_OPTIMA = {
    "gardner": {"x1": 1.5 * np.pi, "x2": 0.0},
    "spring": {"wire_diameter": 0.051689, "coil_diameter": 0.356718, "n_coils": 11.288965},
    "pressure_vessel": {
        "shell_thickness": 0.778169,
        "head_thickness": 0.384649,
        "radius": 40.319619,
        "length": 200.0,
    },
    "welded_beam": {
        "weld_thickness": 0.205730,
        "weld_length": 3.470489,
        "bar_height": 9.036624,
        "bar_thickness": 0.205730,
    },
    "gramacy": {"x1": 0.195123, "x2": 0.404665},
    "three_bar_truss": {"area_outer": 0.788675, "area_middle": 0.408248},
}
LITERATURE_BEST = {
    "spring": 0.012665,
    "pressure_vessel": 5885.33,
    "welded_beam": 1.724852,
    "gramacy": 0.5998,
    "three_bar_truss": 263.8958,
}
PROBLEMS = list(LITERATURE_OPTIMA)


@pytest.mark.parametrize("name", PROBLEMS)
def test_config_matches_the_outcomes(name):
    system = get_system(name)
    designs_df = sample_designs(system.config, 5, np.random.default_rng(0))
    outcomes_df = system.simulate(designs_df, None)
    limits = [limit["name"] for limit in system.config["safety"]]
    assert list(outcomes_df.columns) == [system.objective, *limits]
    assert not system.maximize
    assert outcomes_df.index.equals(designs_df.index)


@pytest.mark.parametrize("name", PROBLEMS)
def test_literature_optimum_is_feasible_and_reaches_best_value(name):
    system = get_system(name)
    outcomes_df = system.simulate(pd.DataFrame([LITERATURE_OPTIMA[name]]), None)
    for limit in system.config["safety"]:
        assert outcomes_df[limit["name"]].iloc[0] <= limit["upper"] + 1e-3, limit["name"]
    value = outcomes_df[system.objective].iloc[0]
    assert value == pytest.approx(system.best_safe_value, rel=0.01, abs=1e-9)


@pytest.mark.parametrize("name", LITERATURE_BEST)
def test_best_value_agrees_with_the_literature(name):
    assert get_system(name).best_safe_value == pytest.approx(LITERATURE_BEST[name], rel=1e-4)


@pytest.mark.parametrize("name", PROBLEMS)
def test_best_value_is_below_every_random_feasible_design(name):
    system = get_system(name)
    designs_df = sample_designs(system.config, 50000, np.random.default_rng(1))
    outcomes_df = system.simulate(designs_df, None)
    safe = is_safe(outcomes_df, system.config)
    assert safe.sum() >= 100  # enough feasible designs for the comparison to mean something
    assert system.best_safe_value <= outcomes_df[system.objective][safe].min()


@pytest.mark.parametrize("name", LITERATURE_BEST)
def test_constraints_exclude_designs_cheaper_than_the_optimum(name):
    system = get_system(name)
    designs_df = sample_designs(system.config, 5000, np.random.default_rng(2))
    outcomes_df = system.simulate(designs_df, None)
    cheaper = outcomes_df[system.objective] < system.best_safe_value
    assert cheaper.any()
    assert not is_safe(outcomes_df[cheaper], system.config).any()


@pytest.mark.parametrize("name", PROBLEMS)
def test_noise_is_small_reproducible_and_absent_without_a_generator(name):
    system = get_system(name)
    designs_df = pd.DataFrame([LITERATURE_OPTIMA[name]] * 200)
    true_df = system.simulate(designs_df, None)
    noisy_df = system.simulate(designs_df, np.random.default_rng(3))
    pd.testing.assert_frame_equal(noisy_df, system.simulate(designs_df, np.random.default_rng(3)))
    assert (noisy_df != true_df).all().all()
    objective_error = (noisy_df - true_df)[system.objective].abs().mean()
    assert objective_error < 0.02 * max(abs(system.best_safe_value), 1.0)


def test_gardner_constraint_bans_part_of_the_box():
    system = get_system("gardner")
    designs_df = pd.DataFrame({"x1": [0.0, 1.5 * np.pi], "x2": [0.0, 0.0]})
    assert is_safe(system.simulate(designs_df, None), system.config).tolist() == [False, True]


def test_spring_stays_finite_where_the_shear_area_vanishes():
    outcomes_df = get_system("spring").simulate(
        pd.DataFrame({"wire_diameter": [0.5], "coil_diameter": [0.5], "n_coils": [5.0]}), None
    )
    assert np.isfinite(outcomes_df.to_numpy()).all()


def test_truss_bars_of_no_section_break_their_stress_limits():
    outcomes_df = get_system("three_bar_truss").simulate(
        pd.DataFrame({"area_outer": [0.0, 0.0, 0.5], "area_middle": [0.0, 0.5, 0.0]}), None
    )
    assert np.isfinite(outcomes_df.to_numpy()).all()
    worst = outcomes_df[["g1", "g2", "g3"]].max(axis=1)
    assert (worst[:2] > 100).all() and worst[2] > 0  # no outer bars: far beyond; no middle bar: beyond


def test_out_of_bounds_design_is_rejected():
    with pytest.raises(ValueError, match="radius"):
        get_system("pressure_vessel").simulate(
            pd.DataFrame(
                {
                    "shell_thickness": [1.0],
                    "head_thickness": [1.0],
                    "radius": [5.0],
                    "length": [50.0],
                }
            ),
            None,
        )
