"""Information-theoretic expanders of a safe set (ISE: Bottero et al., NeurIPS 2022 and JMLR 2024).

ISE measures, inside the safe set S, the design `x` whose measurement tells most about whether
other designs `z` are safe: it maximizes `max_z I(y_x; Psi(z))`, `Psi(z) = 1{limit holds at z}`.

The entropy of the Bernoulli `Psi(z)`, with `m_z` the latent mean's margin to the limit and
`s_z` its posterior sd, is approximated by a Gaussian-shaped function,
`H[Psi(z)] ~ ln2 exp(-c m_z^2 / s_z^2)`, `c = 1 / (pi ln2)`. Measuring `x` (noise variance
`r_x`) leaves `z` the variance `v' = s_z^2 - k(x, z)^2 / (s_x^2 + r_x)` and moves its mean by a
normal of variance `u = s_z^2 - v'`; averaging the approximation over that move gives

    I(y_x; Psi(z)) ~ ln2 exp(-c m_z^2 / s_z^2)
                     - ln2 sqrt(v' / (v' + 2 c u)) exp(-c m_z^2 / (v' + 2 c u)),

in nats (`E[exp(-a X^2)] = exp(-a m^2 / (1 + 2 a u)) / sqrt(1 + 2 a u)` for `X ~ N(m, u)`).
The posterior covariances `k(x, z)` come from each safety GP's joint posterior over `[x, z]`.

Several limits: the information is summed over the limits (each limit's GP is separate, so this
is the information about the vector of per-limit indicators, not about their conjunction) and
then maximized over `z`. A two-sided limit uses the margin to its nearer bound.

`design.safe_set` passes as targets the candidates whose objective could still beat the best
safe one (GoOSE's filter), so the information is about the safety of designs worth reaching.

A batch takes the expanders greedily: after each pick, every safety GP is conditioned on a
measurement there (`condition_on_observations`; the variances do not depend on the value), so
the next pick is the most informative given the earlier ones rather than the same spot again.

Example:
    >>> gains = ise_expanders(model, X, safe, targets, [limit], ["y", "s"], picks=2)
    >>> X[gains > 0]   # at most 2 rows of the safe set, in the order of `gains`
"""

from __future__ import annotations

import math

import torch
from botorch.models import ModelListGP
from botorch.models.gpytorch import GPyTorchModel
from botorch.posteriors import GPyTorchPosterior
from gpytorch.likelihoods import FixedNoiseGaussianLikelihood
from torch import Tensor

from design.goals import SafetyLimit

C = 1.0 / (math.pi * math.log(2.0))  # the Gaussian approximation's width: exp(-c t^2) ~ binary entropy / ln2
TARGETS = 256  # designs `z` whose safety the information is about: the most uncertain ones
PICKS = 8  # expanders ranked per call (a batch takes half its designs from them)
MIN_GAIN = 1e-6  # nats: less than this tells nothing


def safety_entropy(margin: Tensor, variance: Tensor) -> Tensor:
    """The approximate entropy (nats) of `1{limit holds}` given the margin's mean and variance."""
    return math.log(2.0) * torch.exp(-C * margin**2 / variance.clamp_min(1e-18))


def safety_information(margin: Tensor, variance_z: Tensor, covariance: Tensor, variance_y: Tensor) -> Tensor:
    """`I(y_x; Psi(z))` (nats) for each pair, from the posterior at `z` and its covariance with `x`.

    Args:
        margin: A `m` tensor, the posterior mean's distance to the limit at each `z`.
        variance_z: A `m` tensor, the latent posterior variance at each `z`.
        covariance: A `n x m` tensor, the posterior covariance of `f(x)` and `f(z)`.
        variance_y: A `n` tensor, the variance of a measurement at `x` (latent plus noise).

    Returns:
        A `n x m` tensor.
    """
    moved = covariance**2 / variance_y.clamp_min(1e-18).unsqueeze(-1)  # the variance of z's mean shift
    left = (variance_z - moved).clamp_min(1e-18)
    spread = left + 2.0 * C * moved
    after = math.log(2.0) * torch.sqrt(left / spread) * torch.exp(-C * margin**2 / spread)
    return (safety_entropy(margin, variance_z) - after).clamp_min(0.0)


