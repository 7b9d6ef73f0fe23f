"""Training the members of a neural ensemble together, as one batched network (`EnsembleNet`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

from surrogates.networks import EnsembleNet
from surrogates.physics import PhysicsTerm

LossFn = Callable[[Tensor, Tensor, Tensor | None], Tensor]
Forward = Callable[[Tensor], Tensor]

MIN_BATCH, MAX_BATCH, ROWS_PER_BATCH = 64, 1024, 100
PATIENCE_SHARE = 0.25  # the patience is at least this share of the epochs (up to `options.patience`)
COSINE_FLOOR = 0.01  # the cosine schedule ends at this fraction of `lr`
DEFAULT_LR = 1e-2  # `lr` when it is None and the model sets no default of its own (regression)


class Hooks(Protocol):
    """What the trainer asks of an ensemble besides its loss: the physics terms and their points."""

    def _physics_terms(self) -> Sequence[PhysicsTerm]: ...

    def _collocation(self, gen: torch.Generator) -> Tensor | None: ...

    def _physics_value(self, forward: Forward, term: PhysicsTerm, X_batch: Tensor, colloc: Tensor | None) -> Tensor: ...


@dataclass
class TrainingOptions:
    """How the members are trained.

    The members train together as one batched network (`EnsembleNet`: member-stacked weights,
    batched matrix products, grouped convolutions), each on its own validation split, shuffling
    and early stopping. The amount of training is set in optimizer steps, so that it does not
    grow with the data: with `n` training rows per member (after the validation split),

    - `batch_size` (default None: automatic) is `min(1024, max(64, n // 100))`: 64 up to 6,400
      rows, 160 for 16,000 rows;
    - the number of epochs is `min(epochs, ceil(step_budget / steps_per_epoch))` with
      `steps_per_epoch = ceil(n / batch_size)`;
    - the patience shrinks with the epochs, `ceil(patience * epochs_used / epochs)`, but not
      below `patience_share` of the epochs used (a quarter; an eighth for classifiers), and
      never above `patience`, nor below 1;
    - the step size decays from `lr` to `lr / 100` along a cosine over all the epochs used
      (`lr_schedule="cosine"`; members that stop early never reach the small steps).

    Up to 1,280 training rows (at most 20 steps per epoch; the lab case of 10-200 rows) this is
    the full 300 epochs of batch 64 and patience 30; 8,000 training rows (10,000 with the
    validation split) get 60 epochs of batch 80 and patience 15, 16,000 get 60 epochs of batch
    160 and patience 15.

    The defaults were chosen by measurement (5 members, seed 0 unless said, 2 cores, one thread),
    on noise-free simulators with 10,000 rows (held-out RMSE of the ensemble's mean on 2,000
    rows of another seed; the MLP of `benchmarks.inverse_baselines.train_mlp`, 128x128x128 trained
    on the MSE for 12,000 steps, as reference) and on the noisy nanoparticle simulator at 40 and
    120 rows (5-fold CV, seeds 0-2, `benchmarks.surrogates.nanoparticle_data`):

    - early stopping on the beta-NLL's value was the main fault on precise data. Its value
      `var^0.5 * NLL` rises again as the residuals fall below about 0.09 standard deviations, so
      a member that keeps fitting looks worse: on the robot arm every member "peaked" at epoch
      1 and stopped at epoch 4 (RMSE 6.8e-2, MLP 1.5e-3). Stopping on the CRPS, a proper
      score that keeps falling as the fit improves (`stop_on="score"`), gave 2.1e-2 with the
      old budget alone (plain NLL 2.1e-2, MSE 1.7e-2);
    - then the steps: 3,000 steps gave 1.2e-2 (no early stop), 6,000 2.5e-3 and 10,000
      1.4e-3 (at `lr` 1e-2 with the cosine decay); `lr` 3e-3 instead of 1e-2 gave 8.8e-3 at
      6,000 steps. A larger batch (256) or beta = 1 did not help at the same number of steps;
      a patience of a tenth of the epochs stopped members at 12-27 of 60 epochs (7.4e-3);
    - with the defaults: robot arm 2.5e-3 (seed 1: 3.1e-3, MLP 1.2e-3) and sine wave 1.6e-2
      (old defaults 6.8e-2, MLP 4.3e-3), in about 20-27 s against the MLP's 19-30 s (the old
      defaults stopped after 2-4 s). The rest of the gap to the MLP closes slowly with more
      steps (`step_budget=12_000`: sine wave 9.3e-3);
    - nanoparticles, mean of both outcomes (R2 / NLL / 95 % coverage), old -> new defaults:
      40 rows 0.59 / 0.70 / 0.94 -> 0.62 / 0.66 / 0.93; 120 rows 0.75 / -0.05 / 0.94 -> 0.76 /
      -0.13 / 0.93 (complement activation at 120 rows: R2 0.93 -> 0.95). Stopping on the plain
      NLL instead of the CRPS stopped too early there (120 rows: R2 0.74, NLL 0.17, coverage
      0.97), on the MSE gave overconfident intervals (coverage 0.90-0.92);
    - the classifier on the SYNTHETIC protein pairs (`benchmarks.ensemble`, 20,000 x 802
      dipeptide counts, about 2 % positives, held-out average precision on 5,000 pairs of
      another seed; HistGradientBoosting 0.825 / 0.879 on seeds 0 / 1). The old defaults gave
      0.44 (seed 0): members scored best after 0-2 epochs and a plain MLP on these features
      stalls at 0.30-0.45 whatever its training (2 members: stopping on the AP 0.38, `lr` 1e-3
      0.21, log1p inputs 0.30, no class weights 0.23, weight decay 0.1 0.34, dropout 0.3
      0.23), as it memorizes the ~300 positives through the ~80 counts that each row has out
      of 802 while the label depends on about 12 of them. An L1 penalty on the first layer's
      weights (`input_l1`, 1e-3 for classifiers) made it 0.73, and with early stopping on the
      validation split's AP (the classifier's `"score"`) 0.84 (2 members; `input_l1` 3e-4 /
      1e-3 / 3e-3 on seed 1: 0.83 / 0.85 / 0.84). With 5 members (one thread): seed 0 0.849
      in 40 s of CPU time, seed 1 0.859 in 44 s (a patience of 8 instead of 15: 0.847 in 26 s);
      with `lr` 3e-3 instead of 1e-2 0.845 in 42 s and 0.877 in 40 s (2 members: 0.830 vs
      0.841, 0.876 vs 0.847), and with a patience of 8 (an eighth of the 60 epochs) 0.849 in
      24 s and 0.877 in 32 s: the classifiers' defaults since;
    - options that nothing used were measured and removed (5 members; pairs seed 0 AP, sine
      wave 1,000 rows RMSE, nanoparticles 120 rows R2 / NLL): defaults 0.849, 0.0195,
      0.826 / -0.30; AMSGrad 0.846, 0.0243, 0.826 / -0.30; a cyclic step size (`CyclicLR`
      between `lr / 10` and `lr`) 0.852 (seed 1: 0.856 vs 0.859), 0.106, 0.806 / -0.25;
      dropout 0.1 before the hidden layers 0.839, 0.48, 0.804 / -0.09. AMSGrad with the
      classifiers' present defaults: 20,000 pairs 0.838 / 0.865 vs 0.849 / 0.877 (seeds 0 / 1);
      4,000 pairs, 2 members, seeds 0 / 1 / 2: 0.464 / 0.563 / 0.582 vs 0.279 / 0.634 / 0.597
      (`benchmarks.ensemble.toolkit_row` re-measures the first two options there). Xavier
      initialization was never an option: members get He initialization;
    - step-size control (issue 21 item 4; `valley benchmark step-control --part training`: 16
      members as the starts, 2,000 sine-wave rows, 3,000 steps without early stopping, seeds
      0-2; median epochs until a member's validation CRPS is 0.05, share of members that got
      there, median final CRPS, seconds to the tolerance on 2 shared cores): these defaults 45
      epochs, 100 %, 0.0178, 9.8 s; Adam's textbook step (1e-3, constant) never, 0.113; plain
      gradient descent with the best fixed step of a grid (0.3) never, 0.235, 2 % diverged; a
      PI controller on each member's AdamW step (`benchmarks.training_step_control.TrainingStepControl`:
      the cosine between a member's last move and its next mini-batch gradient steered to 0)
      43 epochs, 98 %, 0.0252, 6.7 s (with a constant schedule 42, 100 %, 0.0213; from `lr`
      1e-3 never, 0.132: a noisy cosine only shrinks a small step further); the curvature-safe
      step of plain gradient descent (`1 / lambda_max` per member, power iteration on
      Hessian-vector products of the mini-batch loss every 10 steps) never, 0.367, at 1.5
      times the fixed step's seconds (seconds vary with the load of the shared machine).
      Neither controller fits as well as the defaults in the same steps, and the PI controller
      does not rescue a poor `lr`, so neither is an option (`MemberSteps` is where the
      benchmark puts them in).

    Attributes:
        epochs: Most passes over the training rows.
        batch_size: Rows per mini-batch; None for the automatic size above.
        step_budget: Most optimizer steps per member (it caps the epochs as above); None for
            `epochs` whatever the data size.
        batched: Train the members together (True) or one after another (False: the same
            training, for reference and for comparisons of speed).
        lr: AdamW learning rate (the start of the cosine decay); None for the model's default,
            1e-2 for regression and 3e-3 for classifiers (`CLASSIFIER_LR`, see above).
        weight_decay: AdamW's decoupled weight decay.
        clip_norm: Largest gradient norm (`torch.nn.utils.clip_grad_norm_`); None for no clipping.
        patience: Stop after this many epochs without a better validation score, and restore
            the best weights (scaled with the epochs by the step budget, as above).
        validation_fraction: Share of rows held out for early stopping (stratified for
            labels); 0 trains all `epochs` on every row and keeps the last weights.
        n_collocation: Collocation points sampled uniformly from the input box each epoch for
            the physics terms.
        nll_beta: Regression members train on the beta-NLL (`gaussian_nll`, Seitzer et al.
            2022). The plain NLL (0) stopped members after 10-50 epochs on the nanoparticle
            simulator, with wide variances; 0.5 cross-validated better there (R2 0.93 vs 0.88,
            NLL -0.37 vs -0.06) with 95 % intervals covering 93-96 % instead of 96-99 %. On the
            robot arm beta = 1 (the MSE's gradient for the mean) was no better (3.2e-3 vs 2.5e-3).
        stop_on: What early stopping watches on the validation split: `"score"` (default: the
            CRPS of each regression member's Gaussian, `gaussian_crps`; a classifier's average
            precision, the ranking metric of rare positives, which a class-weighted loss does
            not track, or its training loss while a label has fewer than
            `MIN_VALIDATION_POSITIVES` = 10 positives there), `"loss"` (the training loss; for
            regression the beta-NLL, whose value misleads on precise data, see above) or, for
            classifiers, `"average_precision"` (always; the mean over labels with a positive).
        lr_schedule: `"cosine"` (decay to `lr / 100` over the epochs used) or `"constant"`.
        input_l1: Weight of an L1 penalty on each member's first-layer weights (the MLP's
            weights of its inputs), added to the training loss; None for the model's default
            (`CLASSIFIER_INPUT_L1` = 1e-3 for classifiers, 0 for regression, where it was not
            measured to help). It lets a classifier of many count features rely on the few that
            carry its label (see the protein pairs above).
        patience_share: The least share of the epochs used that the patience may shrink to (as
            above); None for the model's default, a quarter (`PATIENCE_SHARE`) for regression and
            an eighth for classifiers (`CLASSIFIER_PATIENCE_SHARE`: 8 of 60 epochs on the pairs).
    """

    epochs: int = 300
    batch_size: int | None = None
    step_budget: int | None = 6000
    batched: bool = True
    lr: float | None = None
    weight_decay: float = 1e-4
    clip_norm: float | None = 5.0
    patience: int = 30
    validation_fraction: float = 0.2
    n_collocation: int = 128
    nll_beta: float = 0.5
    stop_on: str = "score"
    lr_schedule: str = "cosine"
    input_l1: float | None = None
    patience_share: float | None = None

    def __post_init__(self) -> None:
        if self.stop_on not in ("score", "loss", "average_precision"):
            raise ValueError(f'`stop_on` must be "score", "loss" or "average_precision". Got {self.stop_on!r} instead.')
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(f'`lr_schedule` must be "cosine" or "constant". Got {self.lr_schedule!r} instead.')


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
    share = PATIENCE_SHARE if options.patience_share is None else options.patience_share
    scaled = math.ceil(options.patience * epochs / max(1, options.epochs))
    patience = min(options.patience, max(1, scaled, math.ceil(share * epochs)))
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
    by default; `MemberSteps` takes the steps). With `options.input_l1` each member's loss
    gains `input_l1` times the sum of its first layer's absolute weights
    (`EnsembleNet.first_layer_l1`; not in `train_loss`).

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
    lr = DEFAULT_LR if options.lr is None else options.lr
    steps = MemberSteps(net, lr, options.weight_decay)
    scheduler = _lr_schedule(
        steps.optimizer, options.lr_schedule, max(1, math.ceil(train.shape[1] / batch_size)), epochs
    )
    best = _BestWeights(net, M, patience)
    Xn = net.normalize(X)  # standardized once, not in every mini-batch
    history: list[dict] = []
    for epoch in range(epochs):
        net.train()
        orders = torch.stack([train[k][torch.randperm(train.shape[1], generator=g)] for k, g in enumerate(gens)])
        collocs = [hooks._collocation(g) for g in gens]
        sums = _train_epoch(net, data, Xn, orders, collocs, batch_size, loss_fn, hooks, steps, scheduler, options)
        net.eval()
        val_losses = _validate(net, (Xn, T, w), val, val_loss_fn or loss_fn, options)
        lrs = steps.lr()
        for k in np.flatnonzero(best.active):
            row = {"member": members[k], "epoch": epoch, **{key: float(v[k]) for key, v in sums.items()}}
            history.append({**row, "val_loss": float(val_losses[k]), "lr": float(lrs[k])})
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


class MemberSteps:
    """The optimizer of the members' stacked weights: AdamW, one step size for all members.

    `train_members` calls `backward(loss)` in place of `loss.backward()` and `step()` in place
    of `optimizer.step()`; `optimizer` is there for the schedule to drive, and `lr()` is each
    member's step size for the history. It is the one place where a step size per member
    could enter: `benchmarks.training_step_control` measures a PI controller and curvature-safe steps
    by putting subclasses here (neither earned an option, see `TrainingOptions`).

    Args:
        net: The members (every parameter has the `M` members along its first dimension).
        lr: The step size (the start of the schedule).
        weight_decay: AdamW's decoupled weight decay.
    """

    def __init__(self, net: nn.Module, lr: float, weight_decay: float) -> None:
        self.params = [p for p in net.parameters() if p.requires_grad]
        self.M = self.params[0].shape[0]
        self.optimizer = self._optimizer(lr, weight_decay)

    def _optimizer(self, lr: float, weight_decay: float) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.params, lr=lr, weight_decay=weight_decay)

    def lr(self) -> np.ndarray:
        """Each member's present step size (`M`)."""
        return np.full(self.M, self.optimizer.param_groups[0]["lr"])

    def backward(self, loss: Tensor) -> None:
        """Set the gradients of `loss` (the sum of the members' losses)."""
        loss.backward()

    def step(self) -> None:
        """One update of every member."""
        self.optimizer.step()


