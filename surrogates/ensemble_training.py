"""Training the members of a neural ensemble together, as one batched network (`EnsembleNet`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
from torch import Tensor

from surrogates.networks import EnsembleNet
from surrogates.physics import PhysicsTerm

if TYPE_CHECKING:
    from surrogates.ensemble import TrainingOptions

LossFn = Callable[[Tensor, Tensor, Tensor | None], Tensor]
Forward = Callable[[Tensor], Tensor]

MIN_BATCH, MAX_BATCH, ROWS_PER_BATCH = 64, 1024, 100
PATIENCE_SHARE = 0.25  # the patience is at least this share of the epochs (up to `options.patience`)
COSINE_FLOOR = 0.01  # the cosine schedule ends at this fraction of `lr`


class Hooks(Protocol):
    """What the trainer asks of an ensemble besides its loss: the physics terms and their points."""

    def _physics_terms(self) -> Sequence[PhysicsTerm]: ...

    def _collocation(self, gen: torch.Generator) -> Tensor | None: ...

    def _physics_value(self, forward: Forward, term: PhysicsTerm, X_batch: Tensor, colloc: Tensor | None) -> Tensor: ...


def schedule(n_train: int, options: TrainingOptions) -> tuple[int, int, int]:
    """Batch size, number of epochs and patience for `n_train` training rows (the rule of `TrainingOptions`).

    Args:
        n_train: Rows each member trains on (after the validation split).
        options: The `TrainingOptions`.

    Returns:
        `(batch_size, epochs, patience)`.
    """
    batch_size = options.batch_size or min(MAX_BATCH, max(MIN_BATCH, n_train // ROWS_PER_BATCH))
    steps_per_epoch = max(1, math.ceil(n_train / batch_size))
    epochs = options.epochs
    if options.step_budget is not None:
        epochs = min(epochs, max(1, math.ceil(options.step_budget / steps_per_epoch)))
    scaled = math.ceil(options.patience * epochs / max(1, options.epochs))
    patience = min(options.patience, max(1, scaled, math.ceil(PATIENCE_SHARE * epochs)))
    return batch_size, epochs, patience


def train_members(
    net: EnsembleNet,
    data: tuple[Tensor, Tensor, Tensor | None],
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    seeds: Sequence[int],
    loss_fn: LossFn,
    hooks: Hooks,
    options: TrainingOptions,
    members: Sequence[int] | None = None,
    val_loss_fn: LossFn | None = None,
    on_epoch: Callable[[int, int], None] | None = None,
) -> tuple[list[dict], list[int]]:
    """Train the `M` members of `net` together, each on its own split, shuffling and early stopping.

    One AdamW optimizer steps all members' stacked weights; Adam's update is element-wise, so
    each member follows the trajectory it would follow alone. The loss is the sum of the
    members' losses (each member's gradient is that of its own loss) and gradient clipping
    rescales each member's gradient by its own norm. Member `k` draws its shuffling and
    collocation points from a generator seeded with `seeds[k]`. A member whose validation score
    (`val_loss_fn`, default `loss_fn`) has not improved for `patience` epochs stops: its history
    ends there and its best weights are restored at the end (it keeps computing with the others
    until all have stopped). The batch size, the number of epochs and the patience follow
    `schedule`; the step size follows `options.lr_schedule` (a cosine decay over all the epochs
    by default) or `options.cyclic_lr`.

    Args:
        net: The members, as an `EnsembleNet` of `M` members.
        data: `(X, T, w)`: inputs `n x d`, targets `n x m` and optional per-row weights `n`.
        splits: Per member, the `(train, validation)` row indices (the same sizes for all).
        seeds: Per member, the seed of its shuffling and collocation points.
        loss_fn: `loss_fn(raw, T, w)` of one member's raw `b x n_out` outputs.
        hooks: The ensemble (its physics terms, collocation points and physics values).
        options: The `TrainingOptions`.
        members: Member numbers written in `history` (default `0 ... M-1`).
        val_loss_fn: The early-stopping score of one member's raw validation outputs, like
            `loss_fn` (e.g. a proper score when the training loss is not one); None for `loss_fn`.
        on_epoch: Called with `(epochs done, most epochs)` after each epoch (a progress bar).

    Returns:
        `(history, best_epochs)`: one dict per member and epoch (`member`, `epoch`, `train_loss`,
        `physics:<name>` per term, `val_loss` (the early-stopping score), `lr`) and each
        member's restored epoch.
    """
    X, T, w = data
    M = len(seeds)
    members = list(range(M)) if members is None else list(members)
    train = torch.stack([torch.as_tensor(s[0], dtype=torch.long) for s in splits])
    val = torch.stack([torch.as_tensor(s[1], dtype=torch.long) for s in splits])
    batch_size, epochs, patience = schedule(train.shape[1], options)
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    optimizer = torch.optim.AdamW(
        net.parameters(), lr=options.lr, weight_decay=options.weight_decay, amsgrad=options.amsgrad
    )
    scheduler = _lr_schedule(optimizer, options, max(1, math.ceil(train.shape[1] / batch_size)), epochs)
    best = _BestWeights(net, M, patience)
    Xn = net.normalize(X)  # standardized once, not in every mini-batch
    history: list[dict] = []
    for epoch in range(epochs):
        net.train()
        orders = torch.stack([train[k][torch.randperm(train.shape[1], generator=g)] for k, g in enumerate(gens)])
        collocs = [hooks._collocation(g) for g in gens]
        sums = _train_epoch(net, data, Xn, orders, collocs, batch_size, loss_fn, hooks, optimizer, scheduler, options)
        net.eval()
        val_losses = _validate(net, (Xn, T, w), val, val_loss_fn or loss_fn, options)
        lr = optimizer.param_groups[0]["lr"]
        for k in np.flatnonzero(best.active):
            row = {"member": members[k], "epoch": epoch, **{key: float(v[k]) for key, v in sums.items()}}
            history.append({**row, "val_loss": float(val_losses[k]), "lr": lr})
        if on_epoch is not None:
            on_epoch(epoch + 1, epochs)
        if val.shape[1]:
            best.update(net, epoch, val_losses)
            if not best.active.any():
                break
    best.restore(net)
    net.eval()
    last = epoch
    return history, [int(e) if val.shape[1] else last for e in best.best_epoch]


def _lr_schedule(
    optimizer: torch.optim.Optimizer, options: TrainingOptions, steps_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The step-size schedule: `CyclicLR` with `options.cyclic_lr` (a half-cycle of two epochs), else
    cosine annealing from `lr` to `lr * COSINE_FLOOR` over all `epochs` with `options.lr_schedule ==
    "cosine"`, else None (a constant step size)."""
    if not options.cyclic_lr:
        if options.lr_schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, epochs * steps_per_epoch, eta_min=options.lr * COSINE_FLOOR
            )
        return None
    return torch.optim.lr_scheduler.CyclicLR(
        optimizer,
        options.lr / 10,
        options.lr,
        step_size_up=2 * steps_per_epoch,
        mode="triangular2",
        cycle_momentum=False,
    )


