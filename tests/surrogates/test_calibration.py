"""Leave-one-out calibration: exact z-scores, and widening that keeps the mean."""

from __future__ import annotations

import pytest
import torch
from botorch.models import ModelListGP, SingleTaskGP
from botorch.models.transforms import Standardize

from surrogates.calibration import calibrate, calibration_factor, inflate, loo_zscores
from surrogates.gp import fit_gp


def data(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, 2, generator=g, dtype=torch.double)
    return X, torch.sin(6 * X[:, 0]) + 0.05 * torch.randn(n, generator=g, dtype=torch.double)


def test_loo_zscores_match_refitting_without_each_point():
    X, y = data()
    gp = fit_gp(X, y)
    z = loo_zscores(gp)
    targets = gp.train_targets  # standardized
    for i in (0, 5, 11):
        keep = torch.arange(len(y)) != i
        other = SingleTaskGP(
            X[keep],
            targets[keep].unsqueeze(-1),
            covar_module=gp.covar_module,
            mean_module=gp.mean_module,
            outcome_transform=None,
        )
        other.likelihood.noise = gp.likelihood.noise.detach().clone()
        with torch.no_grad():
            post = other.eval().posterior(X[i : i + 1], observation_noise=True)
        expected = (targets[i] - post.mean.squeeze()) / post.variance.squeeze().sqrt()
        assert torch.isclose(z[i], expected, atol=1e-5)


def test_an_overconfident_gp_gets_a_factor_above_one():
    X, y = data(20)
    gp = SingleTaskGP(X, y.unsqueeze(-1), outcome_transform=Standardize(m=1))
    gp.covar_module.lengthscale = 5.0  # far too smooth for sin(6x): intervals too narrow
    gp.likelihood.noise = 1e-4
    gp.eval()
    assert calibration_factor(gp) > 2.0
    assert calibration_factor(fit_gp(X, y)) < 1.5


def test_inflate_keeps_the_mean_and_scales_every_variance():
    X, y = data()
    gp = fit_gp(X, y)
    X_test = torch.rand(6, 2, dtype=torch.double)

    def moments():  # evaluated now: a posterior's variance is computed lazily
        with torch.no_grad():
            latent, noisy = gp.posterior(X_test), gp.posterior(X_test, observation_noise=True)
            return latent.mean.clone(), latent.variance.clone(), noisy.variance.clone()

    mean, variance, noisy = moments()
    inflate(gp, 3.0)
    mean_after, variance_after, noisy_after = moments()
    assert torch.allclose(mean_after, mean, atol=1e-6)
    assert torch.allclose(variance_after, 9.0 * variance, rtol=1e-4)
    assert torch.allclose(noisy_after, 9.0 * noisy, rtol=1e-4)


def test_inflate_scales_a_trust_weighted_gp_and_keeps_its_weights():
    X, y = data()
    weights = torch.full((len(y),), 1.0, dtype=torch.double)
    weights[:3] = 0.25  # three rows trusted as four times noisier
    gp = fit_gp(X, y, weights=weights)
    with torch.no_grad():
        before = gp.likelihood.noise_covar(X).diagonal().clone()
    inflate(gp, 2.0)  # raised "property 'noise' ... has no setter" before
    with torch.no_grad():
        after = gp.likelihood.noise_covar(X).diagonal()
    assert torch.allclose(after, 4.0 * before, rtol=1e-6)
    assert torch.allclose(after[:3], 4.0 * after[3], rtol=1e-6)


def test_calibrate_touches_only_the_named_outputs():
    X, y = data(20)
    bad = SingleTaskGP(X, y.unsqueeze(-1), outcome_transform=Standardize(m=1))
    bad.covar_module.lengthscale = 5.0
    bad.likelihood.noise = 1e-4
    model = ModelListGP(fit_gp(X, y), bad.eval())
    X_test = torch.rand(4, 2, dtype=torch.double)
    with torch.no_grad():
        before = model.posterior(X_test).variance
    factors = calibrate(model, [1])
    with torch.no_grad():
        after = model.posterior(X_test).variance
    assert len(factors) == 1 and factors[0] > 2.0
    assert torch.allclose(after[..., 0], before[..., 0])
    assert torch.allclose(after[..., 1], factors[0] ** 2 * before[..., 1], rtol=1e-4)


def test_amplitude_factor_is_the_chi_squared_bound_and_shrinks_with_data():
    from scipy.stats import chi2

    from surrogates.calibration import amplitude_factor

    assert amplitude_factor(3) == pytest.approx((2 / chi2.ppf(0.05, 2)) ** 0.5)
    factors = [amplitude_factor(n) for n in (3, 5, 10, 30, 100)]
    assert all(a > b for a, b in zip(factors, factors[1:], strict=False)) and factors[-1] > 1.0


def test_small_sample_calibration_widens_at_least_by_the_amplitude_factor():
    from surrogates.calibration import amplitude_factor

    X, y = data(6)
    model = ModelListGP(fit_gp(X, y))
    assert calibrate(model, [0], small_sample=True)[0] >= amplitude_factor(6)


def test_claims_factor_restores_the_claimed_safe_share_where_the_model_was_overconfident():
    import numpy as np

    from surrogates.calibration import MIN_CLAIMS, claims_factor

    rng = np.random.default_rng(0)
    z95 = 1.6448536269514722
    shares = []
    for _ in range(200):  # errors biased toward the limit (chosen where the model was optimistic) and too wide
        factor = claims_factor(rng.normal(0.5, 1.2, 40), 0.95)
        new = rng.normal(0.5, 1.2, 2000)  # the next claims at the margin, broken when u > z * factor
        shares.append((new > z95 * factor).mean())
    unwidened = (rng.normal(0.5, 1.2, 100_000) > z95).mean()
    assert unwidened > 0.15  # the model alone: three times the 5 % claimed
    assert 0.03 < np.mean(shares) < 0.07  # widened by its own record: about the 5 % claimed
    assert claims_factor(rng.normal(0.0, 0.5, 40), 0.95) == 1.0  # honest or cautious claims: never narrowed
    assert claims_factor(np.full(MIN_CLAIMS - 1, 3.0), 0.95) == 1.0  # too few to judge
