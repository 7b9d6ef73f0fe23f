"""After the descent: discrete polish, distinct designs, robustness figures and verification.

- `polish`: best single discrete change per round (an integer level up or down, another category,
  one letter substituted in a sequence), scored by the surrogate; a change is kept only if it
  lowers the merit, so polishing never makes a design worse by the surrogate's own account.
- `select_distinct`: rank (predicted goals met first, then merit; for targets and constraints
  alone, the precisely met designs nearest the training data first; or flat minima first, see
  `flat_order`) and drop near-duplicates.
- `describe`: the table of designs, with each design's sensitivity to a manufacturing tolerance
  (the objective's expected value under Gaussian input noise, and the largest eigenvalue of its
  Hessian with respect to the continuous coordinates) and its distance to the training data.
- `verify_designs`: re-simulate designs and put the true outcomes beside the predicted ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from design.inverse.goals import Goal, as_goals
from design.inverse.score import Scorer
from design.space import SearchSpace

if TYPE_CHECKING:
    from design.inverse.core import InverseOptions
    from design.inverse.relax import RelaxedDesigns

_SENSITIVITY_SAMPLES = 64
_DENSE_HESSIAN_MAX_DIM = 64
_TRUST_NEIGHBOURS = 5
# Designs predicted to meet every target within this fraction of its tolerance count as equally
# good; the trust ranking orders them by their distance to the training data.
PRECISE_FRACTION = 0.1


def box_columns(space: SearchSpace) -> list[int]:
    """Encoded columns of the continuous and integer parameters."""
    return [i for i in range(len(space.scalars)) if i not in space.cat_dims]


def feasible_encoded(space: SearchSpace, X: Tensor) -> Tensor:
    """A `S` boolean tensor: do the encoded designs meet every linear constraint (within round-off)?"""
    ok = torch.ones(X.shape[0], dtype=torch.bool)
    inequalities, equalities = space.botorch_constraints()
    for idx, coef, rhs in inequalities:
        ok &= X[:, idx] @ coef >= rhs - 1e-9 * max(1.0, abs(rhs))
    for idx, coef, rhs in equalities:
        ok &= (X[:, idx] @ coef - rhs).abs() <= 1e-7 * max(1.0, abs(rhs))
    return ok


@dataclass
class Neighbourhood:
    """Where designs may go in nudge mode: a ball around `center` (None: anywhere)."""

    space: SearchSpace
    center: Tensor | None = None
    radius: float | None = None

    def within(self, X: Tensor) -> Tensor:
        """A `S` boolean tensor: inside the box coordinates' ball and each sequence's change budget."""
        if self.center is None or self.radius is None:
            return torch.ones(X.shape[0], dtype=torch.bool)
        box = box_columns(self.space)
        ok = (X[:, box] - self.center[box]).norm(dim=-1) <= self.radius + 1e-9
        for start, L, A in self.space.sequence_blocks:
            changed = _letters(X, start, L, A) != _letters(self.center[None], start, L, A)
            ok &= changed.sum(-1) <= int(np.floor(self.radius * L + 1e-9))
        return ok

    def repair(self, X: Tensor, relaxed: RelaxedDesigns) -> Tensor:
        """In nudge mode, undo the least confident letter changes beyond each sequence's budget."""
        if self.center is None or self.radius is None or not self.space.sequence_blocks:
            return X
        X = X.clone()
        for (start, L, A), logits in zip(self.space.sequence_blocks, relaxed.seq_logits, strict=True):
            budget = int(np.floor(self.radius * L + 1e-9))
            original = _letters(self.center[None], start, L, A).expand(X.shape[0], L)
            new = _letters(X, start, L, A)
            p = torch.softmax(logits.detach(), dim=-1)
            gain = p.gather(-1, new[..., None])[..., 0] - p.gather(-1, original[..., None])[..., 0]
            gain = torch.where(new != original, gain, torch.full_like(gain, -np.inf))
            rank = torch.argsort(torch.argsort(gain, dim=-1, descending=True), dim=-1)
            letters = torch.where((rank < budget) & (new != original), new, original)
            X[:, start : start + L * A] = torch.nn.functional.one_hot(letters, A).double().reshape(-1, L * A)
        return X


