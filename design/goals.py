"""What the user wants of the outcomes: objectives to optimize and safety limits to respect."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import Tensor


class Objective(BaseModel):
    """An outcome to maximize, minimize, or bring to a `target` value."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1)
    goal: Literal["maximize", "minimize", "target"] = "maximize"
    target: float | None = None
    reference: float | None = None  # with several objectives: the worst value still worth having
    noise_sd: float | None = Field(None, gt=0)  # known measurement noise; learned from data if None
    log: bool | None = None  # model log(y): None when positive and spanning 10x (`design.warp`)

    @model_validator(mode="after")
    def _check_target(self) -> Objective:
        if (self.goal == "target") != (self.target is not None):
            raise ValueError(
                f"target must be given exactly when goal is 'target'. Got goal={self.goal!r}, "
                f"target={self.target!r} instead. Set both or neither."
            )
        return self

    def score(self, y: float) -> float:
        """The value as Valley maximizes it (minimize: `-y`; target: `-|y - target|`)."""
        if self.goal == "maximize":
            return y
        if self.goal == "minimize":
            return -y
        return -abs(y - self.target)  # type: ignore[operator]


class SafetyLimit(BaseModel):
    """An outcome that must stay in `[lower, upper]`, with probability at least `confidence`."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(min_length=1)
    lower: float | None = None
    upper: float | None = None
    confidence: float = Field(0.95, gt=0.0, lt=1.0)
    noise_sd: float | None = Field(None, gt=0)  # known measurement noise; learned from data if None

    @model_validator(mode="after")
    def _check_limits(self) -> SafetyLimit:
        if self.lower is None and self.upper is None:
            raise ValueError("needs `upper`, `lower` or both. Got neither. Add the limit value.")
        if self.lower is not None and self.upper is not None and self.lower >= self.upper:
            raise ValueError(f"lower must be below upper. Got lower={self.lower}, upper={self.upper} instead.")
        return self

    def holds(self, y: float) -> bool:
        """Whether a measured value respects the limit (a missing value does not)."""
        if y != y:  # NaN
            return False
        return (self.lower is None or y >= self.lower) and (self.upper is None or y <= self.upper)


def limits_hold(safety: list[SafetyLimit], df: pd.DataFrame, prefix: str = "") -> np.ndarray:
    """Boolean mask of the rows of `df` where every limit holds (a missing value never does).

    `prefix` names the columns, e.g. `"true_"` for a simulator's noise-free outcomes.
    """
    ok = np.ones(len(df), dtype=bool)
    for limit in safety:
        y = df[prefix + limit.name].to_numpy(dtype=float)
        held = ~np.isnan(y)
        if limit.upper is not None:
            held &= y <= limit.upper
        if limit.lower is not None:
            held &= y >= limit.lower
        ok &= held
    return ok


def probability_within_limits(mean: Tensor, variance: Tensor, safety: list[SafetyLimit], names: list[str]) -> Tensor:
    """P(every limit holds) under independent normal marginals: `... x m` mean and variance -> `...`.

    `names` names the `m` columns; each limit reads the column of its outcome. Differentiable.
    """
    normal = torch.distributions.Normal(0.0, 1.0)
    sd = variance.clamp_min(1e-12).sqrt()
    p = torch.ones(mean.shape[:-1], dtype=mean.dtype)
    for limit in safety:
        j = names.index(limit.name)
        upper = 1.0 if limit.upper is None else normal.cdf((limit.upper - mean[..., j]) / sd[..., j])
        lower = 0.0 if limit.lower is None else normal.cdf((limit.lower - mean[..., j]) / sd[..., j])
        p = p * (upper - lower)
    return p
