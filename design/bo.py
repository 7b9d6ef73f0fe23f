"""Bayesian-optimization proposals: safety-constrained qLogNEI, pools, and space-filling starts."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from botorch.acquisition import AcquisitionFunction, qLogNoisyExpectedImprovement
from botorch.acquisition.cached_cholesky import supports_cache_root
from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
from botorch.acquisition.multi_objective.objective import GenericMCMultiOutputObjective
from botorch.acquisition.objective import GenericMCObjective
from botorch.models.model import Model
from botorch.optim import optimize_acqf, optimize_acqf_discrete, optimize_acqf_mixed_alternating
from botorch.sampling import SobolQMCNormalSampler
from botorch.utils.multi_objective.hypervolume import infer_reference_point
from botorch.utils.multi_objective.pareto import is_non_dominated
from torch import Tensor

from design.goals import Objective, SafetyLimit, probability_within_limits
from design.mixed import MAXITER, optimize_mixed
from design.sequence_acq import known_designs, mutate_sequences, optimize_sequences
from design.space import SearchSpace
from surrogates.protocol import Surrogate


def objective_function(objective: Objective, outcomes: list[str]) -> Callable[[Tensor], Tensor]:
    """Map `... x m` outcome samples to the scalar that Valley maximizes."""
    j = outcomes.index(objective.name)
    if objective.goal == "maximize":
        return lambda Z: Z[..., j]
    if objective.goal == "minimize":
        return lambda Z: -Z[..., j]
    target = float(objective.target)  # type: ignore[arg-type]
    return lambda Z: -(Z[..., j] - target).abs()


def constraint_functions(safety: list[SafetyLimit], outcomes: list[str]) -> list[Callable[[Tensor], Tensor]]:
    """botorch outcome constraints: each callable is `<= 0` where its limit holds."""
    out: list[Callable[[Tensor], Tensor]] = []
    for limit in safety:
        j = outcomes.index(limit.name)
        if limit.upper is not None:
            out.append(partial(_above, j=j, bound=limit.upper))
        if limit.lower is not None:
            out.append(partial(_below, j=j, bound=limit.lower))
    return out


def _above(Z: Tensor, j: int, bound: float) -> Tensor:
    return Z[..., j] - bound


def _below(Z: Tensor, j: int, bound: float) -> Tensor:
    return bound - Z[..., j]


def probability_safe(model: Surrogate, X: Tensor, safety: list[SafetyLimit], outcomes: list[str]) -> Tensor:
    """P(every safety limit holds) at each row of the `n x d` tensor `X`, shape `n`.

    The outcomes have independent GPs, so the joint probability is the product of the
    per-limit probabilities under each latent (noise-free) posterior.
    """
    with torch.no_grad():
        return probability_safe_grad(model, X, safety, outcomes)


def probability_safe_grad(model: Surrogate, X: Tensor, safety: list[SafetyLimit], outcomes: list[str]) -> Tensor:
    """`probability_safe`, differentiable in `X`, for any `batch x d` shape; returns `batch`."""
    if not safety:
        return torch.ones(X.shape[:-1], dtype=X.dtype)
    limited = list(dict.fromkeys(outcomes.index(limit.name) for limit in safety))
    posterior = model.posterior(X, output_indices=limited)  # only the safety models: half the cost with two
    return probability_within_limits(posterior.mean, posterior.variance, safety, [outcomes[j] for j in limited])


def make_acquisition(
    model: Surrogate,
    X_baseline: Tensor,
    objectives: Objective | list[Objective],
    safety: list[SafetyLimit],
    outcomes: list[str],
    X_pending: Tensor | None = None,
    seed: int = 0,
    mc_samples: int = 128,
) -> AcquisitionFunction:
    """qLogNEI of one objective, or qLogNEHVI of several, with every safety limit as an outcome constraint.

    The constraints enter as smoothed feasibility indicators on the posterior samples, so a
    candidate's improvement is weighted by its probability of being safe. With several
    objectives the hypervolume is measured from each objective's `reference` value, or from a
    reference point inferred from the current Pareto front (botorch's `infer_reference_point`).
    """
    objectives = [objectives] if isinstance(objectives, Objective) else objectives
    common: dict[str, Any] = dict(
        model=model,
        X_baseline=X_baseline,
        sampler=SobolQMCNormalSampler(sample_shape=torch.Size([mc_samples]), seed=seed),
        constraints=constraint_functions(safety, outcomes) or None,
        X_pending=X_pending,
        prune_baseline=True,
        # The baseline's Cholesky is reused (10-20 % faster on the mixed GPs); not for the ensemble.
        cache_root=isinstance(model, Model) and supports_cache_root(model),
    )
    if len(objectives) == 1:
        score = objective_function(objectives[0], outcomes)

        def single(Z: Tensor, X: Tensor | None = None) -> Tensor:
            return score(Z)

        return qLogNoisyExpectedImprovement(objective=GenericMCObjective(single), **common)
    scores = [objective_function(o, outcomes) for o in objectives]

    def stacked(Z: Tensor, X: Tensor | None = None) -> Tensor:
        return torch.stack([f(Z) for f in scores], dim=-1)

    multi = GenericMCMultiOutputObjective(stacked)
    return qLogNoisyExpectedHypervolumeImprovement(
        ref_point=reference_point(model, X_baseline, objectives, outcomes).tolist(), objective=multi, **common
    )


def reference_point(model: Surrogate, X: Tensor, objectives: list[Objective], outcomes: list[str]) -> Tensor:
    """The hypervolume reference in score units (higher is better), one entry per objective."""
    with torch.no_grad():
        mean = model.posterior(X).mean
    scores = torch.stack([objective_function(o, outcomes)(mean) for o in objectives], dim=-1)
    inferred = infer_reference_point(scores[is_non_dominated(scores)])
    given = [None if o.reference is None else o.score(o.reference) for o in objectives]
    return torch.tensor([g if g is not None else float(r) for g, r in zip(given, inferred, strict=True)])


def optimize_batch(
    acqf: AcquisitionFunction,
    space: SearchSpace,
    n: int,
    seed: int = 0,
    num_restarts: int = 3,
    raw_samples: int = 64,
    exclude: Tensor | None = None,
) -> Tensor:
    """Maximize the acquisition over the space: an `n x d` batch, chosen greedily in sequence.

    With sequence parameters, an evolutionary search over exact one-hot sequences with a
    single-letter polish (`design.sequence_acq.optimize_sequences`) returns designs that differ
    from `exclude` (default: the measured and pending designs the acquisition holds) and from
    each other; `num_restarts` and `raw_samples` do not apply there.
    With integer or categorical parameters or linear inequalities, every combination of
    discrete levels is optimized at once in one batched run (`design.mixed.optimize_mixed`);
    past `MAX_COMBINATIONS` combinations, or with equalities, botorch's alternating
    discrete/continuous optimizer searches the exact levels. Either way linear constraints
    hold, so every returned row is a valid design.
    """
    if space.sequence_blocks:
        with torch.random.fork_rng():
            return optimize_sequences(acqf, space, n, seed, exclude if exclude is not None else known_designs(acqf))
    inequalities, equalities = space.botorch_constraints()
    kwargs: dict[str, Any] = dict(
        q=n,
        num_restarts=num_restarts,
        raw_samples=raw_samples,
        inequality_constraints=inequalities or None,
        equality_constraints=equalities or None,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        mixed = space.cat_dims or space.discrete_dims
        X = optimize_mixed(acqf, space, n, seed, num_restarts, raw_samples) if mixed or inequalities else None
        if X is not None:
            return X.detach()
        if mixed:
            X, _ = optimize_acqf_mixed_alternating(
                acqf,
                space.bounds,
                discrete_dims=space.discrete_dims,
                cat_dims=space.cat_dims,
                # Random starts reach the same acquisition value as botorch's default
                # continuous-relaxation starts at a fifth of the time (seen on the nanoparticle space).
                options={"maxiter_alternating": 8, "initialization_strategy": "random"},
                **kwargs,
            )
        else:
            # As in `design.mixed`: 20 L-BFGS-B iterations per pick reached the same acquisition values
            # as botorch's 200 (Hartmann-6, 50 and 200 rows, seeds 0-4, to 0.001) in 10-20 % less time.
            # Starts near the incumbents as well as random ones: the best designs often sit in a thin
            # region against a safety limit that random starts miss (botorch does not offer it with equalities).
            options: dict[str, bool | float | int | str] = {"maxiter": MAXITER, "sample_around_best": not equalities}
            X, _ = optimize_acqf(acqf, space.bounds, sequential=True, options=options, **kwargs)
    return X.detach()


def choose_from_pool(acqf: AcquisitionFunction, X_pool: Tensor, n: int) -> list[int]:
    """Greedy sequential choice of `n` distinct rows of `X_pool` (their indices); each pick is pending for the next.

    botorch's `optimize_acqf_discrete` does the choosing; the rows of `X_pool` are expected distinct.
    """
    q = min(n, X_pool.shape[0])
    if q <= 0:
        return []
    X, _ = optimize_acqf_discrete(acqf, q=q, choices=X_pool, unique=True)
    return rows_of(X_pool, X)


def rows_of(X_pool: Tensor, X: Tensor) -> list[int]:
    """The index in `X_pool` of each row of `X` (its first match; every row of `X` must be in `X_pool`)."""
    return [int((X_pool == x).all(dim=-1).nonzero()[0]) for x in X]


def space_filling(space: SearchSpace, n: int, X_existing: Tensor | None = None, seed: int = 0) -> Tensor:
    """`n` feasible designs spread out: scrambled Sobol, then greedy max-min distance to the rest.

    Used to start a campaign and whenever the data are too few to fit a model.
    """
    pool = space.sample(max(256, 32 * n), seed=seed)
    return pool[spread_rows(pool, n, X_existing, space.cat_dims)]


def spread_rows(X_pool: Tensor, n: int, X_existing: Tensor | None, cat_dims: dict[int, list[float]]) -> list[int]:
    """Greedy max-min choice of `n` rows of `X_pool`, as far as possible from `X_existing`."""
    taken = X_existing if X_existing is not None and len(X_existing) else None
    picks: list[int] = []
    for _ in range(min(n, X_pool.shape[0])):
        if taken is None:
            k = 0
        else:
            dist = _design_distance(X_pool, taken, cat_dims).min(dim=1).values
            dist[picks] = -1.0
            k = int(dist.argmax())
        picks.append(k)
        taken = X_pool[[k]] if taken is None else torch.cat([taken, X_pool[[k]]])
    return picks


def _design_distance(A: Tensor, B: Tensor, cat_dims: dict[int, list[float]]) -> Tensor:
    """Pairwise distance; numeric columns in encoded units, a mismatched category counts 1."""
    numeric = [i for i in range(A.shape[-1]) if i not in cat_dims]
    squared = torch.cdist(A[:, numeric], B[:, numeric]).square()
    for i in cat_dims:
        squared = squared + (A[:, i, None] != B[None, :, i]).to(A.dtype)
    return squared.sqrt()


def candidate_pool(
    space: SearchSpace, X_near: Tensor, n_global: int = 1024, n_local: int = 512, seed: int = 0
) -> Tensor:
    """Feasible candidates: scrambled Sobol over the space plus perturbations of `X_near`.

    The local part (Gaussian steps of 0.05 in encoded units, categories kept; one letter
    changed in each sequence) lets a safe set grow in small steps around what was measured.
    With equality constraints only the global part is used (a perturbation would leave the
    constraint surface).
    """
    X = space.sample(n_global, seed=seed)
    if X_near.shape[0] and not space.botorch_constraints()[1]:
        generator = torch.Generator().manual_seed(seed)
        base = X_near[torch.randint(X_near.shape[0], (n_local,), generator=generator)]
        step = 0.05 * torch.randn(base.shape, generator=generator, dtype=base.dtype)
        step[:, list(space.cat_dims)] = 0.0
        local = space.snap((base + step).clamp(0.0, 1.0))
        if space.sequence_blocks:  # a small step on a one-hot block snaps back to the same letters
            local = mutate_sequences(space, local, generator)
        local = local[torch.as_tensor(space.feasible(space.decode(local)))]
        X = torch.cat([X, local])
    return _unique_rows(X)


def _unique_rows(X: Tensor) -> Tensor:
    """Drop repeated rows (snapping to integer levels makes some), keeping the first of each."""
    _, inverse = torch.unique(X, dim=0, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), X.shape[0], dtype=torch.long)
    first = first.scatter_reduce(0, inverse, torch.arange(X.shape[0]), reduce="amin")
    return X[first.sort().values]