def polish(X: Tensor, scorer: Scorer, hood: Neighbourhood, rounds: int = 3) -> Tensor:
    """Improve discrete choices by the best single change per design and round (never worse)."""
    space = hood.space
    X = X.clone()
    for _ in range(rounds):
        moves = _single_changes(space, X)
        if moves is None:
            break
        M, S, d = moves.shape
        flat = moves.reshape(M * S, d)
        with torch.no_grad():
            merit = scorer.merit(flat).reshape(M, S)
            current = scorer.merit(X)
        allowed = (feasible_encoded(space, flat) & hood.within(flat)).reshape(M, S)
        merit = torch.where(allowed, merit, torch.full_like(merit, np.inf))
        best, which = merit.min(dim=0)
        better = best < current - 1e-12
        if not better.any():
            break
        X[better] = moves[which[better], torch.arange(S)[better]]
    return X


def select_distinct(
    X: Tensor,
    scorer: Scorer,
    space: SearchSpace,
    n: int,
    min_distance: float,
    tolerance: float | None = None,
    train_X: Tensor | None = None,
    flat_tie: float | None = None,
) -> Tensor:
    """The best `n` designs, no two closer than `min_distance`: predicted goals met first, then merit.

    With a `tolerance`, the merit counts the expected objective under that input noise (see
    `expected_objective`) instead of the nominal one: flat optima rank above sharp ones.
    With a `tolerance` and a `flat_tie` (flatness ranking), the merit is the expected merit
    under the tolerance, violations included (`expected_merit`: a design whose jittered copies
    break a constraint is not flat), and designs whose merits lie within `flat_tie` of each other
    are near-ties broken by the smaller curvature (`flat_order`).
    With `train_X` and goals that are only targets and constraints (nothing to minimize or
    maximize), the designs predicted to meet every goal with `PRECISE_FRACTION` of each target's
    tolerance are equally good by what was asked; among them those nearest the training data
    (`data_distance`) come first, as the surrogate is most accurate there (see `trust_ranking`).
    """
    with torch.no_grad():
        mean, _ = scorer.predict(X)
        if tolerance is not None and flat_tie is not None:
            merit = expected_merit(scorer, space, X, tolerance)
        else:
            merit = scorer.merit(X)
        if tolerance is not None and flat_tie is None:
            merit = merit - scorer.terms(X)[0].sum(-1) + expected_objective(scorer, space, X, tolerance)
    unmet = torch.zeros(X.shape[0])
    for g in scorer.goals:
        unmet += (~torch.as_tensor(g.met(mean[:, scorer.outcomes.index(g.name)]))).double()
    if train_X is not None and trust_ranking(scorer.goals):
        precise = (unmet == 0) & _precise(scorer, mean)
        merit = torch.where(precise, data_distance(space, X, train_X), merit)
        unmet = unmet + (~precise).double() * 0.5  # precise designs before merely met ones
    order = sorted(range(X.shape[0]), key=lambda i: (unmet[i].item(), merit[i].item()))
    if tolerance is not None and flat_tie:  # a tie of 0 leaves the order as it is
        order = flat_order(order, unmet, merit, _curvature(scorer, space, X, order, n), flat_tie)
    chosen: list[int] = []
    for i in order:
        if len(chosen) == n:
            break
        if not chosen or design_distance(space, X[i : i + 1], X[chosen]).min() > min_distance:
            chosen.append(i)
    return X[chosen]


