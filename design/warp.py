"""Safety outcomes modelled on a bilog scale around their limit, as in SCBO.

Engineering constraints often span orders of magnitude (a stress ratio of -0.1 beside one of
+18), and a GP fitted to such values learns a huge amplitude and cannot tell the designs near
the limit apart. SCBO (D. Eriksson and M. Poloczek, "Scalable constrained Bayesian
optimization", AISTATS 2021) models `bilog(y) = sign(y) log(1 + |y|)` instead, which keeps the
sign, stretches the region around zero and damps large values. We centre it on the limit: an
outcome with `y <= upper` is modelled as `bilog(y - upper)`, one with `y >= lower` as
`bilog(lower - y)`, so that "safe" is "at most 0" on the model's scale and P(safe) is exact.

Only one-sided limits are warped, on outcomes that are not also objectives and have no known
noise level (that is given in the outcome's units).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from design.goals import Objective, SafetyLimit


def bilog(y: Tensor) -> Tensor:
    """`sign(y) * log(1 + |y|)`."""
    return torch.sign(y) * torch.log1p(y.abs())


def bilog_inverse(z: Tensor) -> Tensor:
    """The inverse of `bilog`: `sign(z) * (exp(|z|) - 1)`."""
    return torch.sign(z) * torch.expm1(z.abs())


@dataclass(frozen=True)
class SafetyWarp:
    """Which safety limits are modelled on the bilog scale, and the maps to and from it.

    Example:
        >>> warp = SafetyWarp.of(objectives, safety)
        >>> Y_model = warp.apply(Y, outcomes)          # fit the GPs to this
        >>> limits = warp.model_limits(safety)         # judge safety with these
    """

    limits: tuple[SafetyLimit, ...] = ()

    @classmethod
    def of(cls, objectives: list[Objective], safety: list[SafetyLimit]) -> SafetyWarp:
        """Warp every one-sided limit whose outcome is limited once, is no objective and has no known noise."""
        names = [limit.name for limit in safety]
        objective_names = {o.name for o in objectives}
        warped = [
            limit
            for limit in safety
            if (limit.lower is None) != (limit.upper is None)
            and names.count(limit.name) == 1
            and limit.name not in objective_names
            and limit.noise_sd is None
        ]
        return cls(tuple(warped))

    def model_limits(self, safety: list[SafetyLimit]) -> list[SafetyLimit]:
        """`safety` on the model's scale: each warped limit becomes `upper = 0`."""
        warped = {limit.name for limit in self.limits}
        return [SafetyLimit(name=s.name, upper=0.0, confidence=s.confidence) if s.name in warped else s for s in safety]

    def apply(self, Y: Tensor, outcomes: list[str]) -> Tensor:
        """The `n x m` outcomes (columns in `outcomes` order) on the model's scale."""
        Y = Y.clone()
        for limit in self.limits:
            j = outcomes.index(limit.name)
            Y[:, j] = bilog(Y[:, j] - limit.upper if limit.upper is not None else limit.lower - Y[:, j])
        return Y

    def invert(self, mean: np.ndarray, sd: np.ndarray, outcomes: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Predictive means and sds back in the outcomes' units.

        The mean maps to the median of the prediction (the map is monotone); the sd by the
        delta method, `sd * exp(|mean|)`, the map's slope at the mean.
        """
        mean, sd = mean.copy(), sd.copy()
        for limit in self.limits:
            j = outcomes.index(limit.name)
            z = mean[:, j].copy()
            offset = bilog_inverse(torch.as_tensor(z)).numpy()
            mean[:, j] = limit.upper + offset if limit.upper is not None else limit.lower - offset
            sd[:, j] = sd[:, j] * np.exp(np.abs(z))
        return mean, sd
