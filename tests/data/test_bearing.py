"""Sanity checks of the textured-bearing Reynolds solver against known cases and Etsion's trends."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data.bearing import Grid, bearing_outputs, film_thickness, generate_dataset, simulate, solve_pressure

COARSE = Grid(48, 24, 2)


def test_plain_parallel_slider_carries_no_load():
    P = solve_pressure(np.ones((48, 24)))
    assert np.abs(P).max() < 1e-12
    out = bearing_outputs(5.0, 80.0, 0.3, 0.0, COARSE)  # no texture at all
    assert out["load_N"] == pytest.approx(0.0, abs=1e-12) and out["friction_coeff"] == np.inf


def test_pressure_is_never_negative_and_texture_deepens_the_film_only_in_the_inlet():
    H = film_thickness(5.0, 80.0, 0.3, 0.5, COARSE)
    assert H.min() == pytest.approx(1.0) and H[:24].max() > 2.0 and H[24:].max() == pytest.approx(1.0, abs=0.2)
    assert solve_pressure(H).min() >= 0.0


def test_partial_texturing_load_follows_etsion_trend():
    loads = {a: bearing_outputs(5.0, 80.0, 0.3, a, COARSE)["load_N"] for a in (0.2, 0.7, 1.0)}
    assert loads[0.2] > 0.1
    assert loads[0.7] > 1.3 * loads[0.2]  # rises towards an optimum in partial texturing...
    assert loads[0.7] > 1.1 * loads[1.0]  # ...and full texturing carries less


def test_simulate_and_dataset():
    df = generate_dataset(3, seed=1, grid=Grid(24, 12, 2), progress=False)
    assert list(df.columns[-3:]) == ["friction_coeff", "load_N", "friction_N"] and (df["load_N"] > 0).all()
    noisy = simulate(df.iloc[:, :4], np.random.default_rng(0), grid=Grid(24, 12, 2))
    assert not np.allclose(noisy["load_N"], df["load_N"]) and np.allclose(noisy["load_N"], df["load_N"], rtol=0.1)
    with pytest.raises(ValueError, match="area_density"):
        simulate(
            pd.DataFrame(
                {"dimple_depth_um": [5], "dimple_radius_um": [80], "area_density": [0.9], "textured_fraction": [0.5]}
            )
        )