def ise_expanders(
    model: ModelListGP,
    X: Tensor,
    safe: Tensor,
    targets: Tensor,
    safety: list[SafetyLimit],
    outcomes: list[str],
    picks: int = PICKS,
) -> Tensor:
    """Greedy ISE picks among the safe candidates: each one's information gain, 0 elsewhere.

    Args:
        model: The fitted GPs, one per outcome.
        X: A `n x d` tensor of candidates.
        safe: A boolean `n` tensor, the safe set (only these are picked).
        targets: A boolean `n` tensor, the candidates whose safety is worth learning (the
            `TARGETS` most uncertain of them are used as `z`).
        safety: The safety limits; `outcomes` names the model's outputs.
        picks: How many expanders to rank.

    Returns:
        A `n` tensor (double): for the picked candidates, the information (nats, summed over
        limits, maximized over `z`) their measurement gives given the earlier picks, made
        non-increasing in the order of picking; 0 for the others.
    """
    gains = torch.zeros(X.shape[0], dtype=torch.double)
    limited = [outcomes.index(limit.name) for limit in safety]
    gps = [_as_gp(model.models[j]) for j in limited]
    Z = X[targets]
    if not safe.any() or Z.shape[0] == 0:
        return gains
    with torch.no_grad():
        uncertainty = sum(_entropy_at(gp, limit, Z) for gp, limit in zip(gps, safety, strict=True))
        assert isinstance(uncertainty, Tensor)
        Z = Z[torch.argsort(uncertainty, descending=True)[:TARGETS]]
        rows = torch.nonzero(safe).squeeze(-1)
        noise = [_noise_variance(gp, X[rows]) for gp in gps]
    left = torch.ones(rows.shape[0], dtype=torch.bool)
    last = math.inf
    for _ in range(min(picks, rows.shape[0])):
        with torch.no_grad():
            info = sum(_information(gp, limit, X[rows], Z, r) for gp, limit, r in zip(gps, safety, noise, strict=True))
        assert isinstance(info, Tensor)
        score = info.max(dim=-1).values.masked_fill(~left, -1.0)
        best = int(score.argmax())
        if float(score[best]) < MIN_GAIN:
            break
        last = min(last, float(score[best]))
        gains[rows[best]] = last
        left[best] = False
        gps = [_conditioned(gp, X[rows[best]].unsqueeze(0), r[best]) for gp, r in zip(gps, noise, strict=True)]
    return gains


def _margin(limit: SafetyLimit, mean: Tensor) -> Tensor:
    """The mean's distance to the limit (to the nearer bound of a two-sided one; negative: broken)."""
    upper = None if limit.upper is None else limit.upper - mean
    lower = None if limit.lower is None else mean - limit.lower
    if upper is None:
        assert lower is not None  # a limit has a bound (`SafetyLimit` checks)
        return lower
    return upper if lower is None else torch.minimum(upper, lower)


def _entropy_at(gp: GPyTorchModel, limit: SafetyLimit, Z: Tensor) -> Tensor:
    posterior = gp.posterior(Z)
    return safety_entropy(_margin(limit, posterior.mean.squeeze(-1)), posterior.variance.squeeze(-1))


def _information(gp: GPyTorchModel, limit: SafetyLimit, X: Tensor, Z: Tensor, noise: Tensor) -> Tensor:
    """`n x m` information of measuring each row of `X` about the limit at each row of `Z`."""
    n = X.shape[0]
    posterior = gp.posterior(torch.cat([X, Z]))  # joint: the covariance of x and z given the data
    assert isinstance(posterior, GPyTorchPosterior)  # a GP without posterior transform
    mvn = posterior.distribution
    variance = mvn.variance.reshape(-1)
    covariance = mvn.lazy_covariance_matrix[..., :n, n:].to_dense().reshape(n, -1)
    margin = _margin(limit, mvn.mean.reshape(-1)[n:])
    return safety_information(margin, variance[n:], covariance, variance[:n] + noise)


def _noise_variance(gp: GPyTorchModel, X: Tensor) -> Tensor:
    """The measurement noise's variance at each row of `X`, on the model's scale."""
    noisy = gp.posterior(X, observation_noise=True).variance.reshape(-1)
    return (noisy - gp.posterior(X).variance.reshape(-1)).clamp_min(0.0)


def _conditioned(gp: GPyTorchModel, x: Tensor, noise: Tensor) -> GPyTorchModel:
    """`gp` conditioned on one measurement at the `1 x d` design `x` (its posterior mean as the value).

    `noise` is the measurement's variance on the outcome's scale (`_noise_variance`): with known
    noise the GP takes it as given, and its outcome transform scales it as it scales the value.
    """
    with torch.no_grad():
        mean = gp.posterior(x).mean.reshape(1, 1)
    extra = {}
    if isinstance(gp.likelihood, FixedNoiseGaussianLikelihood):
        extra["noise"] = noise.reshape(1, 1)
    return _as_gp(gp.condition_on_observations(x, mean, **extra))


def _as_gp(model: object) -> GPyTorchModel:
    assert isinstance(model, GPyTorchModel)
    return model
