"""Step-size control in training: the members of a neural ensemble as the starts (issue 21 item 4).

`run_training_benchmark` (`valley benchmark step-control --part training`): the members
of one `NeuralEnsemble` are the starts, trained on the sine wave with AdamW's defaults, Adam's
textbook step, a tuned fixed step of plain gradient descent, the PI controller on AdamW
(`TrainingStepControl("pi")`) and the curvature-safe step of plain gradient descent
(`TrainingStepControl("curvature")`); neither earned an option of `TrainingOptions`, so they
live here and enter the trainer only in this benchmark (`controlled`).
The inverse-design half is `benchmarks.step_control`.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from unittest import mock

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from benchmarks.step_control import Progress
from surrogates.ensemble_training import MemberSteps

TRAINING_METHODS = ("adam", "adam 1e-3", "sgd tuned", "pi", "pi constant", "pi from 1e-3", "curvature")
SGD_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)  # fixed steps tried for `sgd tuned`


@dataclass(frozen=True)
class TrainingStepControl:
    """A step size per ensemble member in training (benchmark only: measured, and left out of `TrainingOptions`).

    Attributes:
        kind: `"pi"`: AdamW, each member's step size the scheduled `lr` times a factor of its
            own from a PI controller. `"curvature"`: plain gradient descent with the
            curvature-safe step `safety * 2 / lambda_max` per member, `lambda_max` the largest
            absolute eigenvalue of the Hessian of the member's mini-batch loss in its weights,
            from `iterations` power iterations on Hessian-vector products (double backward),
            warm-started and refreshed every `every` steps, at most `max_step`. `"sgd"`: plain
            gradient descent with the step `lr` and its schedule (the tuned fixed step).
        gains: PI: `(Kp, Ki)` on the log of the factor, per optimizer step.
        setpoint: PI: the value it steers each member's cosine between its last move and its
            new mini-batch descent direction `-g` to: positive cosines (still downhill: too
            short a step) lengthen the step, negative ones (it overshot) shorten it.
        bounds: PI: the factor stays within these bounds (which also stops wind-up).
        every, iterations, safety, max_step: Curvature, as above.

    The PI controller is that of `design.inverse.descent.StepControl("pi")` (velocity form on
    the log factor, `log c_t = log c_(t-1) + Kp (e_t - e_(t-1)) + Ki e_t`, `e_t = cos(-g_t,
    w_t - w_(t-1)) - setpoint`) with a tenth of its integral gain: a mini-batch's cosine is
    noisy and about -0.03 on average near the loss's noise floor, so `Ki = 0.1` shrank the step
    a hundredfold within 1,500 steps (sine wave, 4 members, seed 0: validation CRPS 0.07-0.13
    against 0.03-0.05 with `Ki = 0.01`; chosen there, before the benchmark ran).
    """

    kind: str
    gains: tuple[float, float] = (0.3, 0.01)
    setpoint: float = 0.0
    bounds: tuple[float, float] = (1e-2, 1e2)
    every: int = 10
    iterations: int = 3
    safety: float = 0.5
    max_step: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("pi", "curvature", "sgd"):
            raise ValueError(f"`kind` must be pi, curvature or sgd. Got {self.kind!r} instead.")


class ControlledSteps(MemberSteps):
    """`MemberSteps` with a step size per member (`TrainingStepControl`), put into the trainer by `controlled`.

    A member's step size scales its slice of the optimizer's update: AdamW's and SGD's updates
    are linear in their step size, so this is the update the member would get with that step
    size. The members' weights are disjoint, so the Hessian of the summed loss is block-diagonal
    by member and one Hessian-vector product serves every member's power iteration.
    """

    def __init__(self, net: nn.Module, lr: float, weight_decay: float, control: TrainingStepControl) -> None:
        self.control = control
        super().__init__(net, 1.0 if control.kind == "curvature" else lr, weight_decay)
        self.scale = torch.ones(self.M)  # per member: the factor of the group's step size
        self.lambda_max = torch.full((self.M,), float("nan"))  # curvature, per member
        self._power: list[Tensor] | None = None  # curvature: the power iteration's vectors (warm starts)
        self._previous: list[Tensor] | None = None  # PI: the weights before the last step
        self._error = torch.zeros(self.M)  # PI: the last error
        self._t = 0

    def _optimizer(self, lr: float, weight_decay: float) -> torch.optim.Optimizer:
        if self.control.kind == "pi":
            return torch.optim.AdamW(self.params, lr=lr, weight_decay=weight_decay)
        return torch.optim.SGD(self.params, lr=lr, weight_decay=weight_decay)

    def lr(self) -> np.ndarray:
        return (self.scale * self.optimizer.param_groups[0]["lr"]).numpy()

    def backward(self, loss: Tensor) -> None:
        """The gradients of `loss`; first, when due, `lambda_max` by power iteration on the same graph."""
        c = self.control
        self._t += 1
        if c.kind != "curvature" or (self._t - 1) % c.every:
            loss.backward()
            return
        grads = torch.autograd.grad(loss, self.params, create_graph=True)
        v = normalized_per_member(self._power or [torch.randn_like(p) for p in self.params])
        for _ in range(c.iterations):
            Hv = [h.detach() for h in torch.autograd.grad(grads, self.params, v, retain_graph=True)]
            self.lambda_max = per_member_dot(Hv, Hv).sqrt()  # |H v| of a unit v: the largest |eigenvalue|
            v = normalized_per_member([h + 1e-12 * torch.randn_like(h) for h in Hv])
        self._power = v
        for p, g in zip(self.params, grads, strict=True):
            p.grad = g.detach()

    def step(self) -> None:
        c = self.control
        if c.kind == "sgd":
            self.optimizer.step()
            return
        before = [p.detach().clone() for p in self.params]
        if c.kind == "pi":
            self.scale = self._pi([torch.zeros_like(p) if p.grad is None else p.grad for p in self.params], before)
        else:
            self.scale = (c.safety * 2.0 / self.lambda_max.clamp(min=1e-12)).clamp(max=c.max_step)
        self.optimizer.step()
        with torch.no_grad():
            for p, b in zip(self.params, before, strict=True):
                p.copy_(b + per_member_view(self.scale, p) * (p - b))

    def _pi(self, grads: list[Tensor], weights: list[Tensor]) -> Tensor:
        """The PI controller's factor per member at the present `weights`."""
        c, scale = self.control, self.scale
        if self._previous is not None:
            move = [p - q for p, q in zip(weights, self._previous, strict=True)]
            norms = (per_member_dot(grads, grads) * per_member_dot(move, move)).sqrt()
            cosine = -per_member_dot(grads, move) / norms.clamp(min=1e-30)
            error = torch.where(norms > 0, cosine - c.setpoint, torch.zeros_like(cosine))
            kp, ki = c.gains
            scale = (scale.log() + kp * (error - self._error) + ki * error).exp().clamp(*c.bounds)
            self._error = torch.nan_to_num(error)
        self._previous = weights
        return torch.nan_to_num(scale, nan=1.0)  # a member whose gradient is not finite keeps its step


