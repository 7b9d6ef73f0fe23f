"""The planar arm: exact forward kinematics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.robot_arm import generate_dataset, simulate


def test_known_poses():
    df = pd.DataFrame({"theta1_deg": [0.0, 90.0, 0.0], "theta2_deg": [0.0, 0.0, 90.0], "theta3_deg": [0.0, 0.0, 90.0]})
    out = simulate(df)
    assert out["end_x"].tolist() == pytest.approx([2.4, 0.0, 1.0 - 0.6])
    assert out["end_y"].tolist() == pytest.approx([0.0, 2.4, 0.8])


def test_reach_and_noise():
    df = generate_dataset(200, seed=0)
    assert (np.hypot(df["end_x"], df["end_y"]) <= 2.4 + 1e-12).all()
    noisy = simulate(df.iloc[:, :3], np.random.default_rng(0))
    assert 0 < np.abs(noisy["end_x"] - df["end_x"]).max() < 0.02