def flat_order(order: list[int], unmet: Tensor, merit: Tensor, curvature: Tensor, tie: float) -> list[int]:
    """Reorder designs (given best first by `(unmet, merit)`) so that near-ties go to the flatter one.

    Greedy: the next design is, among the remaining ones with as few goals unmet as the best
    remaining design and a merit at most `tie` above its merit, the one with the smallest
    `curvature` (NaN or unknown counts as infinite, so such designs keep their merit order).
    With `tie = 0` this is the `(unmet, merit)` order itself.

    Args:
        order: Indices of the designs, sorted by `(unmet, merit)`.
        unmet: A `S` tensor: goals each design is predicted to miss.
        merit: A `S` tensor: each design's merit (lower is better), e.g. its `expected_merit`.
        curvature: A `S` tensor: each design's `hessian_max_eig` (NaN where not computed).
        tie: Merits closer than this (in outcome scales) count as tied.

    Example:
        >>> flat_order([0, 1], torch.zeros(2), torch.tensor([0.0, 0.01]), torch.tensor([5.0, 1.0]), 0.05)
        [1, 0]
    """
    flatness = torch.nan_to_num(curvature.double(), nan=float("inf"))
    remaining, out = list(order), []
    while remaining:
        head = remaining[0]
        group = [i for i in remaining if unmet[i] == unmet[head] and merit[i] <= merit[head] + tie]
        pick = min(group, key=lambda i: flatness[i].item())  # `min` keeps the first (best merit) of equals
        remaining.remove(pick)
        out.append(pick)
    return out


def _curvature(scorer: Scorer, space: SearchSpace, X: Tensor, order: list[int], n: int) -> Tensor:
    """`hessian_max_eig` of the plain objective (no uncertainty penalty) for the first `4 n` designs of
    `order` (near-ties beyond them cannot reach the top `n` often enough to pay for Hessians); NaN for the rest."""
    plain = replace(scorer, kappa=0.0)
    curvature = torch.full((X.shape[0],), float("nan"), dtype=torch.double)
    head = order[: 4 * n]
    curvature[head] = hessian_max_eig(plain, space, X[head])
    scorer.calls += plain.calls
    return curvature


def trust_ranking(goals: Sequence[Goal]) -> bool:
    """Whether the goals leave designs that meet them equally good (only targets and constraints)."""
    return any(g.kind == "target" for g in goals) and all(g.kind not in ("minimize", "maximize") for g in goals)


def _precise(scorer: Scorer, mean: Tensor) -> Tensor:
    """A `S` boolean tensor: every target met within `PRECISE_FRACTION` of its tolerance (predicted mean)."""
    ok = torch.ones(mean.shape[0], dtype=torch.bool)
    for g in scorer.goals:
        if g.kind == "target":
            assert g.value is not None and g.tolerance is not None  # every target has both (`as_goals`)
            miss = (mean[:, scorer.outcomes.index(g.name)] - g.value).abs()
            ok &= torch.as_tensor(miss <= PRECISE_FRACTION * g.tolerance)
    return ok


def data_distance(space: SearchSpace, X: Tensor, train_X: Tensor, k: int = _TRUST_NEIGHBOURS) -> Tensor:
    """Mean `design_distance` of each design to its `k` nearest training designs: `S` values."""
    train_X = train_X.double()
    k = min(k, train_X.shape[0])
    chunks = [design_distance(space, part, train_X).topk(k, largest=False).values.mean(-1) for part in X.split(1024)]
    return torch.cat(chunks) if chunks else X.new_zeros(0)


def design_distance(space: SearchSpace, A: Tensor, B: Tensor) -> Tensor:
    """`|A| x |B|` distances: Euclidean over the unit-cube coordinates, plus 1 per categorical
    mismatch and the fraction of differing letters per sequence, under one square root."""
    box = box_columns(space)
    d2 = torch.cdist(A[:, box], B[:, box]) ** 2 if box else torch.zeros(A.shape[0], B.shape[0], dtype=A.dtype)
    for i in space.cat_dims:
        d2 = d2 + (A[:, i, None].round() != B[None, :, i].round()).to(d2.dtype)
    for start, L, A_ in space.sequence_blocks:
        a, b = _letters(A, start, L, A_), _letters(B, start, L, A_)
        d2 = d2 + (a[:, None, :] != b[None, :, :]).to(d2.dtype).mean(-1)
    return d2.sqrt()


