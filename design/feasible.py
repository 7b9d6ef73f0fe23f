"""Acquisition wrappers and rules that keep proposals where they are likely to work and be safe."""

from __future__ import annotations

from collections.abc import Callable

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.models.model import Model
from torch import Tensor

from design.goals import SafetyLimit

BARRIER_SHARPNESS = 8.0  # per probit unit: P(safe) 0.90 vs 0.95 costs ~3 in log-acquisition


class FeasibilityWeighted(AcquisitionFunction):
    """A log-acquisition plus `log P(success)` of each design: failures that look likely cost value.

    Args:
        acqf: A log-scale acquisition function (qLogNEI, qLogNEHVI).
        p_success: Maps a `batch x q x d` tensor to `batch x q` probabilities of success.
    """

    def __init__(self, acqf: AcquisitionFunction, p_success: Callable[[Tensor], Tensor]):
        super().__init__(model=acqf.model)
        self.acqf = acqf
        self.p_success = p_success

    @property  # type: ignore[override]  # botorch infers `X_pending: Tensor`, but sets it to None too
    def X_pending(self) -> Tensor | None:
        return self.acqf.X_pending

    @X_pending.setter
    def X_pending(self, value: Tensor | None) -> None:
        pass  # the wrapped function owns the pending points

    def set_X_pending(self, X_pending: Tensor | None = None) -> None:
        self.acqf.set_X_pending(X_pending)

    def forward(self, X: Tensor) -> Tensor:
        return self.acqf(X) + self.p_success(X).clamp_min(1e-12).log().sum(dim=-1)


class ConfidenceBarrier(FeasibilityWeighted):
    """A log-acquisition plus a smooth barrier against designs below the required P(safe).

    The barrier is `logsigmoid(k * (probit(P(safe)) - probit(confidence)))` per design: nearly
    zero well inside the confident region, steeply negative outside, so the optimizer finds the
    best designs that will pass the confidence check instead of ones that must be replaced.
    """

    def __init__(self, acqf: AcquisitionFunction, p_safe: Callable[[Tensor], Tensor], confidence: float):
        super().__init__(acqf, p_safe)
        self.threshold = _probit(torch.tensor(confidence, dtype=torch.double))

    def forward(self, X: Tensor) -> Tensor:
        margin = _probit(self.p_success(X)) - self.threshold
        return self.acqf(X) + torch.nn.functional.logsigmoid(BARRIER_SHARPNESS * margin).sum(dim=-1)


def least_violation_samples(
    model: Model, X_pool: Tensor, safety: list[SafetyLimit], outcomes: list[str], n: int, seed: int = 0
) -> list[int]:
    """Thompson sampling of the pool row with the least total safety violation, `n` times.

    For when nothing measured is safe yet (as in SCBO, Eriksson & Poloczek 2021): each pick is
    the argmin of `sum(max(violation, 0))` under one joint posterior sample, so the picks
    differ where the model is unsure and agree where it is sure.
    """
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(seed)
        samples = model.posterior(X_pool).rsample(torch.Size([4 * n]))  # `4n x pool x m`
    violation = torch.zeros(samples.shape[:-1], dtype=samples.dtype)
    for limit in safety:
        y = samples[..., outcomes.index(limit.name)]
        if limit.upper is not None:
            violation += (y - limit.upper).clamp_min(0) / max(abs(limit.upper), 1e-9)
        if limit.lower is not None:
            violation += (limit.lower - y).clamp_min(0) / max(abs(limit.lower), 1e-9)
    picks: list[int] = []
    for row in violation:  # extra samples replace picks that repeat
        best = int(row.argmin())
        if best not in picks:
            picks.append(best)
        if len(picks) == n:
            break
    return picks


def _probit(p: Tensor) -> Tensor:
    return torch.special.ndtri(p.clamp(1e-9, 1 - 1e-9))
