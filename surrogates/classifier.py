"""A GP classifier of whether an experiment succeeds (runs that fail leave no outcome)."""

from __future__ import annotations

import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskVariationalGP
from gpytorch.likelihoods import BernoulliLikelihood
from gpytorch.mlls import VariationalELBO
from torch import Tensor

from surrogates.gp import matern52_kernel


class FeasibilityModel:
    """P(an experiment at `X` succeeds), from a variational GP with a Bernoulli likelihood.

    The latent GP `f` has a probit link, so `P(success) = Phi(mu / sqrt(1 + sigma^2))` with the
    latent posterior's mean and variance: the model's uncertainty pulls the probability toward
    1/2 where it has seen nothing. Differentiable in `X`, so acquisition functions can use it.

    Example:
        >>> model = FeasibilityModel().fit(X, succeeded)
        >>> p = model.probability(X_new)   # a `n` tensor in (0, 1)
    """

    def fit(self, X: Tensor, succeeded: Tensor, max_inducing: int = 300, seed: int = 0) -> FeasibilityModel:
        """Fit to a `n x d` tensor of designs and a `n` boolean tensor of outcomes.

        The designs are the inducing points, or a seeded random `max_inducing` of them when
        there are more (the variational GP costs `O(n m^2)` with `m` inducing points).
        """
        Y = succeeded.to(X.dtype).reshape(-1, 1)
        inducing = X
        if X.shape[0] > max_inducing:
            inducing = X[torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(seed))[:max_inducing]]
        self.model_ = SingleTaskVariationalGP(
            X,
            Y,
            likelihood=BernoulliLikelihood(),
            covar_module=matern52_kernel(X.shape[-1]),
            inducing_points=inducing.clone(),
            learn_inducing_points=False,
        )
        mll = VariationalELBO(self.model_.likelihood, self.model_.model, num_data=X.shape[0])
        fit_gpytorch_mll(mll)
        self.model_.eval()
        return self

    def probability(self, X: Tensor) -> Tensor:
        """P(success) for a `batch x d` tensor (any leading batch shape); shape `batch`."""
        if not hasattr(self, "model_"):
            raise RuntimeError("This FeasibilityModel is not fitted yet. Call `fit(X, succeeded)` first.")
        posterior = self.model_.posterior(X)
        mean, var = posterior.mean.squeeze(-1), posterior.variance.squeeze(-1)
        return torch.distributions.Normal(0.0, 1.0).cdf(mean / torch.sqrt(1.0 + var))