def describe(X: Tensor, scorer: Scorer, space: SearchSpace, opts: InverseOptions) -> pd.DataFrame:
    """The table of designs (see `inverse_design`), ranked as given."""
    designs_df = space.decode(X)
    plain = replace(scorer, kappa=0.0)
    with torch.no_grad():
        mean, sd = plain.predict(X)
        merit = scorer.merit(X)
    for j, name in enumerate(scorer.outcomes):
        designs_df[f"{name}_mean"] = mean[:, j].numpy()
        designs_df[f"{name}_sd"] = sd[:, j].numpy()
    all_met = np.ones(len(X), dtype=bool)
    for g in scorer.goals:
        met = np.asarray(g.met(mean[:, scorer.outcomes.index(g.name)].numpy()), dtype=bool)
        designs_df[f"met: {g.label}"] = met
        all_met &= met
    designs_df["all_met"] = all_met
    designs_df["objective"] = merit.numpy()
    designs_df["expected_objective"] = expected_objective(plain, space, X, opts.tolerance).numpy()
    designs_df["hessian_max_eig"] = hessian_max_eig(plain, space, X).numpy()
    if opts.train_X is not None:
        designs_df["distance_to_data"] = design_distance(space, X, opts.train_X.double()).min(-1).values.numpy()
    designs_df["rank"] = np.arange(1, len(X) + 1)
    scorer.calls += plain.calls
    return designs_df


def expected_objective(scorer: Scorer, space: SearchSpace, X: Tensor, tolerance: float) -> Tensor:
    """Mean objective (summed objective terms) of each design under `N(0, tolerance^2)` noise on its
    continuous coordinates (clamped to the box): `S` values, to compare with the nominal objective."""
    K, S = _SENSITIVITY_SAMPLES, X.shape[0]
    with torch.no_grad():
        objectives, _ = scorer.terms(_jittered(space, X, tolerance).reshape(K * S, -1))
    return objectives.sum(-1).reshape(K, S).mean(0)


def expected_merit(scorer: Scorer, space: SearchSpace, X: Tensor, tolerance: float) -> Tensor:
    """Mean merit (objective plus weighted violations, `Scorer.merit`) of each design under the
    noise of `expected_objective` (the same draws): `S` values."""
    K, S = _SENSITIVITY_SAMPLES, X.shape[0]
    with torch.no_grad():
        return scorer.merit(_jittered(space, X, tolerance).reshape(K * S, -1)).reshape(K, S).mean(0)


def _jittered(space: SearchSpace, X: Tensor, tolerance: float) -> Tensor:
    """`K x S x d`: `_SENSITIVITY_SAMPLES` copies of `X`, continuous coordinates jittered (seeded) and clamped."""
    box = box_columns(space)
    K, S = _SENSITIVITY_SAMPLES, X.shape[0]
    generator = torch.Generator().manual_seed(0)
    jitter = X.unsqueeze(0).repeat(K, 1, 1)
    jitter[..., box] = (
        jitter[..., box] + tolerance * torch.randn(K, S, len(box), generator=generator, dtype=X.dtype)
    ).clamp(0.0, 1.0)
    return jitter


def hessian_max_eig(scorer: Scorer, space: SearchSpace, X: Tensor, iterations: int = 30) -> Tensor:
    """Largest eigenvalue of the Hessian of the objective w.r.t. each design's continuous coordinates.

    A dense Hessian (`torch.autograd.functional.hessian`) up to 64 coordinates, power iteration on
    Hessian-vector products beyond. NaN for a design with no continuous coordinate.
    """
    box = box_columns(space)
    out = torch.full((X.shape[0],), float("nan"), dtype=torch.double)
    if not box:
        return out
    for s in range(X.shape[0]):
        base = X[s].detach()

        def objective(u: Tensor, base: Tensor = base) -> Tensor:
            x = base.clone()
            x[box] = u
            return scorer.terms(x[None])[0].sum()

        u0 = base[box].clone()
        try:
            if len(box) <= _DENSE_HESSIAN_MAX_DIM:
                H = torch.autograd.functional.hessian(objective, u0)
                out[s] = torch.linalg.eigvalsh(0.5 * (H + H.T)).max()
            else:
                out[s] = _power_iteration(objective, u0, iterations)
        except NotImplementedError:  # no second derivative (e.g. torch.cdist in a categorical kernel)
            H = _finite_difference_hessian(objective, u0)
            out[s] = torch.linalg.eigvalsh(0.5 * (H + H.T)).max()
    return out


