"""Batches that do not stake several experiments on one error of the safety model.

A GP's errors at two designs are correlated as its posterior says. Designs that sit close to
a safety limit and whose safety outcomes are strongly correlated share one bet: if the model
is wrong there, it is wrong at all of them, and they break the limit together. In `valley demo`
(seed 0, round 5) the optimizer put four designs at P(safe) 0.985-0.99 on the same stretch of
the complement limit, with posterior correlations 0.54-0.96; the model underestimated the
complement there by two of its standard deviations, and three of the four broke the limit.

The rule here: among a batch's designs *near a limit* (P(safe) below `NEAR_LIMIT`), no two
may have a posterior correlation above `MAX_CORRELATION` on any safety outcome. Designs well
inside the safe region are exempt, and so are models without a joint posterior over designs
(the neural ensemble's Gaussian has no cross-design covariance): there the rule never binds.
"""

from __future__ import annotations

import torch
from torch import Tensor

from design.bo import probability_safe
from design.goals import SafetyLimit

NEAR_LIMIT = 0.999  # P(safe) below this: the design's safety depends on the model being right there
MAX_CORRELATION = 0.5  # most posterior correlation of a safety outcome between two such designs in a batch
CHUNK = 256  # candidates whose correlations are computed at once


def safety_correlation(model, A: Tensor, B: Tensor, limits: list[SafetyLimit], outcomes: list[str]) -> Tensor:  # noqa: ANN001
    """`len(B) x len(A)`: the largest posterior correlation over the safety outcomes between rows of B and of A."""
    if A.shape[0] == 0 or B.shape[0] == 0:
        return torch.zeros(B.shape[0], A.shape[0], dtype=A.dtype)
    limited = list(dict.fromkeys(outcomes.index(limit.name) for limit in limits))
    worst = torch.full((B.shape[0], A.shape[0]), -1.0, dtype=A.dtype)
    with torch.no_grad():
        for rows in torch.arange(B.shape[0]).split(CHUNK):  # bounded memory with thousands of training rows
            pairs = torch.cat([A.expand(len(rows), *A.shape), B[rows].unsqueeze(1)], dim=1)  # chunk x (|A| + 1) x d
            for j in limited:
                cov = model.posterior(pairs, output_indices=[j]).distribution.covariance_matrix
                sd = cov.diagonal(dim1=-2, dim2=-1).clamp_min(1e-24).sqrt()
                worst[rows] = torch.maximum(worst[rows], cov[:, -1, :-1] / (sd[:, -1:] * sd[:, :-1]))
    return worst


def spread_mask(model, X: Tensor, limits: list[SafetyLimit], outcomes: list[str]) -> Tensor:  # noqa: ANN001
    """Which rows of `X`, taken in order, the rule keeps: each one `spread_admissible` beside those kept before."""
    mask = torch.ones(X.shape[0], dtype=torch.bool)
    if not limits:
        return mask
    for i in range(X.shape[0]):
        mask[i] = bool(spread_admissible(model, X[i : i + 1], X[:i][mask[:i]], limits, outcomes)[0])
    return mask


def spread_admissible(
    model,  # noqa: ANN001
    candidates: Tensor,
    batch: Tensor,
    limits: list[SafetyLimit],
    outcomes: list[str],
) -> Tensor:
    """Which `candidates` could join `batch` under the rule (each on its own; a boolean tensor)."""
    ok = torch.ones(candidates.shape[0], dtype=torch.bool)
    if not limits or candidates.shape[0] == 0 or batch.shape[0] == 0:
        return ok
    near_batch = batch[probability_safe(model, batch, limits, outcomes) < NEAR_LIMIT]
    near = probability_safe(model, candidates, limits, outcomes) < NEAR_LIMIT
    if near_batch.shape[0] == 0 or not bool(near.any()):
        return ok
    corr = safety_correlation(model, near_batch, candidates[near], limits, outcomes)
    ok[near] = (corr <= MAX_CORRELATION).all(dim=-1)
    return ok
