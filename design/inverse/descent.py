"""The descent both inverse-design paths share: projected Adam on an augmented Lagrangian, all starts at once.

Per step: the step size follows a cosine within each cycle (warm restarts), the relaxation's
temperature falls geometrically, the last `HARD_FRACTION` of the steps use the straight-through
(hard) forward pass, the loss per start is `sum(objectives) + augmented Lagrangian of the
violations + smoothness`, Adam steps every start, the designs are projected back into the
space, and every `al_every` steps the multipliers grow by the violations and the penalty doubles
(capped at 1e4). `design.inverse.core` (one set of goals) and `design.inverse.batch` (many
targets) differ only in how they score designs and which starts they keep after each cycle.

`StepControl` replaces Adam's cosine step by a step per start (see its docstring): a
curvature-safe step `safety * 2 / lambda_max` of plain projected gradient descent, with
`lambda_max` of the loss Hessian in the design coordinates estimated by power iteration on
Hessian-vector products (double backward), or a PI controller on the step size.

`optimizer` replaces Adam by AMSGrad (`"amsgrad"`) or by a meta-trained `LearnedOptimizer`
(`design.inverse.learned`), which then takes every step itself (a learned correction of Adam's
step with the cosine; `StepControl` does not apply).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from design.errors import InputError
from design.inverse.learned import LearnedOptimizer
from design.inverse.relax import RelaxedDesigns

HARD_FRACTION = 0.3  # share of the steps that use the straight-through (hard) forward pass
Terms = Callable[[Tensor], tuple[Tensor, Tensor]]  # designs -> (objectives, violations), per start
STEP_CONTROLS = ("adam", "curvature", "pi", "gd")


@dataclass(frozen=True)
class StepControl:
    """How each step's size is chosen (`InverseOptions.step_control`; a plain string sets `kind`).

    Attributes:
        kind: `"adam"` (default): Adam, its step `lr` following a cosine within each cycle.
            `"curvature"`: plain projected gradient descent with the curvature-safe step
            `safety * 2 / lambda_max` per start, `lambda_max` the largest absolute eigenvalue of
            the Hessian of the start's loss in its design coordinates (unit cube and logits),
            from `iterations` power iterations on Hessian-vector products (double backward;
            central differences of the gradient where a model has no second derivative),
            warm-started and refreshed every `every` steps and whenever the penalty grows; the
            move per step is capped at `lr` (flat regions). `"pi"`: a PI controller on each
            start's step size (on top of Adam or of plain gradient steps, `base`). `"gd"`:
            plain projected gradient descent with the fixed step `lr` (a baseline).
        every: Curvature: steps between refreshes of `lambda_max`.
        iterations: Curvature: power iterations per refresh.
        safety: Curvature: the step is `safety` times the stability limit `2 / lambda_max`.
        gains: PI: `(Kp, Ki)` on the log step size.
        setpoint: PI: the value it steers each start's measured cosine between the last move
            (after projection) and the new descent direction `-g` to. Positive cosines (going on
            is still downhill: the step is too short) lengthen the step, negative ones (the
            move overshot, it zig-zags across a valley: too long) shorten it.
        base: PI: `"adam"` (the controller sets Adam's step per start, starting at `lr`) or
            `"gd"` (plain gradient steps; the first step of each start moves `lr`).
        bounds: PI: the step stays within these multiples of its first value.

    The PI controller works in velocity form on `log eta`:
    `log eta_t = log eta_(t-1) + Kp (e_t - e_(t-1)) + Ki e_t`, `e_t = cos(-g_t, x_t - x_(t-1)) - setpoint`,
    clamped to `bounds` (which also stops wind-up). The loss ratio of successive steps was not
    used as the measured value: a slow decrease comes both from too short and from too long a
    step, so it does not say which way to move; the gradient-norm-to-loss ratio grows without
    bound as a target is approached. The sign of the cosine does say which way (it is minus the
    sign of the hypergradient of the loss in the step size, Baydin et al. 2018). The move after
    projection, not the last gradient, is compared, so that a start pinned at a bound of the box
    (whose gradient keeps pointing out of it) does not lengthen its step forever.

    Measured (`valley benchmark step-control`: 3 seeds, 8 held-out targets x 16 starts, 300
    steps; median steps to the first start within tolerance, seconds to it, share of starts
    within tolerance at the end, median final loss):

    - robot arm (GP): Adam 19 steps, 0.66 s, 76 %, 4e-8; tuned fixed step 23, 0.78 s, 5 %, 13
      (17 % of targets never met); curvature 16, 0.99 s, 52 %, 2e-3; PI on Adam 19, 0.54 s,
      77 %, 6e-13; PI on plain steps 17, 0.49 s, 72 %, 0.
    - Rosenbrock residuals (analytic, a curved ill-conditioned valley): Adam 69 steps, 0.06 s,
      58 %, 4.0; tuned fixed step and curvature: no target met in 300 steps (final loss 150 and
      160, 3-4 % of starts ended above their first loss); PI on Adam 86, 0.08 s, 26 %, 25; PI on
      plain steps met a third of the targets.

    So neither earns the default, which stays Adam. The curvature-safe step needs no tuning and
    beats the tuned fixed step (every robot-arm target met, ten times the starts within
    tolerance) but not Adam: its step `1 / lambda_max` converges at the rate `1 - 1/kappa`
    along the flattest direction, hopeless in a banana valley, where Adam's per-coordinate
    scaling helps, and a refresh (5 Hessian-vector products every 5 steps) nearly doubles the
    cost of a step. The PI controller on Adam matches Adam on the arm (lower final loss) and
    is slower in the valley; it removes the choice of `lr` (it starts there and moves it by up
    to `bounds`) rather than beating a good one.
    """

    kind: str = "adam"
    every: int = 5
    iterations: int = 5
    safety: float = 0.5
    gains: tuple[float, float] = (0.3, 0.1)
    setpoint: float = 0.0
    base: str = "adam"
    bounds: tuple[float, float] = (1e-3, 1e2)

    def __post_init__(self) -> None:
        if self.kind not in STEP_CONTROLS:
            raise InputError(f"step_control must be one of {', '.join(STEP_CONTROLS)}. Got {self.kind!r} instead.")
        if self.base not in ("adam", "gd"):
            raise InputError(f"StepControl.base must be 'adam' or 'gd'. Got {self.base!r} instead.")
        if self.every < 1 or self.iterations < 1 or not 0 < self.safety < 1:
            raise InputError("StepControl needs every >= 1, iterations >= 1 and 0 < safety < 1.")
        if not 0 < self.bounds[0] <= 1 <= self.bounds[1]:
            raise InputError(f"StepControl.bounds must hold 1 between positive bounds. Got {self.bounds!r}.")


def as_control(control: StepControl | str) -> StepControl:
    """`control`, or a `StepControl` of that kind."""
    return control if isinstance(control, StepControl) else StepControl(kind=control)


class Descent:
    """One augmented-Lagrangian run over the starts of `relaxed` (see the module docstring).

    Example:
        >>> run = Descent(relaxed, steps=300, lr=0.05, cycles=3, temperature=(1.0, 0.1), n_con=2)
        >>> for step in range(run.steps):
        ...     loss = run.step(step, scorer.terms)
        ...     if run.cycle_ends(step): run.keep(best_rows)
    """

    @classmethod
    def from_options(cls, relaxed: RelaxedDesigns, opts: Any, n_con: int) -> Descent:
        """A run with the settings of an `InverseOptions` (steps, lr, cycles, temperature, smoothing, step control,
        optimizer: `"adam"`, `"amsgrad"` or a `LearnedOptimizer`, already resolved by `learned.as_optimizer`)."""
        return cls(
            relaxed,
            opts.steps,
            opts.lr,
            opts.cycles,
            opts.temperature,
            n_con,
            opts.smooth_groups,
            opts.smooth_weight,
            opts.step_control,
            getattr(opts, "optimizer", "adam"),
        )

    def __init__(
        self,
        relaxed: RelaxedDesigns,
        steps: int,
        lr: float,
        cycles: int,
        temperature: tuple[float, float],
        n_con: int,
        smooth_groups: Sequence[Sequence[str]] = (),
        smooth_weight: float = 0.0,
        control: StepControl | str = "adam",
        optimizer: str | LearnedOptimizer = "adam",
    ) -> None:
        self.relaxed, self.steps, self.lr = relaxed, steps, lr
        self.control = as_control(control)
        self.lam = torch.zeros(relaxed.n, n_con, dtype=torch.double)
        self.rho = 1.0
        self.al_every = max(5, steps // 10)
        self.cycle = max(1, steps // max(1, cycles))
        self.temperature = temperature
        self.smooth = smooth_pairs(relaxed, smooth_groups)
        self.smooth_weight = smooth_weight
        if not isinstance(optimizer, LearnedOptimizer) and optimizer not in ("adam", "amsgrad"):
            raise InputError(f"Descent takes 'adam', 'amsgrad' or a LearnedOptimizer. Got {optimizer!r} instead.")
        self.optimizer = torch.optim.Adam(relaxed.parameters(), lr=lr, amsgrad=optimizer == "amsgrad")
        self.learned = optimizer if isinstance(optimizer, LearnedOptimizer) else None
        self._learned_state = None if self.learned is None else self.learned.init_state(relaxed.parameters())
        S = relaxed.n
        self.lambda_max = torch.full((S,), float("nan"), dtype=torch.double)  # curvature, per start
        self.eta = torch.full((S,), float("nan"), dtype=torch.double)  # the last step size, per start
        self._power: list[Tensor] | None = None  # the power iteration's vectors, warm starts
        self._stale = True  # refresh lambda_max at the next step
        self._previous: list[Tensor] | None = None  # PI: the designs before the last step
        self._error = torch.zeros(S, dtype=torch.double)  # PI: the last error
        self._first = torch.full((S,), float("nan"), dtype=torch.double)  # PI: the first step size
        self._moments: list[tuple[Tensor, Tensor]] | None = None  # per-start Adam (PI on Adam)
        self._t = 0

    def step(self, step: int, terms: Terms, combine: Callable[[Tensor, Tensor], None] | None = None) -> Tensor:
        """One step of every start; the loss per start (detached).

        `combine(objectives, penalty)` replaces the plain backward pass of the summed loss (PCGrad).
        """
        relaxed = self.relaxed
        phase = step % self.cycle
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * 0.5 * (1 + np.cos(np.pi * phase / self.cycle)) + 1e-3 * self.lr
        t0, t1 = self.temperature
        temperature = t0 * (t1 / t0) ** (step / max(1, self.steps - 1))
        hard = step >= (1 - HARD_FRACTION) * self.steps
        lam, rho = self.lam, self.rho

        def losses() -> tuple[Tensor, Tensor, Tensor]:
            objectives, violations = terms(relaxed.X(temperature, hard))
            augmented = ((lam + rho * violations).clamp(min=0.0) ** 2 - lam**2).sum(-1) / (2 * rho)
            penalty = augmented + smoothness(relaxed, self.smooth, self.smooth_weight)
            return objectives, violations, penalty

        def merit() -> Tensor:  # a fresh forward pass, for Hessian-vector products
            o, _, p = losses()
            return o.sum(-1) + p

        objectives, violations, penalty = losses()
        loss = objectives.sum(-1) + penalty  # per start: the augmented Lagrangian
        self.optimizer.zero_grad()
        if combine is not None:
            combine(objectives, penalty)
        else:
            loss.sum().backward()
        if self.learned is not None:
            self._learned_step(step / max(1, self.steps))
        elif self.control.kind == "adam":
            self.optimizer.step()
        else:
            if self.control.kind == "curvature" and (self._stale or step % self.control.every == 0):
                self._refresh_curvature(merit)
            self._take_step()
        relaxed.project()
        if (step + 1) % self.al_every == 0 and lam.shape[-1]:
            self.lam = (lam + rho * violations.detach()).clamp(min=0.0)
            self.rho = min(rho * 2.0, 1e4)
            self._stale = True
        return loss.detach()

    @torch.no_grad()
    def _learned_step(self, done: float) -> None:
        """A step of every coordinate proposed by the learned optimizer from its gradient history."""
        assert self.learned is not None and self._learned_state is not None
        params = self.relaxed.parameters()
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
        steps, self._learned_state = self.learned(grads, self._learned_state, done)
        for p, s in zip(params, steps, strict=True):
            p.add_(torch.nan_to_num(s, nan=0.0, posinf=0.0, neginf=0.0))  # a non-finite step is no step

    def _take_step(self) -> None:
        """A step of every start with its own step size (every kind but `"adam"`)."""
        params = self.relaxed.parameters()
        grads = [torch.zeros_like(p) if p.grad is None else p.grad.detach() for p in params]
        c, S = self.control, self.relaxed.n
        norm = _per_start(grads, grads).sqrt()
        if c.kind == "gd":
            eta = torch.full((S,), self.lr, dtype=torch.double)
        elif c.kind == "curvature":
            eta = torch.minimum(c.safety * 2.0 / self.lambda_max.clamp(min=1e-12), self.lr / norm.clamp(min=1e-12))
        else:
            eta = self._pi(grads, norm)
        directions = grads
        if c.kind == "pi" and c.base == "adam":
            directions = self._adam_directions(grads)
        with torch.no_grad():
            for p, d in zip(params, directions, strict=True):
                p.sub_(eta.view(-1, *[1] * (p.dim() - 1)).to(p.dtype) * d)
        self.eta = eta

    def _pi(self, grads: list[Tensor], norm: Tensor) -> Tensor:
        """The PI controller's step size per start (see `StepControl`)."""
        c = self.control
        first = self._first.isnan()
        if first.any():  # a start's first step: lr (Adam), or a move of length lr (plain steps)
            start = self.lr if c.base == "adam" else self.lr / norm.clamp(min=1e-12)
            self._first = torch.where(first, start, self._first)
            self.eta = torch.where(first, self._first, self.eta)
        eta = self.eta
        params = self.relaxed.parameters()
        if self._previous is not None:  # the last move, after projection
            move = [p.detach() - q for p, q in zip(params, self._previous, strict=True)]
            move_norm = _per_start(move, move).sqrt()
            cosine = -_per_start(grads, move) / (norm * move_norm).clamp(min=1e-30)
            error = torch.where(move_norm > 0, cosine - c.setpoint, torch.zeros_like(cosine))
            kp, ki = c.gains
            log_eta = eta.log() + kp * (error - self._error) + ki * error
            low, high = self._first * c.bounds[0], self._first * c.bounds[1]
            eta = torch.minimum(torch.maximum(log_eta.exp(), low), high)
            self._error = error
        self._previous = [p.detach().clone() for p in params]
        return eta

    def _adam_directions(self, grads: list[Tensor], betas: tuple[float, float] = (0.9, 0.999)) -> list[Tensor]:
        """Adam's bias-corrected direction per coordinate (its step is set per start by the controller)."""
        if self._moments is None:
            self._moments = [(torch.zeros_like(g), torch.zeros_like(g)) for g in grads]
        self._t += 1
        b1, b2 = betas
        out = []
        for (m, v), g in zip(self._moments, grads, strict=True):
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            out.append((m / (1 - b1**self._t)) / ((v / (1 - b2**self._t)).sqrt() + 1e-8))
        return out

    def _refresh_curvature(self, loss: Callable[[], Tensor]) -> None:
        """`lambda_max` per start: power iteration on Hessian-vector products of `loss()` (a `S` tensor)."""
        params = self.relaxed.parameters()
        v = self._power if self._power is not None else [torch.randn_like(p) for p in params]
        v = _normalized(v)
        hvp = _hvp_autograd(loss, params)
        estimate = torch.zeros(self.relaxed.n, dtype=torch.double)
        for _ in range(self.control.iterations):
            try:
                Hv = hvp(v)
            except (NotImplementedError, RuntimeError):  # no second derivative: central differences
                hvp = _hvp_differences(loss, params)
                Hv = hvp(v)
            estimate = _per_start(Hv, Hv).sqrt()  # |H v| for a unit v: tends to the largest |eigenvalue|
            v = _normalized([h.detach() + 1e-12 * torch.randn_like(h) for h in Hv])
        self.lambda_max, self._power, self._stale = estimate, v, False

    def cycle_ends(self, step: int) -> bool:
        """Whether `step` ends a cycle after which starts may be dropped (not the last cycle)."""
        return step % self.cycle == self.cycle - 1 and step < self.steps - self.cycle

    def keep(self, rows: Tensor) -> None:
        """Go on with the starts `rows` only: designs, multipliers and Adam's moments."""
        old = self.relaxed.parameters()
        self.relaxed.keep(rows)
        self.lam = self.lam[rows]
        self.optimizer = _keep_rows(self.optimizer, old, self.relaxed.parameters(), rows)
        self.lambda_max, self.eta = self.lambda_max[rows], self.eta[rows]
        self._error, self._first = self._error[rows], self._first[rows]
        self._power = None if self._power is None else [v[rows] for v in self._power]
        self._previous = None if self._previous is None else [g[rows] for g in self._previous]
        self._moments = None if self._moments is None else [(m[rows], v[rows]) for m, v in self._moments]
        self._learned_state = None if self._learned_state is None else self._learned_state.keep(rows)


def _per_start(a: list[Tensor], b: list[Tensor]) -> Tensor:
    """The dot product of `a` and `b` (lists of `S x ...` tensors) for each start: a `S` tensor."""
    S = a[0].shape[0]
    return sum((x * y).reshape(S, -1).sum(-1) for x, y in zip(a, b, strict=True)) + torch.zeros(S, dtype=torch.double)


def _normalized(v: list[Tensor]) -> list[Tensor]:
    norm = _per_start(v, v).sqrt().clamp(min=1e-30)
    return [x / norm.view(-1, *[1] * (x.dim() - 1)).to(x.dtype) for x in v]


def _hvp_autograd(loss: Callable[[], Tensor], params: list[Tensor]) -> Callable[[list[Tensor]], list[Tensor]]:
    """Hessian-vector products of the summed loss by double backward (the Hessian is block-diagonal by start)."""
    grads: list[Tensor] = []

    def hvp(v: list[Tensor]) -> list[Tensor]:
        if not grads:
            g = torch.autograd.grad(loss().sum(), params, create_graph=True, allow_unused=True)
            grads.extend(torch.zeros_like(p) if gi is None else gi for gi, p in zip(g, params, strict=True))
        used = [(g, p, x) for g, p, x in zip(grads, params, v, strict=True) if g.requires_grad]
        if not used:  # a gradient that autograd cannot differentiate again (or a linear loss)
            raise NotImplementedError("no second derivative")
        Hv = torch.autograd.grad(
            [g for g, _, _ in used],
            [p for _, p, _ in used],
            [x for _, _, x in used],
            retain_graph=True,
            allow_unused=True,
        )
        out = {id(p): h for (_, p, _), h in zip(used, Hv, strict=True)}
        return [torch.zeros_like(p) if out.get(id(p)) is None else out[id(p)] for p in params]

    return hvp


def _hvp_differences(
    loss: Callable[[], Tensor], params: list[Tensor], eps: float = 1e-4
) -> Callable[[list[Tensor]], list[Tensor]]:
    """Hessian-vector products by central differences of the gradient (for models without a second derivative)."""

    def gradient() -> list[Tensor]:
        g = torch.autograd.grad(loss().sum(), params, allow_unused=True)
        return [torch.zeros_like(p) if gi is None else gi for gi, p in zip(g, params, strict=True)]

    def hvp(v: list[Tensor]) -> list[Tensor]:
        with torch.no_grad():
            for p, x in zip(params, v, strict=True):
                p.add_(eps * x)
        plus = gradient()
        with torch.no_grad():
            for p, x in zip(params, v, strict=True):
                p.sub_(2 * eps * x)
        minus = gradient()
        with torch.no_grad():
            for p, x in zip(params, v, strict=True):
                p.add_(eps * x)
        return [(a - b) / (2 * eps) for a, b in zip(plus, minus, strict=True)]

    return hvp


def _keep_rows(optimizer: torch.optim.Adam, old: list[Tensor], new: list[Tensor], rows: Tensor) -> torch.optim.Adam:
    group = optimizer.param_groups[0]
    kept = torch.optim.Adam(new, lr=group["lr"], amsgrad=group["amsgrad"])
    for p_old, p_new in zip(old, new, strict=True):
        if state := optimizer.state.get(p_old):
            kept.state[p_new] = {k: v[rows] if k != "step" else v for k, v in state.items()}
    return kept


def smooth_pairs(relaxed: RelaxedDesigns, groups: Sequence[Sequence[str]]) -> list[tuple[int, int]]:
    """Pairs of neighbouring box coordinates in the ordered groups."""
    position = {i: j for j, i in enumerate(relaxed.box)}
    pairs = []
    for group in groups:
        cols = []
        for name in group:
            col = relaxed.space.column(name)
            if col not in position:
                raise InputError(f"smooth_groups may only name continuous or integer parameters. Got {name!r}.")
            cols.append(position[col])
        pairs += list(zip(cols[:-1], cols[1:], strict=True))
    return pairs


def smoothness(relaxed: RelaxedDesigns, pairs: list[tuple[int, int]], weight: float) -> Tensor | float:
    """`weight` times the squared differences of neighbouring coordinates, per start."""
    if not pairs or weight == 0:
        return 0.0
    a, b = zip(*pairs, strict=True)
    return weight * ((relaxed.u[:, list(a)] - relaxed.u[:, list(b)]) ** 2).sum(-1)
