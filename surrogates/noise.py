"""A GP likelihood whose learned noise is scaled per row by a trust weight: `var_i = sigma^2 / w_i`."""

from __future__ import annotations

import torch
from botorch.models.utils.gpytorch_modules import MIN_INFERRED_NOISE_LEVEL
from gpytorch.constraints import GreaterThan
from gpytorch.likelihoods.gaussian_likelihood import _GaussianLikelihoodBase
from gpytorch.likelihoods.noise_models import Noise
from gpytorch.priors import LogNormalPrior
from linear_operator.operators import DiagLinearOperator
from torch import Tensor, nn


class TrustWeightedNoise(Noise):
    """Noise `sigma^2 / w_i` for training row `i`, `sigma^2` for any other point.

    `sigma^2` is learned (botorch's default log-normal prior and 1e-4 floor); the weights are
    fixed. A row of weight 0.25 counts as a measurement with twice the noise standard deviation.
    Rows are matched by position when the inputs are the training inputs, otherwise by exact
    equality with a training row (mean multiplier over duplicates), so that fantasy and
    prediction points, which are new designs, get the plain noise `sigma^2` of a trusted
    measurement.
    """

    def __init__(self, train_X: Tensor, weights: Tensor) -> None:
        super().__init__()
        self.register_buffer("train_X", train_X.detach().clone())
        self.register_buffer("multipliers", 1.0 / weights.detach().to(train_X))
        self.register_parameter("raw_noise", nn.Parameter(torch.zeros(1, dtype=train_X.dtype)))
        self.register_prior("noise_prior", LogNormalPrior(loc=-4.0, scale=1.0), lambda m: m.noise, None)
        self.register_constraint("raw_noise", GreaterThan(MIN_INFERRED_NOISE_LEVEL, transform=None))

    @property
    def noise(self) -> Tensor:
        return self.raw_noise_constraint.transform(self.raw_noise)

    @noise.setter
    def noise(self, value: Tensor | float) -> None:  # `calibration.inflate` scales it
        value = torch.as_tensor(value).to(self.raw_noise)
        self.initialize(raw_noise=self.raw_noise_constraint.inverse_transform(value))

    def _multipliers(self, X: Tensor) -> Tensor:
        if X.shape[-2:] == self.train_X.shape and torch.equal(X, self.train_X.expand_as(X)):
            return self.multipliers.expand(X.shape[:-1])
        same = (X.unsqueeze(-2) == self.train_X).all(-1).to(X)  # `... x n x n_train`
        count = same.sum(-1)
        return torch.where(count > 0, (same * self.multipliers).sum(-1) / count.clamp_min(1), torch.ones_like(count))

    def forward(self, *params: Tensor, shape: torch.Size | None = None, **kwargs) -> DiagLinearOperator:
        X = params[0] if params and torch.is_tensor(params[0]) else (params[0][0] if params else None)
        if X is None:
            if shape is None:
                raise ValueError("`shape` must be given when no inputs are passed.")
            multipliers = torch.ones(shape, dtype=self.raw_noise.dtype)
        else:
            multipliers = self._multipliers(X)
        return DiagLinearOperator(self.noise * multipliers)


class TrustWeightedLikelihood(_GaussianLikelihoodBase):
    """Gaussian likelihood with `TrustWeightedNoise`; use as `SingleTaskGP(..., likelihood=...)`."""

    def __init__(self, train_X: Tensor, weights: Tensor) -> None:
        super().__init__(noise_covar=TrustWeightedNoise(train_X, weights))

    @property
    def noise(self) -> Tensor:
        return self.noise_covar.noise

    @noise.setter
    def noise(self, value: Tensor | float) -> None:
        self.noise_covar.noise = value
