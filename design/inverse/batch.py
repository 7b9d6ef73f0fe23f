"""Inverse design for many targets at once: one batched descent, each target with its own starts and designs.

`inverse_design(..., targets=targets_df)` comes here. Every target gets the same `starts` starting
designs (those a single-target call with the same seed would use), and all `B x starts` of them
descend together through the surrogate: one `posterior` call per step for every target. The
target values enter the `Scorer` as per-row tensors. Successive halving keeps the best share of
each target's starts (never a whole target's). Then each target's candidates are ranked and
thinned to `n` distinct designs as in the single-target call.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from data.progress import epoch_bar
from design.errors import InputError
from design.inverse.descent import Descent
from design.inverse.goals import Goal, _default_tolerance
from design.inverse.relax import RelaxedDesigns
from design.inverse.score import Scorer, outcome_scale
from design.inverse.select import Neighbourhood, data_distance, feasible_encoded, polish, select_distinct
from design.space import SearchSpace
from surrogates.protocol import Surrogate

if TYPE_CHECKING:
    from design.inverse.core import InverseOptions


def target_goals(goals: list[Goal], targets_df: pd.DataFrame) -> tuple[list[Goal], dict[int, tuple[Tensor, Tensor]]]:
    """The goals with one target goal per column of `targets_df`, and each such goal's per-target values.

    A column whose outcome already has a target goal takes that goal's tolerance and weight; any
    other column becomes a new target goal with the default tolerance (5 % of `|value|`).

    Returns:
        `(goals, columns)`: `columns[i] = (values, tolerances)`, two `B` tensors, for goal `i`.
    """
    goals = list(goals)
    columns: dict[int, tuple[Tensor, Tensor]] = {}
    for name in targets_df.columns:
        values = torch.tensor(targets_df[name].to_numpy(dtype=float), dtype=torch.double)
        if values.isnan().any():
            raise InputError(f"targets must have a value in every row. Column {name!r} has NaN.")
        found = [i for i, g in enumerate(goals) if g.name == name and g.kind == "target"]
        if found:
            tolerance = goals[found[0]].tolerance
            assert tolerance is not None  # every target has one (`as_goals`)
            tol = torch.full_like(values, float(tolerance))
        else:
            goals.append(Goal(name, "target", 0.0, 1.0))
            found = [len(goals) - 1]
            tol = torch.tensor([_default_tolerance(float(v)) for v in values], dtype=torch.double)
        columns[found[0]] = (values, tol)
    return goals, columns


def rows_of(goals: list[Goal], columns: dict[int, tuple[Tensor, Tensor]], target: Tensor) -> list[Goal]:
    """The goals for a batch of designs whose targets are `target` (a tensor of row numbers of `targets_df`)."""
    return [
        replace(g, value=columns[i][0][target], tolerance=columns[i][1][target]) if i in columns else g
        for i, g in enumerate(goals)
    ]


def goals_of_target(goals: list[Goal], columns: dict[int, tuple[Tensor, Tensor]], b: int) -> list[Goal]:
    """The plain goals (float values) of target `b`."""
    return [
        replace(g, value=float(columns[i][0][b]), tolerance=float(columns[i][1][b])) if i in columns else g
        for i, g in enumerate(goals)
    ]


def run_many(
    model: Surrogate,
    space: SearchSpace,
    goals: list[Goal],
    columns: dict[int, tuple[Tensor, Tensor]],
    names: list[str],
    B: int,
    n: int,
    starts: int,
    seed: int,
    opts: InverseOptions,
) -> pd.DataFrame:
    """The batched descent and per-target selection behind `inverse_design(..., targets=...)`.

    Args:
        model: The surrogate.
        space: The search space.
        goals: The goals, from `target_goals`.
        columns: Per-target values and tolerances of the target goals, from `target_goals`.
        names: The model's outcome names, in order.
        B: Number of targets.
        n: Designs per target.
        starts: Starts per target.
        seed: Seed of the starts.
        opts: The options (not nudge, robust or pcgrad).

    Returns:
        One table of up to `n` designs per target (see `inverse_design`), with a `target` column
        (the row number of `targets_df`) first and `rank` counted within each target.
    """
    X0 = space.sample(starts, seed)
    if len(X0) == 0:
        raise InputError("the search space has no feasible design. Check its linear constraints.")
    relaxed = RelaxedDesigns(space, X0.repeat(B, 1))
    relaxed.project(sweeps=20)
    target = torch.arange(B).repeat_interleave(len(X0))
    rows = rows_of(goals, columns, target)
    scorer = Scorer(model, rows, names, outcome_scale(model, X0, len(names)), opts.kappa, opts.confidence)
    target, dropped_X, dropped_t = _descend_many(relaxed, scorer, goals, columns, target, B, opts, max(4 * n, n + 8))
    X = torch.cat([relaxed.discrete(), *dropped_X])
    target = torch.cat([target, *dropped_t])
    ok = feasible_encoded(space, X)
    return _select(X[ok], target[ok], scorer, space, goals, columns, n, opts)


def _descend_many(
    relaxed: RelaxedDesigns,
    scorer: Scorer,
    goals: list[Goal],
    columns: dict[int, tuple[Tensor, Tensor]],
    target: Tensor,
    B: int,
    opts: InverseOptions,
    floor: int,
) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """`design.inverse.descent` on every start of every target, with halving per target.

    Returns:
        The targets of the starts still in `relaxed`, and the dropped starts (discrete designs,
        still candidates) with their targets.
    """
    n_con = sum(g.is_constraint for g in goals)
    run = Descent.from_options(relaxed, opts, n_con)
    dropped_X, dropped_t = [], []
    with epoch_bar(opts.progress, "inverse design") as on_step:
        for step in range(opts.steps):
            loss = run.step(step, scorer.terms)
            per_target = relaxed.n // B
            survivors = max(floor, int(np.ceil(opts.keep * per_target)))
            if run.cycle_ends(step) and survivors < per_target:
                order = torch.argsort(loss.reshape(B, per_target), dim=-1)
                offset = (torch.arange(B) * per_target)[:, None]
                best, rest = (order[:, :survivors] + offset).flatten(), (order[:, survivors:] + offset).flatten()
                dropped_X.append(relaxed.discrete()[rest])
                dropped_t.append(target[rest])
                run.keep(best)
                target = target[best]
                scorer.goals = rows_of(goals, columns, target)
            if on_step is not None:
                on_step(step + 1, opts.steps)
    return target, dropped_X, dropped_t


def _select(  # noqa: PLR0913
    X: Tensor,
    target: Tensor,
    scorer: Scorer,
    space: SearchSpace,
    goals: list[Goal],
    columns: dict[int, tuple[Tensor, Tensor]],
    n: int,
    opts: InverseOptions,
) -> pd.DataFrame:
    """Per target: diverse candidates, polish, then the best `n` distinct ones; one table for all."""
    hood = Neighbourhood(space)
    chosen_X, chosen_t = [], []
    trust = opts.train_X if opts.rank_by_data else None
    for b in target.unique(sorted=True).tolist():
        mine = target == b
        own = replace(scorer, goals=goals_of_target(goals, columns, b))
        Xb = select_distinct(X[mine], own, space, max(4 * n, n + 8), opts.min_distance, train_X=trust)
        Xb = polish(Xb, own, hood, opts.polish_rounds)
        Xb = select_distinct(Xb, own, space, n, opts.min_distance, train_X=trust)
        chosen_X.append(Xb)
        chosen_t.append(torch.full((len(Xb),), b))
        scorer.calls += own.calls
    X, target = torch.cat(chosen_X), torch.cat(chosen_t)
    designs_df = _table(X, target, scorer, space, goals, columns)
    if opts.train_X is not None:
        designs_df["distance_to_data"] = data_distance(space, X, opts.train_X, k=1).numpy()
    return designs_df


def _table(
    X: Tensor, target: Tensor, scorer: Scorer, space: SearchSpace, goals: list[Goal], columns: dict
) -> pd.DataFrame:
    """Designs in user units with target, predicted outcomes, goals met, objective and rank."""
    rows = rows_of(goals, columns, target)
    own = replace(scorer, goals=rows)
    plain = replace(own, kappa=0.0)
    with torch.no_grad():
        mean, sd = plain.predict(X)
        merit = own.merit(X)
    designs_df = space.decode(X)
    designs_df.insert(0, "target", target.numpy())
    for j, name in enumerate(scorer.outcomes):
        designs_df[f"{name}_mean"] = mean[:, j].numpy()
        designs_df[f"{name}_sd"] = sd[:, j].numpy()
    all_met = np.ones(len(X), dtype=bool)
    for g, row_goal in zip(goals, rows, strict=True):
        met = np.asarray(row_goal.met(mean[:, scorer.outcomes.index(g.name)]), dtype=bool)
        designs_df[f"met: {g.label if g.kind != 'target' else g.name + '=target'}"] = met
        all_met &= met
    designs_df["all_met"] = all_met
    designs_df["objective"] = merit.numpy()
    designs_df["rank"] = designs_df.groupby("target").cumcount().to_numpy() + 1
    scorer.calls += own.calls + plain.calls
    designs_df.attrs["surrogate_calls"] = scorer.calls
    return designs_df
