"""Tests for the GP surrogates: fit quality, categorical inputs, degenerate data, NaN, gradients."""

from __future__ import annotations

import warnings

import pytest
import torch
from botorch.models import MixedSingleTaskGP, ModelListGP

import surrogates.gp
from surrogates import Surrogate, SurrogateWarning, fit_gp, fit_outcome_models

OFFSETS = torch.tensor([0.0, 1.0, -1.0], dtype=torch.double)


def smooth(X: torch.Tensor) -> torch.Tensor:
    return torch.sin(6 * X[..., 0])


def mixed(X: torch.Tensor) -> torch.Tensor:
    """A smooth function of column 0 shifted by the category in column 1."""
    return torch.sin(3 * X[..., 0]) + OFFSETS[X[..., 1].long()]


def mixed_data(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, dtype=torch.double, generator=g)
    category = torch.randint(0, 3, (n, 1), generator=g).double()
    return torch.cat([x, category], dim=-1)


def rmse(model, X: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        mean = model.posterior(X).mean.squeeze(-1)
    return float((mean - y).square().mean().sqrt())


@pytest.fixture(scope="module")
def mixed_model():
    X = torch.cat(
        [torch.linspace(0, 1, 15, dtype=torch.double).unsqueeze(-1), (torch.arange(15) % 3).double()[:, None]], -1
    )
    return fit_gp(X, mixed(X), cat_dims=[1])


def test_fit_gp_fits_a_smooth_function():
    X = torch.linspace(0, 1, 15, dtype=torch.double).unsqueeze(-1)
    model = fit_gp(X, smooth(X))
    X_test = torch.rand(50, 1, dtype=torch.double, generator=torch.Generator().manual_seed(0))
    assert rmse(model, X_test, smooth(X_test)) < 0.05  # the function spans [-1, 1]
    assert isinstance(model, Surrogate)
    assert not model.training  # returned ready to predict


def test_fit_gp_with_a_categorical_column_uses_the_mixed_model(mixed_model):
    assert isinstance(mixed_model, MixedSingleTaskGP)
    X_test = mixed_data(30, seed=2)
    assert rmse(mixed_model, X_test, mixed(X_test)) < 0.1  # categories shift the output by up to 2


def test_constant_outcome_does_not_crash():
    X = torch.rand(8, 2, dtype=torch.double, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SurrogateWarning)  # no fallback needed either
        model = fit_gp(X, torch.full((8,), 3.0, dtype=torch.double))
    with torch.no_grad():
        posterior = model.posterior(torch.rand(5, 2, dtype=torch.double))
    assert torch.allclose(posterior.mean, torch.full((5, 1), 3.0, dtype=torch.double), atol=1e-3)
    assert torch.isfinite(posterior.variance).all() and (posterior.variance >= 0).all()


def test_repeated_design_does_not_crash():
    X = torch.full((5, 2), 0.5, dtype=torch.double)
    y = 1.0 + 1e-6 * torch.arange(5, dtype=torch.double)
    model = fit_gp(X, y)
    with torch.no_grad():
        mean = model.posterior(torch.tensor([[0.5, 0.5]], dtype=torch.double)).mean
    assert torch.isfinite(mean).all() and abs(float(mean) - 1.000002) < 1e-3


def test_fit_outcome_models_trains_each_outcome_on_its_own_rows():
    X = torch.rand(10, 2, dtype=torch.double, generator=torch.Generator().manual_seed(3))
    Y = torch.stack([X.sum(-1), X[:, 0] - X[:, 1]], dim=-1)
    Y[[1, 4], 0] = float("nan")
    Y[[0, 4, 7], 1] = float("nan")
    model = fit_outcome_models(X, Y)
    assert isinstance(model, ModelListGP) and model.num_outputs == 2
    for j, sub in enumerate(model.models):
        seen = ~torch.isnan(Y[:, j])
        assert torch.equal(sub.train_inputs[0], X[seen])
        assert not torch.isnan(sub.train_targets).any()
    with torch.no_grad():
        posterior = model.posterior(X)
    assert posterior.mean.shape == (10, 2)
    assert torch.isfinite(posterior.mean).all()
    assert abs(float(posterior.mean[1, 0]) - float(X[1].sum())) < 0.1  # predicted where it was not measured


@pytest.mark.parametrize("cat_dims", [None, [1]])
def test_outcomes_on_the_same_rows_are_fitted_together_as_separate_fits_would_be(cat_dims, monkeypatch):
    X = mixed_data(30, seed=5)
    Y = torch.stack([mixed(X), torch.cos(4 * X[:, 0]) - OFFSETS[X[:, 1].long()]], dim=-1)
    noise = [0.05, 0.05]  # known noise: a well-posed fit, so both ways reach the same optimum
    runs = []
    real = surrogates.gp.fit_gpytorch_mll
    monkeypatch.setattr(surrogates.gp, "fit_gpytorch_mll", lambda mll, **kw: runs.append(mll) or real(mll, **kw))
    together = fit_outcome_models(X, Y, cat_dims, noise)
    assert len(runs) == 1  # one optimizer run for both
    apart = [fit_outcome_models(X, Y[:, j : j + 1], cat_dims, noise[j : j + 1]) for j in range(2)]
    X_test = mixed_data(20, seed=6)
    with torch.no_grad():
        both = together.posterior(X_test)
        for j, alone in enumerate(apart):
            one = alone.posterior(X_test)
            assert torch.allclose(both.mean[:, j], one.mean[:, 0], atol=1e-4)
            assert torch.allclose(both.variance[:, j], one.variance[:, 0], rtol=1e-3)
    if cat_dims is None:  # each outcome keeps lengthscales of its own
        first, second = (m.covar_module.lengthscale for m in together.models)
        assert not torch.allclose(first, second, rtol=0.1)


def test_a_batched_fit_that_fails_gives_way_to_one_fit_per_outcome(monkeypatch):
    X = mixed_data(20, seed=7)
    Y = torch.stack([mixed(X), X[:, 0] ** 2], dim=-1)
    real = surrogates.gp.fit_gpytorch_mll

    def fails_when_batched(mll, **kwargs):
        if mll.model.num_outputs > 1:
            raise RuntimeError("not positive definite")
        return real(mll, **kwargs)

    monkeypatch.setattr(surrogates.gp, "fit_gpytorch_mll", fails_when_batched)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SurrogateWarning)  # the batched fit's fallback is not reported either
        model = fit_outcome_models(X, Y)
    alone = fit_outcome_models(X, Y[:, 1:])  # one outcome: no batched fit
    X_test = mixed_data(20, seed=8)
    with torch.no_grad():  # fitted as it would be alone, not left at the prior
        assert torch.allclose(model.posterior(X_test).mean[:, 1], alone.posterior(X_test).mean[:, 0])


def test_posterior_is_differentiable_in_x():
    X = torch.rand(8, 2, dtype=torch.double, generator=torch.Generator().manual_seed(4))
    model = fit_outcome_models(X, torch.stack([torch.sin(3 * X[:, 0]), X[:, 1] ** 2], dim=-1))
    X_new = torch.tensor([[0.3, 0.6], [0.8, 0.1]], dtype=torch.double, requires_grad=True)
    posterior = model.posterior(X_new)
    (posterior.mean.sum() + posterior.variance.sum()).backward()
    assert X_new.grad is not None
    assert torch.isfinite(X_new.grad).all()
    assert X_new.grad.abs().sum() > 0


def test_mixed_posterior_is_differentiable_in_the_continuous_input(mixed_model):
    X_new = torch.tensor([[0.25, 1.0], [0.75, 2.0]], dtype=torch.double, requires_grad=True)
    mixed_model.posterior(X_new).mean.sum().backward()
    assert X_new.grad is not None and torch.isfinite(X_new.grad).all()
    assert (X_new.grad[:, 0].abs() > 0).all()
