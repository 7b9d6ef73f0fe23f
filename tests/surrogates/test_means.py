"""Tests for mechanistic GP means and per-row trust weights."""

from __future__ import annotations

import pytest
import torch
from gpytorch.means import ConstantMean, LinearMean

from surrogates import CustomMean, EmaxMean, fit_gp, fit_outcome_models, mean_from_config


def emax(x: torch.Tensor) -> torch.Tensor:
    dose = 100**x  # the cube is log-scaled over 1..100
    return 2 + 5 * dose**1.5 / (10**1.5 + dose**1.5)


def rmse(model, X, y) -> float:
    with torch.no_grad():
        return float((model.posterior(X).mean.squeeze(-1) - y).square().mean().sqrt())


def test_emax_mean_beats_constant_mean_on_few_saturating_points():
    X = torch.tensor([[0.05], [0.3], [0.45], [0.6], [0.9]], dtype=torch.double)
    X_test = torch.linspace(0, 1, 60, dtype=torch.double).unsqueeze(-1)
    plain = fit_gp(X, emax(X[:, 0]))
    mean = EmaxMean(0, lower=1.0, upper=100.0, log=True)
    informed = fit_gp(X, emax(X[:, 0]), mean_module=mean)
    assert rmse(informed, X_test, emax(X_test[:, 0])) < 0.5 * rmse(plain, X_test, emax(X_test[:, 0]))
    assert 3 < mean.ec50.item() < 30  # learned in user units (true EC50 = 10)


def test_custom_mean_fits_its_own_parameters_and_works_with_categories():
    X = torch.rand(8, 1, dtype=torch.double, generator=torch.Generator().manual_seed(0))
    mean = CustomMean(lambda x, a, b: a + b * x[..., 0] ** 2, {"a": 0.0, "b": 0.0})
    fit_gp(X, 3 * X[:, 0] ** 2, mean_module=mean)
    assert mean.params["b"].item() > 0.5  # moved from 0 toward the data's curvature
    Xc = torch.cat([X, (torch.arange(8) % 2).double().unsqueeze(-1)], -1)
    mixed = fit_gp(Xc, 3 * X[:, 0] ** 2, cat_dims=[1], mean_module=EmaxMean(0))
    assert isinstance(mixed.mean_module, EmaxMean)


def test_mean_from_config():
    assert isinstance(mean_from_config({"kind": "constant"}, ["a"]), ConstantMean)
    assert isinstance(mean_from_config({"kind": "linear"}, ["a", "b"]), LinearMean)
    m = mean_from_config({"kind": "emax", "input": "dose"}, ["size", "dose"], {"dose": (1.0, 100.0, True)})
    assert isinstance(m, EmaxMean) and m.input_index == 1 and m.log
    assert mean_from_config(None, ["a"]) is None
    with pytest.raises(ValueError, match="mean.input must be one of"):
        mean_from_config({"kind": "emax", "input": "temp"}, ["dose"])
    with pytest.raises(ValueError, match="mean.kind"):
        mean_from_config({"kind": "hill"}, ["dose"])


def test_down_weighted_contradictory_row_moves_the_mean_less():
    X = torch.linspace(0, 1, 12, dtype=torch.double).unsqueeze(-1)
    y = torch.sin(3 * X[:, 0])
    X_all = torch.cat([X, torch.tensor([[0.5]], dtype=torch.double)])
    y_all = torch.cat([y, torch.tensor([3.0], dtype=torch.double)])  # another lab's outlier
    at = torch.tensor([[0.5]], dtype=torch.double)
    truth = float(torch.sin(torch.tensor(1.5)))
    shift = {}
    for w in (1.0, 0.05):
        weights = torch.ones(13, dtype=torch.double)
        weights[-1] = w
        with torch.no_grad():
            shift[w] = abs(float(fit_gp(X_all, y_all, weights=weights).posterior(at).mean) - truth)
    assert shift[0.05] < 0.5 * shift[1.0]
    with torch.no_grad():  # weights 1 everywhere = the plain GP
        plain = float(fit_gp(X_all, y_all).posterior(at).mean)
        ones = float(fit_gp(X_all, y_all, weights=torch.ones(13, dtype=torch.double)).posterior(at).mean)
    assert ones == pytest.approx(plain, abs=1e-4)
    # known noise: yvar / weight; and per-outcome weights in fit_outcome_models
    model = fit_outcome_models(X_all, y_all.unsqueeze(-1), noise_sd=[0.1], weights=weights)
    assert torch.allclose(
        model.models[0].likelihood.noise[-1],
        torch.tensor(0.01 / 0.05, dtype=torch.double) / model.models[0].outcome_transform.stdvs.square().squeeze(),
    )
    with pytest.raises(ValueError, match="positive"):
        fit_gp(X_all, y_all, weights=torch.zeros(13, dtype=torch.double))
