"""Safe-set selection in the style of SafeOpt (Sui et al. 2015; Berkenkamp et al. 2016).

The rule, over a finite set of candidate designs:
- the *safe set* S holds the candidates whose probability that every safety limit holds is at
  least the confidence, jointly, AND that lie within `REACH` (encoded units; categories must
  match) of a design measured safe. The second condition plays the part of SafeOpt's Lipschitz
  bound: a stationary GP fitted on a narrow region reverts to the data's mean far from it, and
  would otherwise certify unexplored designs as safe;
- *maximizers* M are the candidates of S that could still be optimal: the upper confidence bound
  of their objective reaches the best lower confidence bound over S;
- *expanders* G are the candidates of S whose measurement could make unsafe candidates safe: we
  condition each safety GP on an optimistic outcome at the candidate (its lower bound for an
  upper limit, its upper bound for a lower limit), treat it as measured safe, and count the
  candidates outside S that would then join S.
Part of each batch (half, rounded down) goes to the expanders that would add most to S, so the
safe set grows over the campaign; the rest goes to M, chosen by the acquisition function.
Nothing outside S is ever proposed by this rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from botorch.models import ModelListGP
from gpytorch.likelihoods import FixedNoiseGaussianLikelihood
from torch import Tensor

from design.bo import probability_safe
from design.goals import Objective, SafetyLimit

REACH = 0.25  # how far from a design measured safe the safe set may extend (unit-cube distance)
BETA = 2.0  # width of the confidence bounds, in posterior standard deviations
FANTASIES = 16  # expander candidates checked by fantasy, the most uncertain on safety first


@dataclass
class SafeSet:
    """The safe set, maximizers and expanders over a candidate set (boolean `n` tensors)."""

    safe: Tensor
    maximizers: Tensor
    expansion: Tensor  # number of unsafe candidates each candidate would make safe


def safe_set(
    model: ModelListGP,
    X: Tensor,
    objective: Objective | None,
    safety: list[SafetyLimit],
    outcomes: list[str],
    confidence: float,
    X_safe: Tensor,
    cat_dims: dict[int, list[float]],
    discrete_dims: dict[int, list[float]] | None = None,
) -> SafeSet:
    """Classify the `n x d` candidates `X` into safe set, maximizers and expanders.

    Args:
        X_safe: A `k x d` tensor of the designs measured safe so far.
        cat_dims: Categorical columns (a candidate must match a safe design's categories).
    """
    near = _within_reach(X, X_safe, cat_dims, discrete_dims)
    safe = (probability_safe(model, X, safety, outcomes) >= confidence) & near
    maximizers = torch.zeros_like(safe)
    expansion = torch.zeros(X.shape[0], dtype=torch.long)
    if not safe.any():
        return SafeSet(safe, maximizers, expansion)
    expansion = _expansion_counts(model, X, safe, near, safety, outcomes, confidence, cat_dims, discrete_dims)
    if objective is None:  # several objectives: every safe design may be Pareto-optimal
        return SafeSet(safe, safe.clone(), expansion)
    with torch.no_grad():
        posterior = model.models[outcomes.index(objective.name)].posterior(X)
        mean, sd = posterior.mean.squeeze(-1), posterior.variance.clamp_min(0).sqrt().squeeze(-1)
    low, high = _score_bounds(objective, mean, sd)
    maximizers = safe & (high >= low[safe].max())
    return SafeSet(safe, maximizers, expansion)


def _within_reach(
    X: Tensor, X_safe: Tensor, cat_dims: dict[int, list[float]], discrete_dims: dict[int, list[float]] | None = None
) -> Tensor:
    if X_safe.shape[0] == 0:
        return torch.zeros(X.shape[0], dtype=torch.bool)
    numeric = [i for i in range(X.shape[-1]) if i not in cat_dims]
    # One integer level may be coarser than REACH ([0, 3] has steps of 1/3): shrink such columns so
    # one step counts as just under REACH, or the safe set could never move to a neighbouring level.
    scale = torch.ones(X.shape[-1], dtype=X.dtype)
    for i, levels in (discrete_dims or {}).items():
        scale[i] = min(1.0, 0.999 * REACH * (len(levels) - 1))  # a step just under REACH
    close = torch.cdist(X[:, numeric] * scale[numeric], X_safe[:, numeric] * scale[numeric]) <= REACH
    for i in cat_dims:
        close &= X[:, i, None] == X_safe[None, :, i]
    return close.any(dim=1)


def _score_bounds(objective: Objective, mean: Tensor, sd: Tensor) -> tuple[Tensor, Tensor]:
    """Lower and upper confidence bounds of the objective's score (higher is better)."""
    low, high = mean - BETA * sd, mean + BETA * sd
    if objective.goal == "maximize":
        return low, high
    if objective.goal == "minimize":
        return -high, -low
    t = float(objective.target)  # type: ignore[arg-type]
    far = torch.maximum((low - t).abs(), (high - t).abs())
    near = torch.where(
        (low <= t) & (t <= high), torch.zeros_like(mean), torch.minimum((low - t).abs(), (high - t).abs())
    )
    return -far, -near


def _expansion_counts(
    model: ModelListGP,
    X: Tensor,
    safe: Tensor,
    near: Tensor,
    safety: list[SafetyLimit],
    outcomes: list[str],
    confidence: float,
    cat_dims: dict[int, list[float]],
    discrete_dims: dict[int, list[float]] | None,
) -> Tensor:
    counts = torch.zeros(X.shape[0], dtype=torch.long)
    unsafe_X, unsafe_near = X[~safe], near[~safe]
    if unsafe_X.shape[0] == 0:
        return counts
    limited = [outcomes.index(limit.name) for limit in safety]
    with torch.no_grad():
        sd = torch.stack([model.models[j].posterior(X).variance.squeeze(-1) for j in limited]).sum(0).sqrt()
    sd[~safe] = -1.0
    for i in torch.argsort(sd, descending=True)[: min(FANTASIES, int(safe.sum()))].tolist():
        fantasy = list(model.models)
        for limit, j in zip(safety, limited, strict=True):
            with torch.no_grad():
                post = model.models[j].posterior(X[i : i + 1])
                mean, s = post.mean.reshape(1, 1), post.variance.clamp_min(0).sqrt().reshape(1, 1)
            optimistic = (
                mean
                if (limit.upper is None) == (limit.lower is None)
                else (mean - BETA * s if limit.upper is not None else mean + BETA * s)
            )
            gp = model.models[j]
            extra = {}
            if isinstance(gp.likelihood, FixedNoiseGaussianLikelihood):  # known noise: fantasize with it
                extra["noise"] = gp.likelihood.noise.mean().reshape(1, 1)
            fantasy[j] = gp.condition_on_observations(X[i : i + 1], optimistic, **extra)
        p = probability_safe(ModelListGP(*fantasy), unsafe_X, safety, outcomes)
        reach = unsafe_near | _within_reach(unsafe_X, X[i : i + 1], cat_dims, discrete_dims)
        counts[i] = int(((p >= confidence) & reach).sum())
    return counts