def controlled(control: TrainingStepControl | None) -> contextlib.AbstractContextManager:
    """Training with a step size per member (`ControlledSteps`) inside the block; None: the trainer's own AdamW."""
    if control is None:
        return contextlib.nullcontext()
    return mock.patch("surrogates.ensemble_training.MemberSteps", functools.partial(ControlledSteps, control=control))


def per_member_dot(a: list[Tensor], b: list[Tensor]) -> Tensor:
    """The dot product of `a` and `b` (lists of member-stacked `M x ...` tensors) for each member: a `M` tensor."""
    M = a[0].shape[0]
    total = torch.zeros(M, dtype=a[0].dtype)
    for x, y in zip(a, b, strict=True):
        total = total + (x * y).reshape(M, -1).sum(-1)
    return total


def per_member_view(values: Tensor, like: Tensor) -> Tensor:
    """A `M` tensor shaped to broadcast over the member-stacked tensor `like`."""
    return values.view(-1, *[1] * (like.dim() - 1)).to(like.dtype)


def normalized_per_member(v: list[Tensor]) -> list[Tensor]:
    """`v` (member-stacked tensors) scaled to unit norm per member."""
    norm = per_member_dot(v, v).sqrt().clamp(min=1e-30)
    return [x / per_member_view(norm, x) for x in v]


