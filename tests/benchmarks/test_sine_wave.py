"""The sine wave of Ren et al. (2020) and the benchmark arm of Kruse et al. (2021)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks import robot_arm, sine_wave


def test_sine_wave_known_values_and_dataset():
    out = sine_wave.simulate(pd.DataFrame({"x1": [0.0, 1 / 6, -1 / 6], "x2": [0.0, 1 / 3, 0.0]}))
    assert out["y"].tolist() == pytest.approx([1.0, 0.0, 0.0], abs=1e-12)
    df = sine_wave.generate_dataset(500, seed=0)
    assert df[["x1", "x2"]].abs().max().max() <= 1.0 and df["y"].abs().max() <= 2.0
    assert np.allclose(df["y"], sine_wave.simulate(df)["y"])


def test_benchmark_arm_known_pose_and_priors():
    straight_up = pd.DataFrame({"x1": [0.3], "x2": [np.pi / 2], "x3": [0.0], "x4": [0.0]})
    assert robot_arm.benchmark_simulate(straight_up).iloc[0].tolist() == pytest.approx([0.3 + 2.0, 0.0], abs=1e-12)
    df = robot_arm.benchmark_dataset(4000, seed=0)
    assert df[["x1", "x2", "x3", "x4"]].std().tolist() == pytest.approx([0.25, 0.5, 0.5, 0.5], rel=0.05)
    bounds = np.asarray(robot_arm.benchmark_bounds())
    assert (df[["x1", "x2", "x3", "x4"]].to_numpy() >= bounds[:, 0]).all()
    assert (df[["x1", "x2", "x3", "x4"]].to_numpy() <= bounds[:, 1]).all()
