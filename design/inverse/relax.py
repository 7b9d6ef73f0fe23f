"""The relaxed design variables of inverse design: a batch of starts as one set of tensors.

Continuous and integer parameters are unit-cube coordinates moved by projected steps (clamped to
the box, then alternately projected onto the linear constraints and, in nudge mode, onto a ball
around the start). Integer parameters move continuously and are projected onto their levels at
the end. Categorical and sequence parameters are logits: a tempered softmax gives a relaxed
one-hot; with `hard=True` the forward pass sees the exact one-hot (or category code) while the
gradient flows through the softmax (straight-through estimator).
"""

from __future__ import annotations

import torch
from torch import Tensor

from design.space import SearchSpace

_PROJECTION_SWEEPS = 3


class RelaxedDesigns:
    """`S` designs of a search space as trainable tensors.

    Args:
        space: The search space.
        X0: A `S x d` tensor of encoded starting designs (feasible, discrete values allowed).
        center: Optional `d` encoded design for nudge mode, with `radius` the largest allowed
            Euclidean distance of the scalar coordinates from it.
        radius: See `center`.

    Example:
        >>> relaxed = RelaxedDesigns(space, space.sample(16))
        >>> X = relaxed.X(temperature=1.0)          # `16 x d`, differentiable in relaxed.parameters()
    """

    def __init__(self, space: SearchSpace, X0: Tensor, center: Tensor | None = None, radius: float | None = None):
        self.space = space
        self.cat = sorted(space.cat_dims)
        self.box = [i for i in range(len(space.scalars)) if i not in space.cat_dims]
        self.blocks = space.sequence_blocks
        X0 = X0.detach().double()
        self.n = X0.shape[0]
        self.u = X0[:, self.box].clone().requires_grad_(True)
        self.cat_logits = [
            self._logits(torch.nn.functional.one_hot(X0[:, i].round().long(), len(space.cat_dims[i]))) for i in self.cat
        ]
        self.seq_logits = [self._logits(X0[:, s : s + L * A].reshape(-1, L, A)) for s, L, A in self.blocks]
        self.center = None if center is None else center.double()[self.box]
        self.radius = radius
        self._halfspaces, self._hyperplanes = self._box_constraints()

    @staticmethod
    def _logits(one_hot: Tensor) -> Tensor:
        # A start's own letter or category gets a head start of 2 nats over the others.
        return (2.0 * one_hot.double()).requires_grad_(True)

    def parameters(self) -> list[Tensor]:
        return [self.u, *self.cat_logits, *self.seq_logits]

    def X(self, temperature: float = 1.0, hard: bool = False) -> Tensor:
        """The designs as a `S x d` encoded tensor, differentiable in `parameters()`."""
        S = self.n
        cols: list[Tensor | None] = [None] * self.space.d
        for j, i in enumerate(self.box):
            cols[i] = self.u[:, j]
        for i, logits in zip(self.cat, self.cat_logits, strict=True):
            p = torch.softmax(logits / temperature, dim=-1)
            levels = torch.arange(p.shape[-1], dtype=p.dtype)
            soft = p @ levels
            cols[i] = soft + (p.argmax(-1).to(p.dtype) - soft).detach() if hard else soft
        parts = [torch.stack(cols[: len(self.space.scalars)], dim=-1)] if self.space.scalars else []  # type: ignore[arg-type]
        for logits in self.seq_logits:
            p = torch.softmax(logits / temperature, dim=-1)
            if hard:
                one_hot = torch.nn.functional.one_hot(p.argmax(-1), p.shape[-1]).to(p.dtype)
                p = p + (one_hot - p).detach()
            parts.append(p.reshape(S, -1))
        return torch.cat(parts, dim=-1)

    @torch.no_grad()
    def project(self, sweeps: int = _PROJECTION_SWEEPS) -> None:
        """Put the box coordinates back into the box, the linear constraints and the nudge ball."""
        u = self.u
        for _ in range(sweeps):
            u.clamp_(0.0, 1.0)
            for a, b in self._halfspaces:  # a . u >= b
                gap = (b - u @ a).clamp(min=0.0)
                u.add_(gap[:, None] * a / (a @ a))
            for a, b in self._hyperplanes:
                u.add_((b - u @ a)[:, None] * a / (a @ a))
            if self.center is not None and self.radius is not None:
                step = u - self.center
                norm = step.norm(dim=-1, keepdim=True).clamp(min=1e-12)
                u.copy_(self.center + step * (self.radius / norm).clamp(max=1.0))
        u.clamp_(0.0, 1.0)

    def discrete(self) -> Tensor:
        """The designs with every discrete choice made: `S x d`, snapped to levels, codes and one-hot."""
        with torch.no_grad():
            return self.space.snap(self.X(temperature=1.0, hard=True))

    @torch.no_grad()
    def keep(self, rows: Tensor) -> None:
        """Drop every design but those at `rows` (a boolean mask or indices); `parameters()` are new tensors."""
        self.u = self.u[rows].clone().requires_grad_(True)
        self.cat_logits = [logits[rows].clone().requires_grad_(True) for logits in self.cat_logits]
        self.seq_logits = [logits[rows].clone().requires_grad_(True) for logits in self.seq_logits]
        self.n = self.u.shape[0]

    def _box_constraints(self) -> tuple[list[tuple[Tensor, float]], list[tuple[Tensor, float]]]:
        """Linear constraints as `(a, b)` over the box coordinates `u`."""
        position = {i: j for j, i in enumerate(self.box)}
        inequalities, equalities = self.space.botorch_constraints()

        def dense(idx: Tensor, coef: Tensor) -> Tensor:
            a = torch.zeros(len(self.box), dtype=torch.double)
            for i, c in zip(idx.tolist(), coef.tolist(), strict=True):
                a[position[i]] += c
            return a

        return (
            [(dense(i, c), float(b)) for i, c, b in inequalities],
            [(dense(i, c), float(b)) for i, c, b in equalities],
        )