def _finite_difference_hessian(objective: Callable[[Tensor], Tensor], u0: Tensor, step: float = 1e-4) -> Tensor:
    """Central differences of the autograd gradient, one coordinate at a time."""

    def gradient(u: Tensor) -> Tensor:
        u = u.detach().requires_grad_(True)
        return torch.autograd.grad(objective(u), u)[0]

    rows = []
    for i in range(u0.shape[0]):
        e = torch.zeros_like(u0)
        e[i] = step
        rows.append((gradient(u0 + e) - gradient(u0 - e)) / (2 * step))
    return torch.stack(rows)


def _power_iteration(objective: Callable[[Tensor], Tensor], u0: Tensor, iterations: int) -> Tensor:
    v = torch.randn(u0.shape, generator=torch.Generator().manual_seed(0), dtype=u0.dtype)
    v = v / v.norm()
    value = torch.tensor(0.0, dtype=u0.dtype)
    for _ in range(iterations):
        _, Hv = torch.autograd.functional.hvp(objective, u0, v)
        value = v @ Hv
        v = Hv / Hv.norm().clamp(min=1e-18)
    return value


def verify_designs(
    designs_df: pd.DataFrame,
    simulate: Callable[[pd.DataFrame, np.random.Generator | None], pd.DataFrame],
    goals: Sequence[str | Goal] | dict,
) -> pd.DataFrame:
    """Re-simulate designs (noise-free) and set the true outcomes beside the predicted ones.

    Args:
        designs_df: The table `inverse_design` returned (parameter columns and `<outcome>_mean`).
        simulate: A bundled system's simulator, `simulate(designs_df, rng)`.
        goals: The goals the designs were made for.

    Returns:
        `designs_df` with `<outcome>_true` and `<outcome>_error` (true minus predicted mean) per
        outcome the goals name, `true met: <goal>` per goal and `all_met_true`.
    """
    goal_list = as_goals(goals)
    true_df = simulate(designs_df, None)
    out = designs_df.copy()
    all_met = np.ones(len(out), dtype=bool)
    for name in dict.fromkeys(g.name for g in goal_list):
        out[f"{name}_true"] = true_df[name].to_numpy()
        if f"{name}_mean" in out:
            out[f"{name}_error"] = out[f"{name}_true"] - out[f"{name}_mean"]
    for g in goal_list:
        met = np.asarray(g.met(out[f"{g.name}_true"].to_numpy(dtype=float)), dtype=bool)
        out[f"true met: {g.label}"] = met
        all_met &= met
    out["all_met_true"] = all_met
    return out


def _letters(X: Tensor, start: int, L: int, A: int) -> Tensor:
    return X[:, start : start + L * A].reshape(-1, L, A).argmax(-1)


def _single_changes(space: SearchSpace, X: Tensor) -> Tensor | None:
    """Every single discrete change of every design: a `M x S x d` tensor (None if nothing is discrete)."""
    moves = []
    for i, levels in space.discrete_dims.items():
        step = 1.0 / (len(levels) - 1)
        for sign in (-1.0, 1.0):
            Y = X.clone()
            Y[:, i] = (Y[:, i] + sign * step).clamp(0.0, 1.0)
            moves.append(Y)
    for i, values in space.cat_dims.items():
        for v in values:
            Y = X.clone()
            Y[:, i] = v
            moves.append(Y)
    for start, L, A in space.sequence_blocks:
        for pos in range(L):
            for a in range(A):
                Y = X.clone()
                Y[:, start + pos * A : start + (pos + 1) * A] = 0.0
                Y[:, start + pos * A + a] = 1.0
                moves.append(Y)
    return torch.stack(moves) if moves else None
