"""The descent both inverse-design paths share: projected Adam on an augmented Lagrangian, all starts at once.

Per step: the step size follows a cosine within each cycle (warm restarts), the relaxation's
temperature falls geometrically, the last `HARD_FRACTION` of the steps use the straight-through
(hard) forward pass, the loss per start is `sum(objectives) + augmented Lagrangian of the
violations + smoothness`, Adam steps every start, the designs are projected back into the
space, and every `al_every` steps the multipliers grow by the violations and the penalty doubles
(capped at 1e4). `design.inverse.core` (one set of goals) and `design.inverse.batch` (many
targets) differ only in how they score designs and which starts they keep after each cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from design.errors import InputError
from design.inverse.relax import RelaxedDesigns

HARD_FRACTION = 0.3  # share of the steps that use the straight-through (hard) forward pass
Terms = Callable[[Tensor], tuple[Tensor, Tensor]]  # designs -> (objectives, violations), per start


class Descent:
    """One augmented-Lagrangian run over the starts of `relaxed` (see the module docstring).

    Example:
        >>> run = Descent(relaxed, steps=300, lr=0.05, cycles=3, temperature=(1.0, 0.1), n_con=2)
        >>> for step in range(run.steps):
        ...     loss = run.step(step, scorer.terms)
        ...     if run.cycle_ends(step): run.keep(best_rows)
    """

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
    ) -> None:
        self.relaxed, self.steps, self.lr = relaxed, steps, lr
        self.lam = torch.zeros(relaxed.n, n_con, dtype=torch.double)
        self.rho = 1.0
        self.al_every = max(5, steps // 10)
        self.cycle = max(1, steps // max(1, cycles))
        self.temperature = temperature
        self.smooth = smooth_pairs(relaxed, smooth_groups)
        self.smooth_weight = smooth_weight
        self.optimizer = torch.optim.Adam(relaxed.parameters(), lr=lr)

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
        X = relaxed.X(temperature, step >= (1 - HARD_FRACTION) * self.steps)
        objectives, violations = terms(X)
        lam, rho = self.lam, self.rho
        augmented = ((lam + rho * violations).clamp(min=0.0) ** 2 - lam**2).sum(-1) / (2 * rho)
        penalty = augmented + smoothness(relaxed, self.smooth, self.smooth_weight)
        loss = objectives.sum(-1) + penalty  # per start: the augmented Lagrangian
        self.optimizer.zero_grad()
        if combine is not None:
            combine(objectives, penalty)
        else:
            loss.sum().backward()
        self.optimizer.step()
        relaxed.project()
        if (step + 1) % self.al_every == 0 and lam.shape[-1]:
            self.lam = (lam + rho * violations.detach()).clamp(min=0.0)
            self.rho = min(rho * 2.0, 1e4)
        return loss.detach()

    def cycle_ends(self, step: int) -> bool:
        """Whether `step` ends a cycle after which starts may be dropped (not the last cycle)."""
        return step % self.cycle == self.cycle - 1 and step < self.steps - self.cycle

    def keep(self, rows: Tensor) -> None:
        """Go on with the starts `rows` only: designs, multipliers and Adam's moments."""
        old = self.relaxed.parameters()
        self.relaxed.keep(rows)
        self.lam = self.lam[rows]
        self.optimizer = _keep_rows(self.optimizer, old, self.relaxed.parameters(), rows)


def _keep_rows(optimizer: torch.optim.Adam, old: list[Tensor], new: list[Tensor], rows: Tensor) -> torch.optim.Adam:
    kept = torch.optim.Adam(new, lr=optimizer.param_groups[0]["lr"])
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
