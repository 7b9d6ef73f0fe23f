"""Inverse design for many targets in groups, each group here or as one Ray task.

`inverse_design(..., targets=targets_df)` designs for every target in one batched descent. With
thousands of targets that is one long call on one machine; `inverse_design_groups` splits the
targets into groups of `group_size` rows and runs `inverse_design(..., targets=group)` per group,
one after another here or each as a Ray task (`data.ray_tasks`) on this machine's cores or a
cluster, and puts the results back together. Each group is seeded alike, so the designs are the
same with and without Ray; they differ from one call over all the targets, whose starts are
drawn and ranked together.

Example:
    >>> targets_df = pd.DataFrame({"load_N": [0.6, 0.8, 1.0, 1.2]})
    >>> designs_df = inverse_design_groups(model, space, ["load_N=target:1.0", "friction_coeff=min"],
    ...                                    targets_df, group_size=2, ray="auto", n=3, starts=256)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from data.ray_tasks import RayCluster, ray_gather
from design.errors import InputError
from design.inverse.core import inverse_design
from surrogates.protocol import Surrogate


def inverse_design_groups(
    model: Surrogate,
    space: Any,
    goals: Iterable[Any] | dict[str, Any],
    targets: pd.DataFrame,
    group_size: int = 8,
    ray: str | RayCluster | None = None,
    **design_args: Any,
) -> pd.DataFrame:
    """`inverse_design(model, space, goals, targets=group, **design_args)` per group of targets, joined.

    Args:
        model: The surrogate, as for `inverse_design` (it and `space` travel to every Ray task).
        space: The search space (`design.SearchSpace`).
        goals: The goals, as for `inverse_design`; each target column replaces the value of
            its outcome's target goal.
        targets: One row per target, columns the target outcomes.
        group_size: Targets per group (the last group may be smaller): per Ray task with `ray`.
        ray: None runs the groups here, one after another; `"auto"`, a cluster's address or a
            `data.ray_tasks.RayCluster` runs each group as one Ray task.
        **design_args: `n`, `starts`, `seed`, `outcomes` and `options` of `inverse_design`,
            the same for every group.

    Returns:
        What `inverse_design` returns with `targets`, for all groups in order: `target` is the
        row number in `targets` and `rank` counts within each target;
        `attrs["surrogate_calls"]` sums the groups' calls.

    Raises:
        InputError: If `targets` is empty or `group_size` is below 1, or as `inverse_design` raises.
        data.ray_tasks.RayUnavailable: If Ray is missing or its cluster does not answer.
    """
    if group_size < 1:
        raise InputError(f"group_size must be at least 1. Got {group_size!r} instead.")
    if len(targets) == 0:
        raise InputError("targets must have at least one row. Got an empty table.")
    starts = list(range(0, len(targets), group_size))
    tasks = [(model, space, goals, targets.iloc[s : s + group_size], design_args) for s in starts]
    results = [_design_group(*task) for task in tasks] if ray is None else ray_gather(_design_group, tasks, ray)
    frames = []
    for first, designs_df in zip(starts, results, strict=True):
        designs_df = designs_df.copy()
        designs_df["target"] += first  # the row number in `targets`, not in the group
        frames.append(designs_df)
    joined = pd.concat(frames, ignore_index=True)
    joined.attrs["surrogate_calls"] = sum(int(df.attrs.get("surrogate_calls", 0)) for df in results)
    return joined


def _design_group(
    model: Surrogate, space: Any, goals: Any, group: pd.DataFrame, design_args: dict[str, Any]
) -> pd.DataFrame:
    """One group's designs (a Ray task, or a local call): `target` counts within the group."""
    return inverse_design(model, space, goals, targets=group.reset_index(drop=True), **design_args)
