"""The members of a neural ensemble trained as Ray tasks, one member each (`NeuralEnsemble(..., ray=...)`).

Each task trains one member exactly as `TrainingOptions(batched=False)` trains it here (its own
split, seed, shuffling and early stopping: `train_members` on a one-member `EnsembleNet`), on
one torch thread, and sends back its fitted weights (a `state_dict`) and its history: the fit
is the local `batched=False` fit of the same seed, bit for bit. The members of the default
batched fit follow the same trajectories (Adam's update and the clipping are per member): with
MLP members bit for bit too. With sequence CNNs the batched fit's grouped convolution rounds in
another order (float32), which early stopping can turn into other stopping epochs and so other
predictions (see the README's "Running on a Ray cluster").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import Tensor

from data.ray_tasks import RayCluster, ray_gather
from surrogates.ensemble_training import LossFn, TrainingOptions, train_members
from surrogates.networks import EnsembleNet


def train_members_on_ray(
    model: Any,
    data: tuple[Tensor, Tensor, Tensor | None],
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    seeds: Sequence[int],
    losses: tuple[LossFn, LossFn | None],
    options: TrainingOptions,
    ray: str | RayCluster,
) -> tuple[list[dict], list[int]]:
    """Train each member of `model.net_` in its own Ray task and put its fitted weights back.

    Args:
        model: The ensemble being fitted (`NeuralEnsemble` or `NeuralClassifierEnsemble`): its
            `net_` holds the initialized members; it is also the trainer's hooks (physics terms).
        data: `(X, T, w)` as `train_members` takes them.
        splits: Per member, its `(train, validation)` row indices.
        seeds: Per member, the seed of its shuffling and collocation points.
        losses: `(loss_fn, val_loss_fn)`, methods of `model` (sent by name, so that each task
            carries one copy of the model).
        options: The resolved `TrainingOptions`.
        ray: Where the tasks run (`data.ray_tasks.RayCluster`, or its address).

    Returns:
        `(history, best_epochs)` as `train_members` returns them, members in order.
    """
    loss_fn, val_loss_fn = losses
    names = (loss_fn.__name__, None if val_loss_fn is None else val_loss_fn.__name__)
    net: EnsembleNet = model.net_
    tasks = [(model, net.select(k), data, splits[k], seeds[k], k, names, options) for k in range(len(seeds))]
    rows: list[dict] = []
    best_epochs: list[int] = []
    for k, (weights, history, best) in enumerate(ray_gather(_train_one_member, tasks, ray)):
        single = net.select(k)
        single.load_state_dict(weights)
        net.put(k, single)
        rows, best_epochs = rows + history, best_epochs + best
    return rows, best_epochs


def _train_one_member(
    model: Any,
    single: EnsembleNet,
    data: tuple[Tensor, Tensor, Tensor | None],
    split: tuple[np.ndarray, np.ndarray],
    seed: int,
    k: int,
    names: tuple[str, str | None],
    options: TrainingOptions,
) -> tuple[dict[str, Tensor], list[dict], list[int]]:
    """Member `k` trained alone (a Ray task): its weights, history rows and best epoch."""
    import torch

    loss_fn = getattr(model, names[0])
    val_loss_fn = None if names[1] is None else getattr(model, names[1])
    with torch.enable_grad():
        history, best = train_members(single, data, [split], [seed], loss_fn, model, options, [k], val_loss_fn)
    return single.state_dict(), history, best
