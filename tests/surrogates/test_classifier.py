"""Tests for the failure classifier: it learns where runs fail, stays in (0, 1), has gradients, says when unfitted."""

from __future__ import annotations

import pytest
import torch

from surrogates import FeasibilityModel

# Test points: two deep in the region where runs succeed (x1 < 0.5), two deep in the failing one.
SUCCEEDING = torch.tensor([[0.1, 0.5], [0.25, 0.2]], dtype=torch.double)
FAILING = torch.tensor([[0.8, 0.5], [0.9, 0.9]], dtype=torch.double)


@pytest.fixture(scope="module")
def training():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(30, 2, generator=g, dtype=torch.double)
    return X, X[:, 0] < 0.5


@pytest.fixture(scope="module")
def model(training):
    torch.manual_seed(0)
    return FeasibilityModel().fit(*training)


def test_fit_returns_the_model_itself(training):
    torch.manual_seed(0)
    model = FeasibilityModel()
    assert model.fit(*training) is model


def test_probability_is_high_where_runs_succeeded_and_low_where_they_failed(model):
    with torch.no_grad():
        ok, bad = model.probability(SUCCEEDING), model.probability(FAILING)
    assert ok.shape == (2,) and bad.shape == (2,)
    assert (ok > 0.7).all()
    assert (bad < 0.3).all()


def test_probability_separates_the_training_runs(model, training):
    X, succeeded = training
    with torch.no_grad():
        p = model.probability(X)
    assert p[succeeded].mean() > 0.7 > 0.3 > p[~succeeded].mean()
    assert p[succeeded].min() > p[~succeeded].max()


def test_probability_is_strictly_between_zero_and_one(model):
    X = torch.rand(200, 2, generator=torch.Generator().manual_seed(1), dtype=torch.double)
    with torch.no_grad():
        p = model.probability(torch.cat([X, SUCCEEDING, FAILING]))
    assert torch.isfinite(p).all()
    assert ((p > 0.0) & (p < 1.0)).all()


def test_probability_keeps_leading_batch_dimensions(model):
    X = torch.rand(5, 3, 2, generator=torch.Generator().manual_seed(2), dtype=torch.double)
    with torch.no_grad():
        p = model.probability(X)
        flat = model.probability(X.reshape(15, 2))
    assert p.shape == (5, 3)
    assert torch.allclose(p.reshape(15), flat, atol=1e-8)


def test_probability_is_differentiable_in_x(model):
    X = torch.tensor([[0.5, 0.5], [0.3, 0.7]], dtype=torch.double, requires_grad=True)
    model.probability(X).sum().backward()
    assert X.grad is not None and torch.isfinite(X.grad).all()
    assert X.grad[0, 0] < 0  # moving toward the failing side (larger x1) lowers P(success)
    # The gradient agrees with central finite differences.
    h = 1e-5
    for j in range(2):
        step = torch.zeros(2, dtype=torch.double)
        step[j] = h
        with torch.no_grad():
            up = model.probability((X[0] + step).unsqueeze(0))
            down = model.probability((X[0] - step).unsqueeze(0))
        assert float((up - down) / (2 * h)) == pytest.approx(float(X.grad[0, j]), rel=1e-3, abs=1e-6)


def test_an_unfitted_model_says_so():
    with pytest.raises(RuntimeError, match="not fitted"):
        FeasibilityModel().probability(SUCCEEDING)
