"""Outcomes on a scale that suits them: safety limits on a bilog scale, wide positive objectives on a log scale.

Engineering constraints often span orders of magnitude (a stress ratio of -0.1 beside one of
+18), and a GP fitted to such values learns a huge amplitude and cannot tell the designs near
the limit apart. SCBO (D. Eriksson and M. Poloczek, "Scalable constrained Bayesian
optimization", AISTATS 2021) models `bilog(y) = sign(y) log(1 + |y|)` instead, which keeps the
sign, stretches the region around zero and damps large values. We centre it on the limit: an
outcome with `y <= upper` is modelled as `bilog(y - upper)`, one with `y >= lower` as
`bilog(lower - y)`, so that "safe" is "at most 0" on the model's scale and P(safe) is exact.

Only one-sided limits are warped, on outcomes that are not also objectives and have no known
noise level (that is given in the outcome's units).

Objectives to minimize or maximize whose measurements are all positive and span a factor of
`LOG_RATIO` or more (a cost from 2,500 to 700,000, an activation from 0.002 to 2) are modelled
as `log(y)`: products of factors become sums, multiplicative noise becomes even, and the GP can
tell 6,000 from 9,000 beside a 700,000. The log is monotone, so the best design is the same on
either scale; the acquisition compares improvements as ratios. `log: true` in the objective
asks for it whatever the span, `log: false` never. An objective that is also limited, has a
known noise level, a `target` or a hypervolume `reference` at or below 0 keeps its units, and so
does any outcome named in `keep` (one that prior knowledge, stated in its units, speaks about).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor

from design.goals import Objective, SafetyLimit

Array = TypeVar("Array", np.ndarray, Tensor)
LOG_RATIO = 10.0  # an objective is modelled as log(y) when its positive measurements span this factor


def bilog(y: Tensor) -> Tensor:
    """`sign(y) * log(1 + |y|)`."""
    return torch.sign(y) * torch.log1p(y.abs())


def bilog_inverse(z: Tensor) -> Tensor:
    """The inverse of `bilog`: `sign(z) * (exp(|z|) - 1)`."""
    return torch.sign(z) * torch.expm1(z.abs())


@dataclass(frozen=True)
class OutcomeWarp:
    """Which outcomes are modelled on a bilog or log scale, and the maps to and from it.

    Example:
        >>> warp = OutcomeWarp.of(objectives, safety, Y, outcomes)
        >>> Y_model = warp.apply(Y, outcomes)          # fit the GPs to this
        >>> limits = warp.model_limits(safety)         # judge safety with these
        >>> goals = warp.model_objectives(objectives)  # and score with these
    """

    limits: tuple[SafetyLimit, ...] = ()
    logged: tuple[str, ...] = ()  # objectives modelled as log(y)

    @classmethod
    def of(
        cls,
        objectives: Sequence[Objective],
        safety: Sequence[SafetyLimit],
        Y: Tensor | None = None,
        outcomes: Sequence[str] = (),
        keep: Collection[str] = (),
    ) -> OutcomeWarp:
        """Warp every one-sided limit whose outcome is limited once, is no objective and has no known noise.

        With the measurements `Y` (columns in `outcomes` order), also log every objective that
        `logs` (see the module docstring). Outcomes named in `keep` stay in their units.
        """
        names = [limit.name for limit in safety]
        objective_names = {o.name for o in objectives}
        logged = (
            ()
            if Y is None
            else tuple(
                o.name for o in objectives if o.name not in keep and logs(o, Y[:, list(outcomes).index(o.name)], names)
            )
        )
        warped = [
            limit
            for limit in safety
            if (limit.lower is None) != (limit.upper is None)
            and names.count(limit.name) == 1
            and limit.name not in objective_names
            and limit.name not in keep
            and limit.noise_sd is None
        ]
        return cls(tuple(warped), logged)

    def model_limits(self, safety: Sequence[SafetyLimit]) -> list[SafetyLimit]:
        """`safety` on the model's scale: each warped limit becomes `upper = 0`."""
        warped = {limit.name for limit in self.limits}
        return [SafetyLimit(name=s.name, upper=0.0, confidence=s.confidence) if s.name in warped else s for s in safety]

    def model_objectives(self, objectives: Sequence[Objective]) -> list[Objective]:
        """`objectives` on the model's scale: a logged objective's `reference` becomes its log."""
        return [
            o.model_copy(update={"reference": float(np.log(o.reference))})
            if o.name in self.logged and o.reference is not None
            else o
            for o in objectives
        ]

    def log_notes(self, objectives: Sequence[Objective], Y: Tensor, outcomes: Sequence[str]) -> list[str]:
        """One line per logged objective (its measured range), and per `log: true` that could not apply."""
        notes = []
        for o in objectives:
            y = Y[:, outcomes.index(o.name)]
            y = y[~torch.isnan(y)]
            if o.name in self.logged:
                span = f"measured from {float(y.min()):.3g} to {float(y.max()):.3g}"
                notes.append(f"{o.name!r} is modelled as log({o.name}) ({span}); `log: false` on it stops it.")
            elif o.log and not bool((y > 0).all()):
                notes.append(f"{o.name!r} is modelled in its units: `log: true` needs every measurement above 0.")
        return notes

    def scale_of(self, name: str) -> str:
        """How `name` is modelled, in words a report can show: `log(y)`, `bilog(y - 1.5)` or `y`."""
        for limit in self.limits:
            if limit.name == name:
                return (
                    f"bilog({name} - {limit.upper:g})"
                    if limit.upper is not None
                    else f"bilog({limit.lower:g} - {name})"
                )
        return f"log({name})" if name in self.logged else name

    def apply(self, Y: Tensor, outcomes: list[str]) -> Tensor:
        """The `n x m` outcomes (columns in `outcomes` order) on the model's scale."""
        Y = Y.clone()
        for limit in self.limits:
            j = outcomes.index(limit.name)
            bound, sign = _centre(limit)
            Y[:, j] = bilog(sign * (Y[:, j] - bound))
        for name in self.logged:
            j = outcomes.index(name)
            Y[:, j] = torch.log(Y[:, j])
        return Y

    def invert(self, mean: Array, sd: Array, outcomes: Sequence[str]) -> tuple[Array, Array]:
        """Predictive means and sds (`... x m`, numpy or torch) back in the outcomes' units.

        A bilog outcome's mean maps to the median of the prediction (the map is monotone), its sd
        by the delta method, `sd * exp(|mean|)`, the map's slope at the mean. A logged outcome is
        log-normal, with mean `exp(mu + s^2 / 2)` and sd `mean * sqrt(exp(s^2) - 1)`. Tensors
        keep their gradients.
        """
        if isinstance(mean, np.ndarray):
            back = self.invert(torch.as_tensor(mean), torch.as_tensor(sd), outcomes)
            return back[0].numpy(), back[1].numpy()
        columns_mean, columns_sd = list(mean.unbind(-1)), list(sd.unbind(-1))
        for limit in self.limits:
            j = list(outcomes).index(limit.name)
            z = columns_mean[j]
            bound, sign = _centre(limit)
            columns_mean[j] = bound + sign * bilog_inverse(z)
            columns_sd[j] = columns_sd[j] * torch.exp(z.abs())
        for name in self.logged:
            j = list(outcomes).index(name)
            mu, s2 = columns_mean[j], columns_sd[j] ** 2
            columns_mean[j] = torch.exp(mu + s2 / 2)
            columns_sd[j] = columns_mean[j] * torch.sqrt(torch.expm1(s2))
        return torch.stack(columns_mean, dim=-1), torch.stack(columns_sd, dim=-1)


def _centre(limit: SafetyLimit) -> tuple[float, float]:
    """`(bound, sign)` of a one-sided limit: it is modelled as `bilog(sign * (y - bound))`, safe at or below 0."""
    if limit.upper is not None:
        return limit.upper, 1.0
    assert limit.lower is not None  # a warped limit is one-sided (`OutcomeWarp.of`)
    return limit.lower, -1.0


def logs(objective: Objective, y: Tensor, limited: list[str]) -> bool:
    """Whether `objective`, measured as `y` (NaN: missing), is modelled as `log(y)` (module docstring)."""
    y = y[~torch.isnan(y)]
    if objective.goal == "target" or objective.name in limited or objective.noise_sd is not None:
        return False
    if objective.reference is not None and objective.reference <= 0:  # a hypervolume reference with no log
        return False
    if len(y) == 0 or not bool((y > 0).all()) or objective.log is False:
        return False
    return objective.log is True or float(y.max() / y.min()) >= LOG_RATIO
