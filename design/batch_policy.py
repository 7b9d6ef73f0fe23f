"""The batch policy of a safety-constrained proposal: which designs go into the next batch, and why.

`choose_batch` turns a fitted model and an acquisition function into a batch of `n` designs
under a `SafetyRule` (the limits, the confidence, the mode). Whether a design "meets the
confidence" is decided by `meets_confidence` and nowhere else: the batch, the proposal table's
`meets_confidence` column and the optimizer's discard all use it.

The policy, in order:

1. nothing measured is safe yet: the designs least likely to violate a limit under samples of
   the model (SCBO's least violation), flagged `find-safe`;
2. `safe_set` mode: half the batch to the strongest expanders of the safe set, the rest by
   acquisition among its maximizers (`design.safe_set`);
3. a candidate pool: the best candidates by acquisition among those meeting the confidence and
   not measured or pending already (ranked without the confidence barrier of step 4, which
   would pass over the confident rows nearest a limit, where the best safe rows often are);
4. else the batch optimizer (`design.bo.optimize_batch`) under the confidence barrier; optimized
   designs that fall short, repeat another, or stake on the same model error as an earlier design
   of the batch near a limit (`design.batch_spread`, unless `SafetyRule.spread` is off) are
   replaced by the best confident candidates left that do not;
5. with `SafetyRule.explore = k` (`probabilistic` mode), `k` designs of the batch (at most `n - 1`)
   are chosen after the others by the plain acquisition held only to P(safe) >= `EXPLORE_FLOOR`,
   flagged `explore` (`_explore`);
6. short of `n`, the designs most likely safe top the batch up, flagged `closest-to-safe`.

A candidate pool is a lab's list, passed whole every round: on every path its rows measured or
pending are no choice (with none left, the batch is empty and a note says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Literal, TypeVar

import numpy as np
import torch
from torch import Tensor

from design.batch_spread import MAX_CORRELATION, spread_admissible, spread_mask
from design.bo import (
    candidate_pool,
    choose_from_pool,
    make_acquisition,
    optimize_batch,
    probability_safe,
    space_filling,
    spread_rows,
)
from design.feasible import ConfidenceBarrier, FeasibilityWeighted, least_violation_samples
from design.goals import Objective, SafetyLimit
from design.safe_set import reach_per_input, safe_set, small_steps
from design.space import SearchSpace

Probabilities = TypeVar("Probabilities", Tensor, np.ndarray)
SHORTLIST = 32  # spread top-up: the best admitted rows scored again for each later pick
SCORE_CHUNK = 256  # rows scored by the acquisition at once (bounded memory with thousands of training rows)
EXPLORE_FLOOR = 0.5  # an exploring design is more likely safe than not (`SafetyRule.explore`)


def meets_confidence(p_safe: Probabilities, confidence: float) -> Probabilities:
    """Whether each P(safe) reaches `confidence` (NaN, an unknown P(safe), does not)."""
    return p_safe >= confidence


@dataclass(frozen=True)
class SafetyRule:
    """What every proposed design must satisfy: `limits` hold with P >= `confidence`, judged by `mode`.

    Example:
        >>> rule = SafetyRule([SafetyLimit(name="stress", upper=1.0)], confidence=0.95)
        >>> ok = rule.meets(model, X, outcomes)   # all True when there are no limits
    """

    limits: list[SafetyLimit] = field(default_factory=list)
    confidence: float = 0.95
    mode: Literal["probabilistic", "safe_set"] = "probabilistic"
    expander: Literal["goose", "ise"] = "goose"  # `safe_set` mode: how expanders are ranked (`design.safe_set`)
    spread: bool = True  # `probabilistic` mode: spread the batch's designs near a limit (`design.batch_spread`)
    explore: int = 0  # `probabilistic` mode: designs per batch held to `EXPLORE_FLOOR` only (`_explore`)

    def __bool__(self) -> bool:
        return bool(self.limits)

    def p_safe(self, model, X: Tensor, outcomes: list[str]) -> Tensor:  # noqa: ANN001
        """P(every limit holds) at each row of `X`."""
        return probability_safe(model, X, self.limits, outcomes)

    def meets(self, model, X: Tensor, outcomes: list[str]) -> Tensor:  # noqa: ANN001
        """`meets_confidence` at each row of `X`; True everywhere without limits."""
        if not self.limits or X.shape[0] == 0:
            return torch.ones(X.shape[0], dtype=torch.bool)
        return meets_confidence(self.p_safe(model, X, outcomes), self.confidence)


@dataclass
class Batch:
    """Designs (encoded) and the role each plays: optimize, expand, maximize, explore, find-safe, closest-to-safe."""

    X: Tensor
    roles: list[str]


@dataclass
class BatchRequest:
    """Everything `choose_batch` needs besides the model.

    Attributes:
        space: The search space.
        objectives, outcomes: The goals and the model's output names in order.
        rule: The safety rule.
        X, Y: The measured designs and outcomes (on the scale of `rule.limits`; NaN: failed).
        X_safe: The measured designs that met every limit.
        X_pending: Designs proposed and not yet measured (None: none).
        X_pool: A candidate pool to choose from (None: optimize over the space).
        effort: `(restarts, raw_samples)` of the optimizer.
        mc_samples: Monte Carlo samples of the acquisition function.
        feasibility: `P(a run succeeds)` as a function of `X`, once runs have failed.
    """

    space: SearchSpace
    objectives: Sequence[Objective]
    outcomes: list[str]
    rule: SafetyRule
    X: Tensor
    Y: Tensor
    X_safe: Tensor
    X_pending: Tensor | None = None
    X_pool: Tensor | None = None
    effort: tuple[int, int] = (8, 256)
    mc_samples: int = 128
    feasibility: object | None = None


def choose_batch(model, req: BatchRequest, n: int, seed: int, notes: list[str]) -> Batch:  # noqa: ANN001
    """The next `n` designs (the module docstring's policy); what happened, in `notes`."""
    space, rule, outcomes, X = req.space, req.rule, req.outcomes, req.X
    complete = ~torch.isnan(req.Y).any(dim=-1)
    acqf = make_acquisition(
        model, X[complete], list(req.objectives), rule.limits, outcomes, req.X_pending, seed, req.mc_samples
    )
    if req.feasibility is not None:
        acqf = FeasibilityWeighted(acqf, req.feasibility.probability)  # type: ignore[attr-defined]
    X_safe = req.X_safe
    taken = X if req.X_pending is None else torch.cat([X, req.X_pending])  # never propose these again

    @cache
    def pool() -> Tensor:  # built only on the paths that need it: with an equality it takes seconds
        if req.X_pool is not None:  # a lab's list, passed whole each round: measured and pending rows are no choice
            return req.X_pool[~matches_any(req.X_pool, taken)]
        return candidate_pool(space, X_safe if len(X_safe) else X, seed=seed)

    def confident_pool() -> Tensor:
        return pool()[rule.meets(model, pool(), outcomes)]

    plain = acqf  # ranks a pool's rows, which the rule filters itself (module docstring, step 3)
    if rule:
        acqf = ConfidenceBarrier(acqf, model, rule.limits, outcomes, rule.confidence)

    if req.X_pool is not None and pool().shape[0] == 0:
        notes.append("every row of the candidates is measured or pending: nothing is left to propose. Add rows.")
        return Batch(req.X_pool[:0], [])
    if rule and len(X_safe) == 0:
        picks = least_violation_samples(model, pool(), rule.limits, outcomes, n, seed)
        notes.append(
            "nothing measured so far is safe: these are the designs most likely to be safe under samples "
            "of the model (least violation, as in SCBO). They are NOT known to be safe: see `meets_confidence`."
        )
        return Batch(pool()[picks], ["find-safe"] * len(picks))
    explore = min(rule.explore, n - 1) if rule and rule.mode == "probabilistic" else 0
    held = n - explore  # designs held to the confidence, chosen first
    if rule and rule.mode == "safe_set":
        batch = _safe_set_batch(model, req, acqf, pool(), held)
    elif req.X_pool is not None:
        eligible = confident_pool()
        batch = Batch(eligible[choose_from_pool(plain, eligible, held)], ["optimize"] * min(held, len(eligible)))
    else:
        X_new = optimize_batch(acqf, space, held, seed, *req.effort, exclude=taken)
        keep = rule.meets(model, X_new, outcomes) & first_of_duplicates(X_new)
        if not keep.all():
            why = f"fell below P(safe) >= {rule.confidence:g} or repeated another" if rule else "repeated"
            notes.append(f"{int((~keep).sum())} optimized design(s) {why}; replaced by the best candidates left.")
        spread = keep.clone()
        spread[keep] = spread_mask(model, X_new[keep], rule.limits if rule.spread else [], outcomes)
        if not spread.eq(keep).all():
            notes.append(
                f"{int((keep & ~spread).sum())} optimized design(s) sat near a safety limit, strongly correlated with "
                f"another design of the batch (posterior correlation above {MAX_CORRELATION:g}): one model error there "
                "would break both, so they were replaced by the best candidates left elsewhere."
            )
        batch = Batch(X_new[spread], ["optimize"] * int(spread.sum()))
        if not spread.all():
            batch = _top_up(
                acqf,
                batch,
                confident_pool(),
                held,
                "optimize",
                (model, rule.limits, outcomes) if rule and rule.spread else None,
            )
    if explore:
        batch = _explore(
            model, req, plain, batch, explore, seed, taken, pool() if req.X_pool is not None else None, notes
        )
    if len(batch.roles) < n and rule.mode == "safe_set" and len(batch.roles) > 0:
        notes.append(
            f"only {len(batch.roles)} design(s) could be vouched for by the safe set; a smaller batch is "
            "proposed. Measure these and ask again: the safe set grows with every safe measurement."
        )
    elif len(batch.roles) < n and rule and rule.mode == "safe_set":
        steps = pool() if req.X_pool is not None else _small_steps(model, req, seed)  # a pool's rows only
        batch = _closest_to_safe(model, req, steps, batch, n, notes)
    elif len(batch.roles) < n and rule:
        batch = _closest_to_safe(model, req, pool(), batch, n, notes)
    if len(batch.roles) < n:
        notes.append(f"only {len(batch.roles)} distinct design(s) could be proposed.")
    return batch


def _explore(
    model,
    req: BatchRequest,
    acqf,
    batch: Batch,
    k: int,
    seed: int,
    taken: Tensor,
    pool: Tensor | None,
    notes: list[str],
) -> Batch:  # noqa: ANN001
    """`k` more designs, the batch so far pending, held to P(safe) >= `EXPLORE_FLOOR` instead of the confidence.

    `acqf` is the plain acquisition (qLogNEI with the limits as outcome constraints), which weighs
    each design's improvement by its probability of being safe, as plain BoTorch and Ax do; the
    floor keeps it from chasing large improvements deep in regions the model believes unsafe,
    whose far-off measurements teach the safety models little about where a limit lies.
    """
    base = acqf.X_pending
    acqf.set_X_pending(batch.X if base is None else torch.cat([base, batch.X]))
    known = torch.cat([taken, batch.X])
    try:
        if pool is not None:
            fresh = pool[~matches_any(pool, known)]
            fresh = fresh[meets_confidence(req.rule.p_safe(model, fresh, req.outcomes), EXPLORE_FLOOR)]
            X_new = fresh[choose_from_pool(acqf, fresh, k)]
        else:
            floor = ConfidenceBarrier(acqf, model, req.rule.limits, req.outcomes, EXPLORE_FLOOR)
            X_new = optimize_batch(floor, req.space, k, seed, *req.effort, exclude=known)
            above_floor = meets_confidence(req.rule.p_safe(model, X_new, req.outcomes), EXPLORE_FLOOR)
            X_new = X_new[~matches_any(X_new, known) & first_of_duplicates(X_new) & above_floor]
    finally:
        acqf.set_X_pending(base)
    short = int((~req.rule.meets(model, X_new, req.outcomes)).sum())
    notes.append(
        f"{X_new.shape[0]} design(s) explore: held to P(safe) >= {EXPLORE_FLOOR:g} instead of the confidence, to learn "
        f"where a limit lies; {short} of them fall short of the confidence and are NOT known to be safe: see `role`, "
        "`p_safe` and `meets_confidence`."
    )
    return Batch(torch.cat([batch.X, X_new]), batch.roles + ["explore"] * X_new.shape[0])


def spread_batch(space: SearchSpace, n: int, X_existing: Tensor, X_pool: Tensor | None, seed: int) -> Batch:
    """`n` space-filling designs (or pool rows) away from `X_existing`: the batch without a model."""
    if X_pool is None:
        X_new = space_filling(space, n, X_existing, seed)
    else:
        X_new = X_pool[spread_rows(X_pool, n, X_existing, space.cat_dims)]
    return Batch(X_new, ["space-filling"] * X_new.shape[0])


def _safe_set_batch(model, req: BatchRequest, acqf, pool: Tensor, n: int) -> Batch:  # noqa: ANN001
    """Half the batch (rounded down) to the strongest expanders, the rest by acquisition among maximizers."""
    objective = req.objectives[0] if len(req.objectives) == 1 else None
    space = req.space
    sets = safe_set(
        model,
        pool,
        objective,
        req.rule.limits,
        req.outcomes,
        req.rule.confidence,
        req.X_safe,
        space.cat_dims,
        space.discrete_dims,
        req.rule.expander,
    )
    order = torch.argsort(sets.expansion, descending=True).tolist()
    expanders = [i for i in order if sets.expansion[i] > 0][: n // 2]
    batch = Batch(pool[expanders], ["expand"] * len(expanders))
    taken = torch.zeros(pool.shape[0], dtype=torch.bool)
    taken[expanders] = True
    batch = _top_up(acqf, batch, pool[sets.maximizers & ~taken], n, "maximize")
    return _top_up(acqf, batch, pool[sets.safe & ~taken], n, "maximize")


def _small_steps(model, req: BatchRequest, seed: int) -> Tensor:  # noqa: ANN001
    """Feasible designs a small step from those measured safe (`design.safe_set.small_steps`)."""
    space, X_safe = req.space, req.X_safe
    if space.botorch_constraints()[1]:  # a step would leave an equality's surface: the pool's own designs
        return candidate_pool(space, X_safe, seed=seed)
    limited = [req.outcomes.index(limit.name) for limit in req.rule.limits]
    reach = reach_per_input(model, limited, X_safe.shape[-1], space.discrete_dims)
    steps = space.snap(small_steps(X_safe, reach, space.cat_dims, seed=seed).clamp(0.0, 1.0))
    feasible = torch.as_tensor(space.feasible(space.decode(steps)))
    return steps[feasible] if feasible.any() else candidate_pool(space, X_safe, seed=seed)


def _top_up(acqf, batch: Batch, eligible: Tensor, n: int, role: str, spread: tuple | None = None) -> Batch:  # noqa: ANN001
    """Add the best rows of `eligible` (by acquisition, the batch so far pending) up to `n`.

    With `spread = (model, limits, outcomes)` the rows are added one at a time, each the best
    among those the spread rule admits beside the batch so far (`design.batch_spread`): the
    acquisition of every row is computed once, and for each later pick only the `SHORTLIST` best
    admitted rows are scored again with the picks so far pending.
    """
    need = n - len(batch.roles)
    if need <= 0 or eligible.shape[0] == 0:
        return batch
    if spread is not None:
        fresh = eligible[~matches_any(eligible, batch.X)]
        order = torch.argsort(_pending_scores(acqf, fresh, batch.X), descending=True)
        for _ in range(need):
            ranked = fresh[order]
            admitted = order[spread_admissible(spread[0], ranked, batch.X, spread[1], spread[2])][:SHORTLIST]
            if admitted.shape[0] == 0:
                break
            best = admitted[_pending_scores(acqf, fresh[admitted], batch.X).argmax()]
            batch = Batch(torch.cat([batch.X, fresh[best].unsqueeze(0)]), batch.roles + [role])
            order = order[order != best]
        return batch
    fresh = eligible[~matches_any(eligible, batch.X)]
    base = acqf.X_pending
    acqf.set_X_pending(batch.X if base is None else torch.cat([base, batch.X]))
    try:
        picks = choose_from_pool(acqf, fresh, need)
    finally:
        acqf.set_X_pending(base)
    return Batch(torch.cat([batch.X, fresh[picks]]), batch.roles + [role] * len(picks))


def _pending_scores(acqf, X: Tensor, pending: Tensor) -> Tensor:  # noqa: ANN001
    """The acquisition of each row of `X` on its own, with `pending` (and what was pending before) as pending."""
    base = acqf.X_pending
    acqf.set_X_pending(pending if base is None else torch.cat([base, pending]))
    try:
        with torch.no_grad():
            return torch.cat([acqf(chunk.unsqueeze(1)) for chunk in X.split(SCORE_CHUNK)])
    finally:
        acqf.set_X_pending(base)


def _closest_to_safe(model, req: BatchRequest, pool: Tensor, batch: Batch, n: int, notes: list[str]) -> Batch:  # noqa: ANN001
    """Top the batch up with the designs of `pool` most likely safe, spread among the `4 n` best."""
    rule = req.rule
    fresh = pool[~matches_any(pool, batch.X)]
    p = rule.p_safe(model, fresh, req.outcomes)
    need = n - len(batch.roles)
    top = torch.argsort(p, descending=True)[: 4 * n]
    picks = top[spread_rows(fresh[top], need, batch.X, {})]
    if rule.mode == "safe_set":
        short, where = (
            "is in the safe set",
            "of the candidates" if req.X_pool is not None else "a small step from designs measured safe",
        )
    else:
        short, where = f"reaches P(safe) >= {rule.confidence:g}", "near the measured ones"
    notes.append(
        f"not enough designs {short} yet; {len(picks)} design(s) with the highest P(safe) (best "
        f"{float(p[top[0]]):.2f}) {where} are proposed. They are NOT known to be safe: see `meets_confidence` "
        "and `p_safe`."
    )
    return Batch(torch.cat([batch.X, fresh[picks]]), batch.roles + ["closest-to-safe"] * len(picks))


def matches_any(A: Tensor, B: Tensor) -> Tensor:
    """Rows of `A` equal (to 1e-9) to some row of `B`."""
    if B.shape[0] == 0:
        return torch.zeros(A.shape[0], dtype=torch.bool)
    # cdist's matrix-product shortcut (past 25 rows) puts equal rows ~1e-8 apart: a lab's list came back measured
    return (torch.cdist(A, B, compute_mode="donot_use_mm_for_euclid_dist") < 1e-9).any(dim=1)


def first_of_duplicates(X: Tensor) -> Tensor:
    """False for each row equal to an earlier one."""
    close = torch.cdist(X, X) < 1e-9
    return ~torch.tril(close, diagonal=-1).any(dim=1)