def _sine_rows(n_rows: int, seed: int) -> tuple[Tensor, Tensor]:
    from benchmarks import sine_wave

    df = sine_wave.generate_dataset(n_rows, seed)
    X = torch.tensor(df[list(sine_wave.PARAMETERS)].to_numpy())
    return X, torch.tensor(df[list(sine_wave.OUTCOMES)].to_numpy())


def train_ensemble(
    X: Tensor,
    Y: Tensor,
    members: int,
    seed: int,
    step_budget: int,
    control: TrainingStepControl | None,
    lr: float,
    lr_schedule: str,
) -> tuple[pd.DataFrame, float, int]:
    """`NeuralEnsemble(members)` trained `step_budget` steps, no early stop: `(history, seconds, steps per epoch)`."""
    from surrogates import NeuralEnsemble, TrainingOptions
    from surrogates.ensemble_training import schedule

    options = TrainingOptions(
        step_budget=step_budget,
        lr=lr,
        lr_schedule=lr_schedule,
        patience=10**6,  # every member trains the whole budget
    )
    start = time.perf_counter()
    with controlled(control):
        model = NeuralEnsemble(members, seed=seed, training=options).fit(X, Y)
    seconds = time.perf_counter() - start
    n_train = len(X) - round(options.validation_fraction * len(X))
    batch_size, _, _ = schedule(n_train, options)
    return model.history_, seconds, math.ceil(n_train / batch_size)


def training_scores(history: pd.DataFrame, tolerance: float, seconds: float, steps_per_epoch: int) -> dict[str, float]:
    """Per-member scores of one training run (see `run_training_benchmark`)."""
    curves = history.pivot(index="epoch", columns="member", values="val_loss")
    epochs = len(curves)
    values = curves.to_numpy()
    below = np.nan_to_num(values, nan=np.inf) <= tolerance
    first = np.where(below.any(0), below.argmax(0) + 1, epochs)  # epochs trained until the tolerance was met
    final, start = values[-1], values[0]
    median_epochs = float(np.median(first))
    return {
        "reached": float(below.any(0).mean()),
        "epochs": median_epochs,
        "steps": median_epochs * steps_per_epoch,
        "seconds": median_epochs * seconds / epochs,
        "diverged": float((~np.isfinite(final) | (final > start)).mean()),
        "final val": float(np.median(final[np.isfinite(final)])) if np.isfinite(final).any() else math.inf,
        "run seconds": seconds,
    }


