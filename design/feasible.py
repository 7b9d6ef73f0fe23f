"""Acquisition wrappers and rules that keep proposals where they are likely to work and be safe."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.models.model import Model
from torch import Tensor

from design.bo import probability_safe_grad
from design.goals import SafetyLimit, probability_within_limits
from surrogates.protocol import Surrogate

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

    @property
    def X_baseline(self) -> Tensor:
        """The wrapped function's baseline (botorch's `sample_around_best` starts near its best rows)."""
        return cast(Tensor, self.acqf.X_baseline)  # AttributeError where it has none, as botorch expects

    @property
    def objective(self):  # noqa: ANN201 - the wrapped function's botorch objective
        return self.acqf.objective

    def forward(self, X: Tensor) -> Tensor:
        return self.acqf(X) + self.p_success(X).clamp_min(1e-12).log().sum(dim=-1)


class ConfidenceBarrier(FeasibilityWeighted):
    """A log-acquisition plus a smooth barrier against designs below the required P(safe).

    The barrier is `logsigmoid(k * (probit(P(safe)) - probit(confidence)))` per design: nearly
    zero well inside the confident region, steeply negative outside, so the optimizer finds the
    best designs that will pass the confidence check instead of ones that must be replaced.

    P(safe) is read from the posterior the acquisition function itself computed: qLogNEI asks
    the model for the joint posterior of its baseline and `X`, whose marginals at `X` are the
    ones P(safe) needs. That saves a second posterior per evaluation, a quarter of the
    optimizer's time on the nanoparticle config. Where the acquisition asked for nothing that
    ends in `X` (qLogNEHVI, a pool scorer), the safety models are asked separately.
    """

    def __init__(
        self,
        acqf: AcquisitionFunction,
        model: Surrogate,
        safety: list[SafetyLimit],
        outcomes: list[str],
        confidence: float,
    ):
        super().__init__(acqf, lambda X: probability_safe_grad(model, X, safety, outcomes))
        self.surrogate, self.safety, self.outcomes = model, safety, outcomes
        self.threshold = _probit(torch.tensor(confidence, dtype=torch.double))

    def forward(self, X: Tensor) -> Tensor:
        with _recorded_posteriors(self.surrogate) as asked:
            value = self.acqf(X)
        p_safe = self._p_safe_from(asked, X)
        if p_safe is None:
            p_safe = self.p_success(X)
        margin = _probit(p_safe) - self.threshold
        return value + torch.nn.functional.logsigmoid(BARRIER_SHARPNESS * margin).sum(dim=-1)

    def _p_safe_from(self, asked: list[tuple[Tensor, dict, Any]], X: Tensor) -> Tensor | None:
        """P(safe) at `X` (`batch x q`) from a recorded posterior over `[..., X]`, all outcomes; None if none."""
        q = X.shape[-2]
        for X_full, kwargs, posterior in asked:
            whole = not kwargs.get("output_indices") and kwargs.get("posterior_transform") is None
            ends_in_X = X_full.shape[:-2] == X.shape[:-2] and X_full.shape[-2] >= q
            if whole and ends_in_X and torch.equal(X_full[..., -q:, :], X):
                mean, variance = posterior.mean[..., -q:, :], posterior.variance[..., -q:, :]
                return probability_within_limits(mean, variance, self.safety, self.outcomes)
        return None


@contextmanager
def _recorded_posteriors(model: Surrogate) -> Iterator[list[tuple[Tensor, dict, Any]]]:
    """Within the block, every `model.posterior(X, **kwargs)` call is also listed as `(X, kwargs, posterior)`."""
    asked: list[tuple[Tensor, dict, Any]] = []
    posterior = model.posterior
    own = vars(model).get("posterior")  # an instance attribute (a wrapper of someone else's) is put back

    def recording(X: Tensor, *args, **kwargs) -> Any:  # a botorch `Posterior` with `mean` and `variance`
        result = posterior(X, *args, **kwargs)
        if not args:
            asked.append((X, kwargs, result))
        return result

    model.posterior = recording  # type: ignore[method-assign]
    try:
        yield asked
    finally:
        if own is None:
            del model.posterior
        else:
            model.posterior = own  # type: ignore[method-assign]


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
