"""Gradient-based inverse design: many starts, descended at once through a differentiable surrogate.

All starts live in one batched tensor (`RelaxedDesigns`). Adam takes projected steps with a
cyclical (cosine, warm-restart) step size; after each cycle only the best quarter of the starts go
on (successive halving: most of the effort goes to the promising starts). Outcome constraints
enter by an augmented Lagrangian whose multipliers and penalty grow every few steps. Several
objectives are summed with their weights, or combined by PCGrad (conflicting per-objective
gradients are projected off each other).
Categorical and sequence parameters are relaxed one-hot vectors whose softmax temperature anneals;
the last 30 % of the steps use the straight-through estimator. Then every discrete choice is made,
discrete choices are polished by the surrogate, and `n` distinct designs are ranked and returned
(for targets and constraints alone, the designs met precisely and nearest the training data first).
With `targets` (a table of many targets), one batched descent serves them all (`design.inverse.batch`).
When every goal is a target and the measured data are given (`InverseOptions.train_X`, `train_Y`),
the default instead corrects the measured designs nearest each target through the surrogate
(`design.inverse.anchor`) and descends only the targets that this does not meet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from data.progress import epoch_bar
from design.errors import InputError
from design.goals import Objective, SafetyLimit
from design.inverse.anchor import run_anchored
from design.inverse.batch import run_many, target_goals
from design.inverse.descent import Descent, StepControl, as_control
from design.inverse.goals import Goal, as_goals, outcome_names
from design.inverse.learned import LearnedOptimizer, as_optimizer
from design.inverse.relax import RelaxedDesigns
from design.inverse.score import Scorer, outcome_scale
from design.inverse.select import Neighbourhood, describe, polish, select_distinct
from design.space import SearchSpace
from surrogates.protocol import Surrogate


@dataclass
class InverseOptions:
    """How hard and how carefully inverse design searches (defaults suit small, smooth problems).

    Attributes:
        steps: Adam steps in total.
        lr: Peak step size (unit-cube coordinates and logits).
        cycles: Cosine step-size cycles (warm restarts of the step size).
        keep: Share of the starts that go on after each cycle but the last (successive halving:
            those with the lowest augmented Lagrangian, never fewer than `max(4 n, n + 8)`); 1 keeps all.
        kappa: Uncertainty penalty: objectives use `mean -/+ kappa * sd`, constraints the pessimistic bound.
        confidence: With a value `c`, constraints hold at the pessimistic bound of that one-sided
            confidence instead, `mean -/+ Phi^-1(c) * sd` (0.95: 1.645 sd), as a campaign's safety
            limits do (`valley design` passes the campaign's confidence); None: `kappa`.
        pcgrad: Combine several objectives by PCGrad instead of a plain weighted sum.
        train_X: `N x d` encoded training designs, for the `distance_to_data` column and the
            trust ranking (`rank_by_data`).
        rank_by_data: With `train_X`, when the goals are only targets and constraints: among the
            designs predicted to meet every goal with 90 % of each target's tolerance to spare
            (equally good by what was asked), rank those nearest the training data first, where
            the surrogate is most accurate. On the robot arm benchmark (MLP surrogate, 50
            targets) this took the re-simulation MSE of the first design from 1.0e-4 to 2.9e-6;
            on the sine wave from 2.6e-3 to 1.7e-3. Not with `robust` (ranked by its expected objective).
        train_Y: `N x m` measured outcomes of `train_X` (columns in the model's outcome order), for `anchor`.
        anchor: How target goals are met when the measured data are given. `"auto"` (default): when
            `train_X` and `train_Y` are given and every goal is a target, start from the measured
            designs nearest each target (in outcome space) and correct them by Gauss-Newton steps
            through the surrogate on `y_measured(x0) + f(x) - f(x0)`, so that only the surrogate's
            slope matters, not its bias (`design.inverse.anchor`: the design whose anchor was
            measured nearest the target comes first); the targets that no anchored design meets
            (by its anchored prediction) are descended from random starts instead. Otherwise, or
            when a setting asks for the descent (`nudge_from`, `robust`, `pcgrad`,
            `rank_by="flatness"`, `first_stage`, an `optimizer` or `step_control` other than Adam),
            "auto" descends. `"data"`: anchored designs only, met or not (target goals only; needs
            `train_X` and `train_Y`). None: always descend. `starts` and `seed` serve only the
            descent. Over 3 seeds (200 targets, 10,000 rows; `valley benchmark inverse`) the default
            ensemble's first-design re-simulation MSE was 2.3e-7 on the robot arm and 1.5e-10 on
            the sine wave with "auto", against 1.4e-6 and 8.2e-5 descending every target (None),
            the neural adjoint's 6.2e-6 and 1.6e-5 and a k-NN lookup's 3.3e-4 and 7.8e-8, in 0.01
            to 0.02 s per target instead of 0.5 s (descent) and 0.65 to 0.8 s (neural adjoint);
            `"data"` alone got 1.1e-5 on the arm, from one target beyond the measured outcomes.
        nudge_from: One design (a one-row DataFrame in user units) to start every start from.
        radius: In nudge mode, the largest Euclidean distance of the scalar coordinates (unit cube)
            from `nudge_from`, and the largest fraction of positions changed in each sequence; with
            anchoring (`anchor`), the farthest a design moves from its anchor.
        smooth_groups: Ordered groups of parameter names (e.g. depths along a pad) to keep smooth.
        smooth_weight: Weight of the penalty on squared differences of neighbours in those groups.
        progress: Show a progress bar over the descent's steps (on a terminal).
        tolerance: Manufacturing tolerance, as a standard deviation in unit-cube coordinates.
        robust: Optimize the expected objective under that tolerance (prefers flat optima).
        robust_samples: Monte-Carlo samples for the expected objective.
        temperature: Softmax temperature at the first and at the last step.
        min_distance: Designs closer than this (see `design_distance`) count as duplicates.
        polish_rounds: Rounds of discrete polishing (best single change per round).
        step_control: How each step's size is chosen: `"adam"` (default: Adam with the cosine
            step), `"curvature"` (projected gradient descent with the curvature-safe step
            `2 / lambda_max` halved, `lambda_max` by power iteration on Hessian-vector products),
            `"pi"` (a PI controller on each start's step, on Adam), or a `StepControl` for their
            settings (`design.inverse.descent`). On held-out targets of the robot arm (GP) and of
            Rosenbrock's banana valley (`valley benchmark step-control`, 3 seeds) neither beat
            Adam: curvature 16 steps to tolerance vs Adam's 19 on the arm but 1.5x the seconds
            and no target met in the valley (Adam: all in 69 steps); PI on Adam 19 and 86 steps.
            The default stays Adam; see `StepControl` for the numbers.
        optimizer: What takes the steps: `"adam"` (default), `"amsgrad"` (Adam with AMSGrad's
            running maximum of the second moment), `"learned"` (a `LearnedOptimizer` meta-trained
            on sampled targets of `model` first, tens of seconds: `design.inverse.learned`), or a
            trained `LearnedOptimizer` (`meta_train`, `load_learned`). The learned optimizer
            replaces `step_control` (its `lr` is learned). On held-out targets of the robot arm's
            GP (`valley benchmark learned-optimizer`, 3 seeds) it met every target in 12 steps
            against Adam's 21; in Rosenbrock's banana valley it met 71 % of them (Adam: all).
        rank_by: How the returned designs are ranked. `"objective"` (default): predicted goals met
            first, then the merit (objective plus a large weight on violations; with `robust`,
            the expected objective under `tolerance` replaces the nominal one). `"flatness"`: goals
            met first, then the expected merit under `tolerance` (objective and weighted
            violations, with the `kappa` penalty, averaged over jittered copies:
            `design.inverse.select.expected_merit`), and among designs within `flat_tie` of the
            best remaining one, the one with the smallest `hessian_max_eig` first
            (`design.inverse.select.flat_order`). The candidates kept for polishing are chosen
            by the expected merit too. Not with `targets` or `anchor="data"`.
        flat_tie: With `rank_by="flatness"`: expected merits closer than this (in outcome
            scales, see `design.inverse.score`) are near-ties, broken by the smaller curvature;
            0: the expected merit alone.
        first_stage: `"cmaes"`: a CMA-ES population search on the same merit picks the starts of
            the gradient descent (`design.inverse.population.cmaes_starts`: up to `starts` of the
            best distinct designs it saw, final populations included) instead of a Sobol sample;
            None (default): Sobol. Only where the descent starts at random (not with
            `nudge_from`, `targets` or `anchor="data"`).
    """

    steps: int = 150
    lr: float = 0.05
    cycles: int = 3
    keep: float = 0.25
    kappa: float = 1.0
    confidence: float | None = None
    pcgrad: bool = False
    train_X: Tensor | None = None
    rank_by_data: bool = True
    train_Y: Tensor | None = None
    anchor: str | None = "auto"
    nudge_from: pd.DataFrame | None = None
    radius: float = 0.1
    smooth_groups: Sequence[Sequence[str]] = field(default_factory=list)
    smooth_weight: float = 0.0
    progress: bool = False
    tolerance: float = 0.02
    robust: bool = False
    robust_samples: int = 8
    temperature: tuple[float, float] = (1.0, 0.05)
    min_distance: float = 0.05
    polish_rounds: int = 3
    step_control: str | StepControl = "adam"
    optimizer: str | LearnedOptimizer = "adam"
    rank_by: str = "objective"
    flat_tie: float = 0.05
    first_stage: str | None = None


def inverse_design(
    model: Surrogate,
    space: SearchSpace,
    goals: Iterable[str | Goal | Objective | SafetyLimit] | dict[str, Any],
    n: int = 8,
    starts: int = 1024,
    seed: int = 0,
    outcomes: Sequence[str] | None = None,
    options: InverseOptions | None = None,
    targets: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Find `n` distinct designs that meet the goals according to the surrogate `model`.

    Args:
        model: A surrogate with `posterior(X)` returning `mean` and `variance` (`batch x n x m`),
            differentiable in `X` (a botorch GP, a `NeuralEnsemble`, ...), on `space`'s encoding.
        space: The search space.
        goals: Goal strings (`"friction_coeff=min"`, `"load>=50"`, `"x=target:3.0±0.1"`, see
            `design.inverse.goals`), `Goal`, `Objective` or `SafetyLimit` objects, or a campaign
            config dict (its objectives and safety limits).
        n: Number of designs to return.
        starts: Number of simultaneous starts.
        seed: Seed for the starts; the same seed gives the same designs.
        outcomes: Names of the model's outputs in order (default: the goals' outcomes in order
            of first mention, which must then number `model.num_outputs`).
        options: Effort, trust, nudge, smoothness and robustness settings.
        targets: Many targets at once: one row per target, columns the target outcomes. Each
            target gets its own `n` designs from one batched descent (see `design.inverse.batch`);
            a column takes the tolerance and weight of the target goal on its outcome in `goals`
            (whose value it replaces), or the default tolerance if there is none. Nudge mode,
            `robust` and `pcgrad` are not available with `targets`.

    Returns:
        Up to `n` rows, best first: the parameters in user units; `<outcome>_mean` and
        `<outcome>_sd` per outcome; `met: <goal>` per goal and `all_met` (on the predicted mean);
        `objective` (the merit minimized, lower is better), `expected_objective` (under the
        manufacturing tolerance), `hessian_max_eig` (curvature of the objective; small is flat
        and robust), `distance_to_data` when `options.train_X` is given, and `rank`.
        With `targets`: a `target` column first (the row number in `targets`), `rank` within
        each target, and no `expected_objective` or `hessian_max_eig`.
        `attrs["surrogate_calls"]` counts the designs scored through the surrogate (besides the
        one prediction per start that sets the outcome scales).

    Raises:
        InputError: If a goal is malformed or names an outcome the model does not have, or if no
            feasible design is found.

    Example:
        >>> designs_df = inverse_design(model, space, ["friction_coeff=min", "load_N>=0.8"], n=4, starts=256)
    """
    opts = options or InverseOptions()
    goal_list = as_goals(goals)
    columns: dict = {}
    if opts.anchor not in (None, "data", "auto"):
        raise InputError(f"anchor must be None, 'data' or 'auto'. Got {opts.anchor!r} instead.")
    if opts.rank_by not in ("objective", "flatness"):
        raise InputError(f"rank_by must be 'objective' or 'flatness'. Got {opts.rank_by!r} instead.")
    if opts.first_stage not in (None, "cmaes"):
        raise InputError(f"first_stage must be None or 'cmaes'. Got {opts.first_stage!r} instead.")
    if opts.anchor == "data" and any(g.kind != "target" for g in goal_list):
        raise InputError("anchor='data' works on target goals only. Drop the other goals or use anchor=None.")
    opts = replace(opts, anchor=_anchor(opts, goal_list), step_control=as_control(opts.step_control))
    single = targets is None and opts.anchor is not None
    if single:  # one target: the target goals' own values
        targets = pd.DataFrame({g.name: [g.value] for g in goal_list if g.kind == "target"})
    if targets is not None:
        if opts.nudge_from is not None or opts.robust or opts.pcgrad or opts.rank_by == "flatness":
            raise InputError(
                "targets and anchor='data' cannot be combined with nudge_from, robust, pcgrad or rank_by='flatness'. "
                "Run one target at a time, without anchoring."
            )
        if len(targets) == 0:
            raise InputError("targets must have at least one row. Got an empty table.")
        goal_list, columns = target_goals(goal_list, targets)
    names = list(outcomes) if outcomes is not None else outcome_names(goal_list)
    m = int(getattr(model, "num_outputs", len(names)))
    unknown = [g.name for g in goal_list if g.name not in names]
    if unknown or len(names) != m:
        raise InputError(
            f"goals must name outcomes of the model ({names}, {m} output(s)). Got {unknown or names} instead. "
            "Pass `outcomes` with the model's output names in order, or fix the goal names."
        )
    if n < 1 or starts < 1:
        raise InputError(f"n and starts must be >= 1. Got n={n}, starts={starts} instead.")
    if opts.anchor is None:  # anchoring takes Gauss-Newton steps, no optimizer's
        opts = replace(opts, optimizer=as_optimizer(opts.optimizer, model, space, opts.progress))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if opts.anchor is not None:
            assert targets is not None  # the goals' own targets when none are given (`single`)
            designs_df = run_anchored(model, space, goal_list, columns, names, len(targets), n, opts)
            if opts.anchor == "auto":
                designs_df = _descend_unmet(designs_df, model, space, goal_list, columns, names, n, starts, seed, opts)
            return designs_df.drop(columns="target") if single else designs_df
        if targets is not None:
            return run_many(model, space, goal_list, columns, names, len(targets), n, starts, seed, opts)
        return _run(model, space, goal_list, names, n, starts, seed, opts)


def _anchor(opts: InverseOptions, goals: list[Goal]) -> str | None:
    """`opts.anchor` with `"auto"` resolved: `"auto"` (anchored, unmet targets descended) or None."""
    if opts.anchor != "auto":
        return opts.anchor
    has_data = opts.train_X is not None and opts.train_Y is not None and len(opts.train_X) > 0
    descent_only = opts.nudge_from is not None or opts.robust or opts.pcgrad or opts.rank_by == "flatness"
    asks_descent = (
        opts.first_stage is not None or opts.optimizer != "adam" or as_control(opts.step_control).kind != "adam"
    )
    targets_only = bool(goals) and all(g.kind == "target" for g in goals)
    return "auto" if has_data and targets_only and not (descent_only or asks_descent) else None


def _descend_unmet(  # noqa: PLR0913
    anchored_df: pd.DataFrame,
    model: Surrogate,
    space: SearchSpace,
    goals: list[Goal],
    columns: dict[int, tuple[Tensor, Tensor]],
    names: list[str],
    n: int,
    starts: int,
    seed: int,
    opts: InverseOptions,
) -> pd.DataFrame:
    """`anchor="auto"`: the targets that no anchored design meets (by its anchored prediction) are descended.

    Their designs come from the batched descent (`design.inverse.batch.run_many`, those targets
    only) instead, with NaN in the anchored columns; the other targets keep their anchored designs.
    """
    B = len(next(iter(columns.values()))[0])
    met = set(anchored_df.loc[anchored_df["all_met"], "target"].tolist())
    unmet = [b for b in range(B) if b not in met]
    if not unmet:
        return anchored_df
    rows = torch.tensor(unmet)
    own = {i: (values[rows], tolerance[rows]) for i, (values, tolerance) in columns.items()}
    opts = replace(opts, anchor=None, optimizer=as_optimizer(opts.optimizer, model, space, opts.progress))
    descended_df = run_many(model, space, goals, own, names, len(unmet), n, starts, seed, opts)
    descended_df["target"] = rows.numpy()[descended_df["target"].to_numpy()]
    kept_df = anchored_df[~anchored_df["target"].isin(unmet)]
    designs_df = pd.concat([kept_df, descended_df], ignore_index=True)
    designs_df = designs_df.sort_values(["target", "rank"], kind="stable", ignore_index=True)
    designs_df.attrs["surrogate_calls"] = anchored_df.attrs["surrogate_calls"] + descended_df.attrs["surrogate_calls"]
    return designs_df


def _run(model, space, goals, names, n, starts, seed, opts) -> pd.DataFrame:  # noqa: ANN001
    center, X0 = None, space.sample(starts, seed=seed)
    if opts.nudge_from is not None:
        center = space.encode(opts.nudge_from.iloc[:1])[0]
        X0 = center.expand(starts, -1).clone()
        X0[:, _box(space)] += 0.25 * opts.radius * torch.randn(starts, len(_box(space)), dtype=torch.double)
    if len(X0) == 0:
        raise InputError("the search space has no feasible design. Check its linear constraints.")
    scorer = Scorer(model, goals, names, outcome_scale(model, X0, len(names)), opts.kappa, opts.confidence)
    if opts.first_stage == "cmaes" and center is None:
        from design.inverse.population import cmaes_starts  # population imports InverseOptions from here

        X0 = cmaes_starts(scorer, space, starts, seed, opts.min_distance)
    relaxed = RelaxedDesigns(space, X0, center, opts.radius if center is not None else None)
    relaxed.project(sweeps=20)
    hood = Neighbourhood(space, center, opts.radius if center is not None else None)
    dropped = _descend(relaxed, scorer, opts, hood, floor=max(4 * n, n + 8))
    X = torch.cat([hood.repair(relaxed.discrete(), relaxed), *dropped])
    if center is not None:  # the start itself is always a candidate, so nudging never ends empty-handed
        X = torch.cat([X, space.snap(center[None])])
    keep = torch.as_tensor(space.feasible(space.decode(X))) & hood.within(X)
    if not keep.any():
        raise InputError("no design found satisfies the linear constraints. Check that they leave room.")
    X = X[keep]
    flat = opts.rank_by == "flatness"
    trust = opts.train_X if opts.rank_by_data and not (opts.robust or flat) else None  # those rank by E[objective]
    tolerance = opts.tolerance if opts.robust or flat else None
    pool = max(4 * n, n + 8)
    flat_merit = 0.0 if flat else None  # by the expected merit; the curvature only among the last few
    X = select_distinct(X, scorer, space, pool, opts.min_distance, tolerance if flat else None, trust, flat_merit)
    X = polish(X, scorer, hood, opts.polish_rounds)
    X = select_distinct(X, scorer, space, n, opts.min_distance, tolerance, trust, opts.flat_tie if flat else None)
    designs_df = describe(X, scorer, space, opts)
    designs_df.attrs["surrogate_calls"] = scorer.calls
    return designs_df


def _descend(
    relaxed: RelaxedDesigns, scorer: Scorer, opts: InverseOptions, hood: Neighbourhood, floor: int
) -> list[Tensor]:
    """`design.inverse.descent` on every start; after each cycle but the last, the best `opts.keep` share go on.

    Never fewer than `floor` starts go on. Returns the dropped starts as discrete designs: they stay
    candidates for the final choice.
    """
    n_con = sum(g.is_constraint for g in scorer.goals)
    run = Descent.from_options(relaxed, opts, n_con)

    def terms(X: Tensor) -> tuple[Tensor, Tensor]:
        return _robust_terms(scorer, X, relaxed, opts) if opts.robust else scorer.terms(X)

    def pcgrad(objectives: Tensor, penalty: Tensor) -> None:
        if objectives.shape[-1] > 1:
            _pcgrad(objectives, penalty, relaxed.parameters())
        else:
            (objectives.sum(-1) + penalty).sum().backward()

    dropped = []
    with epoch_bar(opts.progress, "inverse design") as on_step:
        for step in range(opts.steps):
            loss = run.step(step, terms, pcgrad if opts.pcgrad else None)
            survivors = max(floor, int(np.ceil(opts.keep * relaxed.n)))
            if run.cycle_ends(step) and survivors < relaxed.n:
                order = torch.argsort(loss)
                dropped.append(hood.repair(relaxed.discrete(), relaxed)[order[survivors:]])
                run.keep(order[:survivors])
            if on_step is not None:
                on_step(step + 1, opts.steps)
    return dropped


def _robust_terms(scorer: Scorer, X: Tensor, relaxed: RelaxedDesigns, opts: InverseOptions) -> tuple[Tensor, Tensor]:
    """Objective and violations averaged over `robust_samples` copies jittered by the tolerance."""
    K, S = opts.robust_samples, X.shape[0]
    noise = torch.zeros(K, *X.shape, dtype=X.dtype)
    noise[..., relaxed.box] = opts.tolerance * torch.randn(K, S, len(relaxed.box), dtype=X.dtype)
    upper = torch.full((X.shape[-1],), float("inf"), dtype=X.dtype)
    upper[relaxed.box] = 1.0
    jittered = torch.minimum((X.unsqueeze(0) + noise).clamp(min=0.0), upper)
    objectives, violations = scorer.terms(jittered.reshape(K * S, -1))
    return objectives.reshape(K, S, -1).mean(0), violations.reshape(K, S, -1).mean(0)


def _pcgrad(objectives: Tensor, penalty: Tensor, params: list[Tensor]) -> None:
    """PCGrad (Yu et al., 2020), per start: project each objective's gradient off those it conflicts with."""
    S = objectives.shape[0]
    grads = []
    for k in range(objectives.shape[-1]):
        g = torch.autograd.grad(objectives[:, k].sum(), params, retain_graph=True, allow_unused=True)
        grads.append(torch.cat([_flat(gi, p, S) for gi, p in zip(g, params, strict=True)], dim=-1))
    projected = []
    for i, gi in enumerate(grads):
        gi = gi.clone()
        for j, gj in enumerate(grads):
            if i != j:
                dot = (gi * gj).sum(-1, keepdim=True)
                gi = gi - dot.clamp(max=0.0) / (gj * gj).sum(-1, keepdim=True).clamp(min=1e-18) * gj
        projected.append(gi)
    total = torch.stack(projected).sum(0)
    needs = isinstance(penalty, Tensor) and penalty.requires_grad
    rest = torch.autograd.grad(penalty.sum(), params, allow_unused=True) if needs else [None] * len(params)
    offset = 0
    for p, r in zip(params, rest, strict=True):
        size = p[0].numel() if p.numel() else 0
        p.grad = total[:, offset : offset + size].reshape(p.shape) + (0 if r is None else r)
        offset += size


def _flat(g: Tensor | None, p: Tensor, S: int) -> Tensor:
    return torch.zeros(S, p[0].numel() if p.numel() else 0, dtype=p.dtype) if g is None else g.reshape(S, -1)


def _box(space: SearchSpace) -> list[int]:
    return [i for i in range(len(space.scalars)) if i not in space.cat_dims]
