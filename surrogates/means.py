"""Mechanistic mean functions for the GP (Emax/Hill, custom): the GP then learns the discrepancy.

The GP sees inputs in the unit cube and standardized outcomes (`Standardize`). A mean function
written in user units handles that as follows: the input is mapped back to user units inside
the mean (`lower`, `upper`, `log` of the parameter, as the search space encodes it), and the
output's level and amplitude (`E0`, `Emax`, or a custom function's own scale parameters) are
free parameters fitted in standardized units, which absorb the affine standardization
(`y_std = (y - mu) / sd` maps `E0 + Emax * H` to `(E0 - mu) / sd + (Emax / sd) * H`). Shape
parameters such as `EC50` and the Hill coefficient are therefore in user units and unaffected.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from gpytorch.constraints import Interval, Positive
from gpytorch.means import ConstantMean, LinearMean, Mean
from torch import Tensor, nn


class EmaxMean(Mean):
    """Emax/Hill saturation in one input: `E0 + Emax * x^h / (EC50^h + x^h)`.

    `x` is the input in user units (mapped back from the unit cube with `lower`, `upper` and
    `log`); `E0` and `Emax` are unconstrained (in standardized outcome units), `EC50 > 0` (user
    units) and the Hill coefficient `h` lies in (0.2, 6). All four are fitted with the GP's
    hyperparameters by maximizing the marginal likelihood.

    Args:
        input_index: Column of `X` that holds the saturating input (e.g. dose).
        lower: The input's lower bound in user units (what 0 in the cube means).
        upper: The input's upper bound in user units (what 1 in the cube means).
        log: Whether the cube is log-scaled for this input.

    Example:
        >>> mean = EmaxMean(5, lower=1.0, upper=100.0, log=True)
        >>> model = fit_gp(X, y, mean_module=mean)
    """

    def __init__(self, input_index: int, lower: float = 0.0, upper: float = 1.0, log: bool = False) -> None:
        super().__init__()
        if not upper > lower or (log and lower <= 0):
            raise ValueError(
                f"EmaxMean needs lower < upper (and lower > 0 with log). Got lower={lower!r}, upper={upper!r}, "
                f"log={log!r} instead."
            )
        self.input_index, self.lower, self.upper, self.log = input_index, float(lower), float(upper), log
        self.e0 = nn.Parameter(torch.tensor(-1.0))
        self.emax = nn.Parameter(torch.tensor(2.0))
        mid = math.sqrt(lower * upper) if log else (lower + upper) / 2
        self.register_parameter("raw_ec50", nn.Parameter(torch.tensor(0.0)))
        self.register_constraint("raw_ec50", Positive())
        self.register_parameter("raw_hill", nn.Parameter(torch.tensor(0.0)))
        self.register_constraint("raw_hill", Interval(0.2, 6.0))
        self.ec50, self.hill = mid, 1.0

    @property
    def ec50(self) -> Tensor:
        return self.raw_ec50_constraint.transform(self.raw_ec50)

    @ec50.setter
    def ec50(self, value: float) -> None:
        self.initialize(raw_ec50=self.raw_ec50_constraint.inverse_transform(torch.as_tensor(float(value))))

    @property
    def hill(self) -> Tensor:
        return self.raw_hill_constraint.transform(self.raw_hill)

    @hill.setter
    def hill(self, value: float) -> None:
        self.initialize(raw_hill=self.raw_hill_constraint.inverse_transform(torch.as_tensor(float(value))))

    def user_units(self, u: Tensor) -> Tensor:
        """Map the unit-cube input back to user units."""
        if self.log:
            return torch.exp(math.log(self.lower) + u * (math.log(self.upper) - math.log(self.lower)))
        return self.lower + u * (self.upper - self.lower)

    def forward(self, x: Tensor) -> Tensor:
        dose = self.user_units(x[..., self.input_index]).clamp_min(1e-12)
        ratio = (dose / self.ec50.to(x)).pow(self.hill.to(x))
        return self.e0.to(x) + self.emax.to(x) * ratio / (1 + ratio)


class CustomMean(Mean):
    """Any differentiable `fn(x, **params)` with its own fitted parameters as a GP mean.

    `fn` gets a `... x n x d` tensor of inputs in the unit cube and the parameters as scalar
    tensors, and returns a `... x n` tensor in standardized outcome units (see the module
    docstring; give it an offset and a scale parameter to absorb the standardization).

    Args:
        fn: The mean function.
        init_params: Initial values of its parameters, by name (all fitted, unconstrained).

    Example:
        >>> mean = CustomMean(lambda x, a, b: a + b * x[..., 0] ** 2, {"a": 0.0, "b": 1.0})
    """

    def __init__(self, fn: Callable[..., Tensor], init_params: Mapping[str, float]) -> None:
        super().__init__()
        self.fn = fn
        self.params = nn.ParameterDict({k: nn.Parameter(torch.tensor(float(v))) for k, v in init_params.items()})

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x, **{k: v.to(x) for k, v in self.params.items()})


def mean_from_config(
    entry: Mapping[str, Any] | None,
    input_names: Sequence[str],
    ranges: Mapping[str, tuple[float, float, bool]] | None = None,
) -> Mean | None:
    """Build a mean module from a config entry such as `{"kind": "emax", "input": "dose_ug"}`.

    Kinds: `constant` (gpytorch `ConstantMean`, the default GP mean), `linear` (gpytorch
    `LinearMean` over all inputs) and `emax` (`EmaxMean` in the named input, which needs its
    `(lower, upper, log)` in `ranges`).

    Args:
        entry: The config entry, or None (returns None: the GP's default mean).
        input_names: Names of the encoded input columns, in order.
        ranges: `name -> (lower, upper, log)` for the inputs, in user units.

    Returns:
        A gpytorch `Mean`, or None.

    Raises:
        ValueError: For an unknown kind or input name.
    """
    if entry is None:
        return None
    kind = entry.get("kind")
    if kind == "constant":
        return ConstantMean()
    if kind == "linear":
        return LinearMean(len(input_names))
    if kind != "emax":
        raise ValueError(
            f"mean.kind must be one of ['constant', 'emax', 'linear']. Got {kind!r} instead. "
            "Other shapes are written in Python with `CustomMean`."
        )
    name = entry.get("input")
    if name not in list(input_names):
        raise ValueError(f"mean.input must be one of {list(input_names)}. Got {name!r} instead.")
    lower, upper, log = (ranges or {}).get(name, (0.0, 1.0, False))
    return EmaxMean(list(input_names).index(name), lower, upper, log)
