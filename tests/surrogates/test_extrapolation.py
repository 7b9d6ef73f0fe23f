"""Tests for shortening a safety GP's lengthscales to the shortest its data do not rule out."""

from __future__ import annotations

import math

import torch
from gpytorch.mlls import ExactMarginalLogLikelihood

from surrogates import fit_outcome_models
from surrogates.extrapolation import _neg_log_likelihood, shorten_lengthscales
from surrogates.profile_likelihood import PROFILE_DROP


def _gp(X: torch.Tensor, y: torch.Tensor):
    return fit_outcome_models(X, y.unsqueeze(-1)).models[0]


def test_a_few_smooth_points_leave_room_for_shorter_lengthscales_and_wider_intervals_far_away():
    torch.manual_seed(0)
    X = torch.linspace(0.0, 0.4, 6, dtype=torch.double).unsqueeze(-1)
    gp = _gp(X, 0.5 * X.squeeze(-1) + 0.01 * torch.randn(6, dtype=torch.double))
    fitted_nll = _neg_log_likelihood(ExactMarginalLogLikelihood(gp.likelihood, gp))
    far, near = torch.tensor([[0.5]], dtype=torch.double), X[2:3]  # 0.1 beyond the data; among it
    sd_far = gp.posterior(far).variance.sqrt().item()
    lengthscale = gp.covar_module.lengthscale.item()

    factor = shorten_lengthscales(gp)

    assert factor < 1.0
    assert math.isclose(gp.covar_module.lengthscale.item(), lengthscale * factor, rel_tol=1e-6)
    shortened_nll = _neg_log_likelihood(ExactMarginalLogLikelihood(gp.likelihood, gp))
    assert fitted_nll <= shortened_nll <= fitted_nll + PROFILE_DROP + 1e-9  # within the 95 % profile interval
    sd_far_now, sd_near_now = (gp.posterior(x).variance.sqrt().item() for x in (far, near))
    assert sd_far_now > 1.5 * sd_far  # the extrapolation is less sure
    assert sd_near_now < 0.3 * sd_far_now  # the measured stretch stays known


def test_dense_data_rule_out_shortening():
    X = torch.linspace(0.0, 1.0, 60, dtype=torch.double).unsqueeze(-1)
    gp = _gp(X, torch.sin(6 * X.squeeze(-1)))
    lengthscale = gp.covar_module.lengthscale.item()
    assert shorten_lengthscales(gp) == 1.0
    assert gp.covar_module.lengthscale.item() == lengthscale  # left as fitted
    assert all(p.requires_grad for p in gp.parameters())  # the model can still be refitted


def test_a_gp_with_known_noise_and_nothing_else_to_refit_is_shortened_too():
    X = torch.linspace(0.0, 0.4, 6, dtype=torch.double).unsqueeze(-1)
    gp = fit_outcome_models(X, 0.5 * X, noise_sd=[0.01]).models[0]
    assert shorten_lengthscales(gp) < 1.0
