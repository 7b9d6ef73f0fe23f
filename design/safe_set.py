"""Safe-set selection in the style of SafeOpt (Sui et al. 2015; Berkenkamp et al. 2016).

The rule, over a finite set of candidate designs:
- the *safe set* S holds the candidates whose probability that every safety limit holds is at
  least the confidence, jointly, AND that lie within reach of a design measured safe (categories
  must match). The second condition plays the part of SafeOpt's Lipschitz bound: a stationary GP
  reverts to the data's mean farther than about a lengthscale from its data, and would otherwise
  certify unexplored designs as safe. The reach along each input is `REACH_LENGTHSCALES` times
  the shortest lengthscale the safety GPs fitted for it, and at most `REACH` (encoded units); the
  distance to the nearest safe design is measured in those reaches (an ellipsoid);
- *maximizers* M are the candidates of S that could still be optimal: the upper confidence bound
  of their objective reaches the best lower confidence bound over S;
- *expanders* G are the candidates of S whose measurement could make promising unsafe candidates
  safe: we condition each safety GP on an optimistic outcome at the candidate (its lower bound
  for an upper limit, its upper bound for a lower limit), treat it as measured safe, and count
  the candidates outside S that would then join S and whose objective's upper bound reaches the
  best lower bound over S. Growing the safe set only where the optimum may lie is the idea of
  GoOSE (M. Turchetta, F. Berkenkamp and A. Krause, "Safe exploration for interactive machine
  learning", NeurIPS 2019); SafeOpt counts every candidate, and spent half of each batch of the
  pressure-vessel benchmark on designs costing 20 times the best.
Part of each batch (half, rounded down) goes to the expanders that would add most to S, so the
safe set grows over the campaign; the rest goes to M, chosen by the acquisition function.
Nothing outside S is ever proposed by this rule.

`expander="ise"` ranks the expanders by information instead (`design.ise`, Bottero et al. 2022):
the safe candidates whose measurement tells most about the safety of the promising candidates
whose safety is most uncertain, taken greedily (each pick conditions the GPs before the next).
It needs no optimistic fantasy, no `BETA` and no count of candidates crossing the confidence.

When S is empty (a model fitted to a handful of points vouches for nothing), the campaign
takes small steps: designs within `STEP` reaches of a design measured safe (`small_steps`),
the ones most likely safe first. SafeOpt's seed set, known safe a priori, plays this part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from botorch.models import ModelListGP
from botorch.models.gpytorch import GPyTorchModel
from gpytorch.kernels import MaternKernel, RBFKernel
from gpytorch.likelihoods import FixedNoiseGaussianLikelihood
from torch import Tensor

from design.bo import probability_safe
from design.goals import Objective, SafetyLimit
from design.ise import ise_expanders

REACH = 0.25  # how far from a design measured safe the safe set may extend (unit-cube distance)
REACH_LENGTHSCALES = 0.5  # ... and at most this many of the safety GPs' lengthscales (Matern-5/2 correlation 0.83)
BETA = 2.0  # width of the confidence bounds, in posterior standard deviations
FANTASIES = 16  # expander candidates checked by fantasy, the most uncertain on safety first
STEP = 0.25  # with an empty safe set: how far from a design measured safe, in reaches


@dataclass
class SafeSet:
    """The safe set, maximizers and expanders over a candidate set (boolean `n` tensors)."""

    safe: Tensor
    maximizers: Tensor
    expansion: Tensor  # goose: unsafe candidates each would make safe; ise: its information (nats), greedy order


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
    expander: Literal["goose", "ise"] = "goose",
) -> SafeSet:
    """Classify the `n x d` candidates `X` into safe set, maximizers and expanders.

    Args:
        X_safe: A `k x d` tensor of the designs measured safe so far.
        cat_dims: Categorical columns (a candidate must match a safe design's categories).
        expander: `"goose"`: `expansion` counts the promising candidates each safe candidate's
            optimistic measurement would make safe; `"ise"`: it holds the information about
            the safety of promising candidates of the greedy ISE picks (`design.ise`), 0 elsewhere.
    """
    reach = reach_per_input(model, [outcomes.index(limit.name) for limit in safety], X.shape[-1], discrete_dims)
    near = _within_reach(X, X_safe, cat_dims, reach)
    safe = (probability_safe(model, X, safety, outcomes) >= confidence) & near
    if not safe.any():
        return SafeSet(safe, torch.zeros_like(safe), torch.zeros(X.shape[0], dtype=torch.long))
    if objective is None:  # several objectives: every design may be Pareto-optimal
        promising = torch.ones_like(safe)
    else:
        with torch.no_grad():
            posterior = _as_gp(model.models[outcomes.index(objective.name)]).posterior(X)
            mean, sd = posterior.mean.squeeze(-1), posterior.variance.clamp_min(0).sqrt().squeeze(-1)
        low, high = _score_bounds(objective, mean, sd)
        promising = high >= low[safe].max()
    if expander == "ise":
        expansion = ise_expanders(model, X, safe, promising, safety, outcomes)
    else:
        expansion = _expansion_counts(model, X, safe, near, promising, safety, outcomes, confidence, cat_dims, reach)
    return SafeSet(safe, safe & promising, expansion)


def reach_per_input(
    model: ModelListGP, outputs: list[int], d: int, discrete_dims: dict[int, list[float]] | None = None
) -> Tensor:
    """How far (encoded units) the safe set may reach from a safe design along each of the `d` inputs.

    `min(REACH, REACH_LENGTHSCALES * lengthscale)`, the lengthscale being the shortest among the
    Matern/RBF kernels of the GPs at `outputs` for that input. One level of an integer input may be
    coarser than that ([0, 3] has steps of 1/3): such an input reaches just over one step, or the
    safe set could never move to a neighbouring level.
    """
    reach = torch.full((d,), REACH, dtype=torch.double)
    for j in outputs:
        for kernel in model.models[j].get_submodule("covar_module").modules():
            if isinstance(kernel, MaternKernel | RBFKernel) and kernel.ard_num_dims is not None:
                dims = torch.arange(d) if kernel.active_dims is None else kernel.active_dims
                scale = kernel.lengthscale.detach().reshape(-1).to(reach)
                reach[dims] = torch.minimum(reach[dims], REACH_LENGTHSCALES * scale)
    for i, levels in (discrete_dims or {}).items():
        reach[i] = torch.clamp(reach[i], min=1.001 / (len(levels) - 1))
    return reach


def small_steps(X_safe: Tensor, reach: Tensor, cat_dims: dict[int, list[float]], n: int = 512, seed: int = 0) -> Tensor:
    """`n` designs uniformly within `STEP` reaches (an ellipsoid) of random designs of `X_safe`.

    Categories are kept; the result may leave the unit cube or the space's grid, so snap and
    check it (`SearchSpace.snap`, `SearchSpace.feasible`) before use.
    """
    generator = torch.Generator().manual_seed(seed)
    base = X_safe[torch.randint(X_safe.shape[0], (n,), generator=generator)]
    numeric = [i for i in range(X_safe.shape[-1]) if i not in cat_dims]
    direction = torch.randn(n, len(numeric), generator=generator, dtype=X_safe.dtype)
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    radius = torch.rand(n, 1, generator=generator, dtype=X_safe.dtype) ** (1.0 / max(len(numeric), 1))
    steps = base.clone()
    steps[:, numeric] += STEP * radius * direction * reach[numeric].to(X_safe)
    return steps


def _within_reach(X: Tensor, X_safe: Tensor, cat_dims: dict[int, list[float]], reach: Tensor) -> Tensor:
    if X_safe.shape[0] == 0:
        return torch.zeros(X.shape[0], dtype=torch.bool)
    numeric = [i for i in range(X.shape[-1]) if i not in cat_dims]
    scale = 1.0 / reach[numeric].to(X)
    close = torch.cdist(X[:, numeric] * scale, X_safe[:, numeric] * scale) <= 1.0
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
    assert objective.target is not None  # a "target" objective has one (`Objective` checks)
    t = float(objective.target)
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
    promising: Tensor,
    safety: list[SafetyLimit],
    outcomes: list[str],
    confidence: float,
    cat_dims: dict[int, list[float]],
    reach_of: Tensor,
) -> Tensor:
    counts = torch.zeros(X.shape[0], dtype=torch.long)
    unsafe_X, unsafe_near, unsafe_promising = X[~safe], near[~safe], promising[~safe]
    if unsafe_X.shape[0] == 0:
        return counts
    limited = [outcomes.index(limit.name) for limit in safety]
    with torch.no_grad():
        sd = torch.stack([_as_gp(model.models[j]).posterior(X).variance.squeeze(-1) for j in limited]).sum(0).sqrt()
    sd[~safe] = -1.0
    for i in torch.argsort(sd, descending=True)[: min(FANTASIES, int(safe.sum()))].tolist():
        fantasy = [_as_gp(gp) for gp in model.models]
        for limit, j in zip(safety, limited, strict=True):
            gp = _as_gp(model.models[j])
            with torch.no_grad():
                post = gp.posterior(X[i : i + 1])
                mean, s = post.mean.reshape(1, 1), post.variance.clamp_min(0).sqrt().reshape(1, 1)
            optimistic = (
                mean
                if (limit.upper is None) == (limit.lower is None)
                else (mean - BETA * s if limit.upper is not None else mean + BETA * s)
            )
            extra = {}
            if isinstance(gp.likelihood, FixedNoiseGaussianLikelihood):  # known noise: fantasize with it
                extra["noise"] = gp.likelihood.noise.mean().reshape(1, 1)
            fantasy[j] = _as_gp(gp.condition_on_observations(X[i : i + 1], optimistic, **extra))
        p = probability_safe(ModelListGP(*fantasy), unsafe_X, safety, outcomes)
        reach = unsafe_near | _within_reach(unsafe_X, X[i : i + 1], cat_dims, reach_of)
        counts[i] = int(((p >= confidence) & reach & unsafe_promising).sum())
    return counts


def _as_gp(model: object) -> GPyTorchModel:
    """`model` typed as the GP it is (`ModelListGP.models` holds plain modules to mypy, and
    `condition_on_observations` returns a `Model`)."""
    assert isinstance(model, GPyTorchModel)
    return model
