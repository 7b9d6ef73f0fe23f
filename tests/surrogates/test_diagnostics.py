"""Tests for cross-validated diagnostics: metrics, coverage and the calibration verdict."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from surrogates import (
    NetworkSpec,
    TrainingOptions,
    calibration_verdict,
    cross_validate,
    fit_predict_ensemble,
    fit_predict_gp,
)


def gp_data(n: int = 60):
    g = torch.Generator().manual_seed(0)
    X = torch.rand(n, 2, generator=g, dtype=torch.double)
    Y = torch.stack([torch.sin(4 * X[:, 0]) + X[:, 1], X[:, 0] - X[:, 1]], -1)
    return X, Y + 0.1 * torch.randn(n, 2, generator=g, dtype=torch.double)


def test_gp_cross_validation_coverage_near_nominal():
    X, Y = gp_data()
    Y[3, 1] = float("nan")
    cv_df, oof = cross_validate(fit_predict_gp, X, Y, k=5, outcome_names=["a", "b"])
    assert list(cv_df["outcome"]) == ["a", "b"] and list(cv_df["n"]) == [60, 59]
    assert (cv_df["r2"] > 0.8).all()
    assert cv_df["coverage_95"].between(0.88, 0.99).all() and (cv_df["coverage_68"].between(0.45, 0.9)).all()
    assert len(oof) == 119 and set(oof["fold"]) == set(range(5)) and (oof["sd"] > 0).all()
    assert cv_df["verdict"].str.startswith("well calibrated").all()


def test_overconfident_model_is_flagged():
    X, Y = gp_data()

    def overconfident(X_train, Y_train, X_test):
        mean, var = fit_predict_gp(X_train, Y_train, X_test)
        return mean, var / 100

    cv_df, _ = cross_validate(overconfident, X, Y, k=4)
    assert (cv_df["coverage_95"] < 0.85).all()
    assert cv_df["verdict"].str.startswith("poorly calibrated").all()
    assert calibration_verdict({"outcome": "y", "coverage_95": 1.0}).startswith("poorly calibrated")
    with pytest.raises(ValueError, match="k"):
        cross_validate(fit_predict_gp, X, Y, k=1)


def test_ensemble_cross_validation_runs():
    torch.set_num_threads(1)
    X, Y = gp_data(30)
    fp = partial(
        fit_predict_ensemble, n_members=2, network=NetworkSpec(hidden=(8,)), training=TrainingOptions(epochs=20)
    )
    cv_df, _ = cross_validate(fp, X, Y[:, :1], k=3)
    assert np.isfinite(cv_df[["r2", "rmse", "nll", "coverage_68", "coverage_95"]].to_numpy()).all()