def _train_epoch(
    net: EnsembleNet,
    data: tuple[Tensor, Tensor, Tensor | None],
    Xn: Tensor,
    orders: Tensor,
    collocs: list[Tensor | None],
    batch_size: int,
    loss_fn: LossFn,
    hooks: Hooks,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    options: TrainingOptions,
) -> dict[str, np.ndarray]:
    """One pass of every member over its shuffled rows (`orders`, `M x n_train`); the mean losses per member.

    `Xn` is `X` normalized by `net.normalize` (the physics terms get the raw rows of `X`).
    """
    X, T, w = data
    M, n_train = orders.shape
    terms = list(hooks._physics_terms())
    names = ["train_loss", *[f"physics:{term.name}" for term in terms]]
    sums = torch.zeros(len(names), M)
    for start in range(0, n_train, batch_size):
        rows = orders[:, start : start + batch_size]
        out, targets = net(Xn[rows], normalized=True), T[rows]
        weights = None if w is None else w[rows]
        values = [torch.stack([loss_fn(out[k], targets[k], None if weights is None else weights[k]) for k in range(M)])]
        loss = values[0].sum()
        for term in terms:
            value = torch.stack([hooks._physics_value(net.member(k), term, X[rows[k]], collocs[k]) for k in range(M)])
            loss = loss + term.weight * value.sum()
            values.append(value)
        optimizer.zero_grad()
        loss.backward()
        if options.clip_norm is not None:
            clip_per_member(net, options.clip_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        sums += torch.stack(values).detach() * rows.shape[1] / n_train
    return dict(zip(names, sums.numpy(), strict=True))


def clip_per_member(net: EnsembleNet, max_norm: float) -> None:
    """Scale each member's gradient to norm at most `max_norm`, as `clip_grad_norm_` does for one network."""
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    if not grads:
        return
    M = net.n_members
    norms = torch.stack([g.reshape(M, -1).norm(dim=1) for g in grads]).norm(dim=0)
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.reshape(M, *[1] * (g.dim() - 1)))