def _lr_schedule(
    optimizer: torch.optim.Optimizer, lr_schedule: str, steps_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Cosine annealing from the optimizer's `lr` to `lr * COSINE_FLOOR` over all `epochs` with
    `lr_schedule == "cosine"`, else None (a constant step size)."""
    if lr_schedule != "cosine":
        return None
    lr = optimizer.param_groups[0]["lr"]
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps_per_epoch, eta_min=lr * COSINE_FLOOR)


def _train_epoch(
    net: EnsembleNet,
    data: tuple[Tensor, Tensor, Tensor | None],
    Xn: Tensor,
    orders: Tensor,
    collocs: list[Tensor | None],
    batch_size: int,
    loss_fn: LossFn,
    hooks: Hooks,
    steps: MemberSteps,
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
        if options.input_l1:
            loss = loss + options.input_l1 * net.first_layer_l1().sum()
        for term in terms:
            value = torch.stack([hooks._physics_value(net.member(k), term, X[rows[k]], collocs[k]) for k in range(M)])
            loss = loss + term.weight * value.sum()
            values.append(value)
        steps.optimizer.zero_grad()
        steps.backward(loss)
        if options.clip_norm is not None:
            clip_per_member(net, options.clip_norm)
        steps.step()
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
    """Average precision of `n x m` scores for `n x m` 0/1 labels, the mean over the labels with a
    positive (NaN labels skipped); 0 when no label has one."""
    from sklearn.metrics import average_precision_score

    values = []
    for j in range(T.shape[-1]):
        y, s = T[:, j].numpy(), scores[:, j].numpy()
        keep = ~np.isnan(y)
        if y[keep].sum() > 0:
            values.append(float(average_precision_score(y[keep], s[keep])))
    return float(np.mean(values)) if values else 0.0
