"""Widen a GP's predictive intervals when its leave-one-out errors say it is overconfident.

A GP fitted by maximizing the marginal likelihood on a few points often claims more than it
knows: its lengthscales come out long and its noise small, and its intervals are too narrow
away from the data. For safety limits that is the dangerous direction. The check is exact
leave-one-out cross-validation (Rasmussen & Williams 2006, sec. 5.4.2): with `K` the kernel
matrix plus noise at the training points and `r = K^-1 (y - m)`, the prediction of point `i`
from the others misses by `r_i / [K^-1]_ii` with variance `1 / [K^-1]_ii`, so
`z_i = r_i / sqrt([K^-1]_ii)` should be standard normal. When the mean of `z_i^2` exceeds 1 the
model is overconfident by the factor `c = sqrt(mean(z_i^2))`, and `inflate` multiplies the kernel
and the noise by `c^2`: the posterior mean stays exactly where it was and every predictive
variance grows by `c^2` (intervals never shrink: `c >= 1`).
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np
import torch
from botorch.models import ModelListGP
from botorch.models.gpytorch import GPyTorchModel
from gpytorch.kernels import ScaleKernel
from gpytorch.likelihoods import FixedNoiseGaussianLikelihood
from scipy.stats import chi2, norm
from torch import Tensor

MAX_FACTOR = 10.0  # never widen by more than this: a few wild points should not erase all knowledge


def loo_zscores(gp: GPyTorchModel) -> Tensor:
    """Exact leave-one-out z-scores of a fitted exact GP at its training points (in its training units)."""
    gp.train()
    try:
        with torch.no_grad():
            X = cast(tuple[Tensor, ...], gp.train_inputs)[0]  # gpytorch's `ExactGP` attribute, untyped
            prior = gp.likelihood(gp(X), X) if _fixed_noise(gp) else gp.likelihood(gp(X))
            K = prior.covariance_matrix
            L = torch.linalg.cholesky(K + 1e-9 * torch.eye(K.shape[-1], dtype=K.dtype))
            K_inv = torch.cholesky_inverse(L)
            r = K_inv @ (gp.train_targets - prior.mean).unsqueeze(-1)
            return r.squeeze(-1) / K_inv.diagonal().clamp_min(1e-300).sqrt()
    finally:
        gp.eval()


def calibration_factor(gp: GPyTorchModel) -> float:
    """`sqrt(mean(z^2))` of the leave-one-out z-scores, at least 1 and at most `MAX_FACTOR`."""
    z = loo_zscores(gp)
    if z.numel() < 3 or not torch.isfinite(z).all():
        return 1.0
    return float(z.pow(2).mean().sqrt().clamp(1.0, MAX_FACTOR))


def amplitude_factor(n: int, level: float = 0.95) -> float:
    """How much larger the outcome's spread may be than `n` measurements show, at `level`.

    The GP's amplitude is learned from the spread of `n` values, which underestimates it when `n`
    is small. With `s^2` the sample variance, `(n - 1) s^2 / sigma^2` is chi-squared with `n - 1`
    degrees of freedom, so `sigma <= s * sqrt((n - 1) / chi2.ppf(1 - level, n - 1))` at that
    level: 4.4x for 3 points, 1.9x for 7, 1.3x for 27. SafeOpt assumes the amplitude is known;
    this is the conservative stand-in for it.
    """
    if n < 2:
        return MAX_FACTOR
    return float(min(MAX_FACTOR, math.sqrt((n - 1) / chi2.ppf(1 - level, n - 1))))


def inflate(gp: GPyTorchModel, factor: float, noise: bool = True) -> GPyTorchModel:
    """Scale the kernel (and with `noise` the noise) of `gp` by `factor^2`, in place.

    Both together keep the posterior mean and widen every interval by `factor`. The kernel alone
    says the outcome may vary more than the data showed, while measurements stay as precise as
    they were: intervals widen away from the data, and much less at the designs measured.
    """
    if factor == 1.0:
        return gp
    gp.train()
    scaled = ScaleKernel(gp.covar_module)
    scaled.outputscale = factor**2
    scaled.raw_outputscale.requires_grad_(False)
    gp.covar_module = scaled.to(gp.train_targets)
    if noise:
        gp.likelihood.noise = gp.likelihood.noise * factor**2
    return gp.eval()


def calibrate(model: ModelListGP, outputs: list[int], small_sample: bool = False) -> list[float]:
    """Widen the GPs at `outputs` of `model` by their leave-one-out factors; return the factors used.

    With `small_sample`, each GP's amplitude is first scaled by `amplitude_factor` of its number
    of points (the kernel only: the measurements are no less precise for being few), and the
    returned factor is the larger of the two.
    """
    factors = []
    for j in outputs:
        gp = model.models[j]
        assert isinstance(gp, GPyTorchModel)  # a ModelListGP holds GPyTorchModels
        n_train = cast(Tensor, gp.train_targets).shape[-1]  # gpytorch's `ExactGP` attribute, untyped
        amplitude = amplitude_factor(n_train) if small_sample else 1.0
        inflate(gp, amplitude, noise=False)
        factor = calibration_factor(gp)
        inflate(gp, factor)
        factors.append(max(amplitude, factor))
    return factors


def _fixed_noise(gp: GPyTorchModel) -> bool:
    return isinstance(gp.likelihood, FixedNoiseGaussianLikelihood)


MIN_CLAIMS = 8  # measured proposals needed before their record widens a safety model


def claims_factor(u: np.ndarray, confidence: float) -> float:
    """How much wider a safety model must be for its past claims at `confidence` to have held.

    Proposals are chosen where the model is optimistic about them, so the errors of its claims
    there are biased toward the limit and can be wider than leave-one-out errors at the
    measured designs suggest (feedback covariate shift: Fannjiang et al., PNAS 2022). Each
    measured proposal gives `u = (y - mean) / sd`, its error in the claimed (unwidened) sd,
    signed so that positive is toward breaking the limit. A design claimed exactly at the
    confidence sits `z = probit(confidence)` sds inside its limit, and is broken when `u > z`.
    With the errors' mean `m` and sd `s` (a normal fit), widening every sd by
    `f = (m + z * s) / z` moves the limit to the errors' own `confidence` quantile, so such a
    design is broken with probability `1 - confidence` again.

    Args:
        u: Signed standardized errors of past claims (NaN entries are ignored).
        confidence: The confidence the claims were made at (e.g. 0.95).

    Returns:
        The factor, at least 1 and at most `MAX_FACTOR`; 1 with fewer than `MIN_CLAIMS` errors.
    """
    u = np.asarray(u, dtype=float)
    u = u[np.isfinite(u)]
    if len(u) < MIN_CLAIMS:
        return 1.0
    z = float(norm.ppf(confidence))
    return float(np.clip((u.mean() + z * u.std(ddof=1)) / z, 1.0, MAX_FACTOR))