def run_training_benchmark(
    seeds: Sequence[int] = (0, 1, 2),
    members: int = 16,
    n_rows: int = 2000,
    step_budget: int = 3000,
    tolerance: float = 0.05,
    methods: Sequence[str] = TRAINING_METHODS,
    progress: Progress = None,
) -> pd.DataFrame:
    """One row per seed and training method: step-size control of `NeuralEnsemble` members (one torch thread).

    The members of one ensemble are the starts: each has its own initial weights, shuffling and
    validation split (`TrainingOptions`: 20 % of the rows), and trains on `n_rows` rows of the
    sine wave (`benchmarks.sine_wave`, seed `seed`) for `step_budget` optimizer steps on the
    beta-NLL (no early stopping). Methods: `adam` (Valley's default: AdamW, `lr` 1e-2 with
    the cosine decay), `adam 1e-3` (Adam's textbook default step 1e-3, constant), `sgd tuned`
    (plain gradient descent with the constant step of `SGD_GRID` that did best in this very
    run: an optimistic baseline), `pi` (`TrainingStepControl("pi")` on AdamW with Valley's
    defaults: `lr` 1e-2 and the cosine decay, times each member's factor), `pi constant` (the
    same with a constant schedule: the controller alone moves the step), `pi from 1e-3` (that
    from Adam's default step: can it find a better step from a poor one?) and `curvature`
    (`TrainingStepControl("curvature")`, plain gradient descent). The trainer has neither
    controller as an option (`TrainingOptions` has the figures): `controlled` puts them in.

    Scores, per method over the members: `reached` (share whose validation score, the CRPS of
    the member's Gaussian in standardized units, met `tolerance` at some epoch's end),
    `epochs` and `steps` (median over members of the epochs, and optimizer steps, until then;
    the budget where it never did), `seconds` (to that epoch, from the run's seconds per
    epoch), `diverged` (share whose final score is not finite or above its first), `final val`
    (median final score) and `run seconds`.
    """
    rows = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for seed in seeds:
            X, Y = _sine_rows(n_rows, seed)

            def run(control: TrainingStepControl | None, lr: float, lr_schedule: str, X=X, Y=Y, seed=seed) -> dict:  # noqa: ANN001
                history, seconds, per_epoch = train_ensemble(X, Y, members, seed, step_budget, control, lr, lr_schedule)
                return training_scores(history, tolerance, seconds, per_epoch)

            plans: dict[str, tuple[TrainingStepControl | None, float, str]] = {
                "adam": (None, 1e-2, "cosine"),
                "adam 1e-3": (None, 1e-3, "constant"),
                "pi": (TrainingStepControl("pi"), 1e-2, "cosine"),
                "pi constant": (TrainingStepControl("pi"), 1e-2, "constant"),
                "pi from 1e-3": (TrainingStepControl("pi"), 1e-3, "constant"),
                "curvature": (TrainingStepControl("curvature"), 1.0, "constant"),
            }
            scores: dict[str, dict] = {}
            for method, (control, lr, lr_schedule) in plans.items():
                if method in methods:
                    if progress is not None:
                        progress(f"training, seed {seed}: {method}")
                    scores[method] = {"lr": lr} | run(control, lr, lr_schedule)
            if "sgd tuned" in methods:
                grid = {}
                for lr in SGD_GRID:
                    if progress is not None:
                        progress(f"training, seed {seed}: sgd lr {lr:g}")
                    grid[lr] = run(TrainingStepControl("sgd"), lr, "constant")
                tuned = min(SGD_GRID, key=lambda lr: (grid[lr]["epochs"], -grid[lr]["reached"], grid[lr]["final val"]))
                scores["sgd tuned"] = {"lr": tuned} | grid[tuned]
            rows += [{"seed": seed, "method": name} | scores[name] for name in TRAINING_METHODS if name in scores]
    finally:
        torch.set_num_threads(threads)
    return pd.DataFrame(rows)


def summarize_training(results: pd.DataFrame) -> pd.DataFrame:
    """Means over seeds per training method (`lr`: the step each seed used; `sgd tuned`'s choice per seed)."""
    lrs = results.groupby("method", sort=False)["lr"].apply(lambda s: "/".join(f"{v:g}" for v in s))
    means = results.groupby("method", sort=False).mean(numeric_only=True).drop(columns=["seed", "lr"])
    return means.assign(lr=lrs).reset_index()


def format_training_table(summary: pd.DataFrame) -> str:
    """The training summary as text, one line per method."""
    shown = summary.copy()
    for col in ("reached", "diverged"):
        shown[col] = shown[col].map(lambda v: f"{100 * v:.0f} %")
    for col in ("epochs", "steps"):
        shown[col] = shown[col].map(lambda v: f"{v:.0f}")
    for col in ("seconds", "run seconds"):
        shown[col] = shown[col].map(lambda v: f"{v:.1f}")
    shown["final val"] = shown["final val"].map(lambda v: f"{v:.4f}")
    return shown.to_string(index=False)
