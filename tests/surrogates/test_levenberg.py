"""Stochastic Levenberg-Marquardt (`surrogates.levenberg`)."""

from __future__ import annotations

import math

import pytest
import torch

from surrogates.levenberg import hill_curve, hill_residual, stochastic_lm


def hill_points(n=2000, seed=0):
    g = torch.Generator().manual_seed(seed)
    dose = 10 ** (-1 + 3 * torch.rand(n, generator=g, dtype=torch.double))
    truth = torch.tensor([0.2, 1.5, math.log(4.0), math.log(1.8)], dtype=torch.double)
    return dose, hill_curve(truth, dose) + 0.05 * torch.randn(n, generator=g, dtype=torch.double), truth


def test_stochastic_lm_recovers_a_hill_curve_from_a_poor_start():
    dose, response, truth = hill_points()
    start = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.double)
    fit = stochastic_lm(hill_residual, start, dose, response, batch_size=200, epochs=2)
    assert (fit.params - truth).abs().max() < 0.05
    assert fit.losses[-1] < 1.2 * 0.05**2
    assert fit.accepted <= fit.steps == 20


def test_a_linear_least_squares_problem_is_solved_by_gauss_newton_steps():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(400, 3, generator=g, dtype=torch.double)
    w = torch.tensor([1.0, -2.0, 0.5], dtype=torch.double)
    y = X @ w
    fit = stochastic_lm(lambda p, Xb, yb: Xb @ p - yb, torch.zeros(3, dtype=torch.double), X, y, 100, 3, decay=0.5)
    assert torch.allclose(fit.params, w, atol=1e-5)


def test_bad_arguments_are_refused():
    dose, response, _ = hill_points(20)
    with pytest.raises(ValueError, match="decay"):
        stochastic_lm(hill_residual, torch.zeros(4, dtype=torch.double), dose, response, decay=1.0)
    with pytest.raises(ValueError, match="one length"):
        stochastic_lm(hill_residual, torch.zeros(4, dtype=torch.double), dose, response[:-1])