def _validate(
    net: EnsembleNet, data: tuple[Tensor, Tensor, Tensor | None], val: Tensor, loss_fn: LossFn, options: TrainingOptions
) -> np.ndarray:
    """Each member's early-stopping score on its validation rows (`val`, `M x n_val`); NaN without any.

    `data` holds the normalized inputs (`EnsembleNet.normalize`).
    """
    X, T, w = data
    M = val.shape[0]
    if not val.shape[1]:
        return np.full(M, np.nan)
    with torch.no_grad():
        out = net(X[val], normalized=True)
        if options.stop_on == "average_precision":
            return np.array([-average_precision(out[k], T[val[k]]) for k in range(M)])
        return np.array([float(loss_fn(out[k], T[val[k]], None if w is None else w[val[k]])) for k in range(M)])


class _BestWeights:
    """Per member: the best validation score, its epoch and weights, and whether it still trains."""

    def __init__(self, net: EnsembleNet, M: int, patience: int) -> None:
        self.patience = patience
        self.best = np.full(M, np.inf)
        self.best_epoch = np.zeros(M, dtype=int)
        self.active = np.ones(M, dtype=bool)
        self.saved = np.zeros(M, dtype=bool)
        self.weights = [p.detach().clone() for p in net.parameters()]

    def update(self, net: EnsembleNet, epoch: int, scores: np.ndarray) -> None:
        """Keep the weights of members that improved; stop those without improvement for `patience` epochs."""
        for k in np.flatnonzero(self.active).tolist():
            if scores[k] < self.best[k]:
                self.best[k], self.best_epoch[k] = scores[k], epoch
                self._save(net, k)
            elif epoch - self.best_epoch[k] >= self.patience:
                self.active[k] = False
                if not self.saved[k]:  # never improved: keep the weights it stopped with
                    self._save(net, k)

    def _save(self, net: EnsembleNet, k: int) -> None:
        self.saved[k] = True
        for saved, p in zip(self.weights, net.parameters(), strict=True):
            saved[k].copy_(p.detach()[k])

    def restore(self, net: EnsembleNet) -> None:
        """Put back each member's best weights (members that never improved keep their last ones)."""
        mask = torch.as_tensor(self.saved)
        with torch.no_grad():
            for saved, p in zip(self.weights, net.parameters(), strict=True):
                p[mask] = saved[mask]


def average_precision(scores: Tensor, T: Tensor) -> float:
    """Average precision of the first label's scores (NaN labels skipped); 0 without positives."""
    from sklearn.metrics import average_precision_score

    y, s = T[:, 0].numpy(), scores[:, 0].numpy()
    keep = ~np.isnan(y)
    return float(average_precision_score(y[keep], s[keep])) if y[keep].sum() > 0 else 0.0
