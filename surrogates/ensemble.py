"""Deep ensembles: M networks that predict a mean and a variance, as a botorch `Model`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

import pandas as pd
import torch
from botorch.models.model import Model
from botorch.posteriors.gpytorch import GPyTorchPosterior
from gpytorch.distributions import MultitaskMultivariateNormal, MultivariateNormal
from linear_operator.operators import DiagLinearOperator
from torch import Tensor, nn

from data.ray_tasks import RayCluster
from surrogates.ensemble_members import EnsembleMembers, check_rows
from surrogates.ensemble_training import (
    Forward,
    TrainingOptions,
)
from surrogates.losses import gaussian_crps, gaussian_nll
from surrogates.networks import NetworkSpec, SequenceBlock
from surrogates.physics import PhysicsTerm, make_grad
from surrogates.tables import TableCodec, as_outcome_tensor


class NeuralEnsemble(EnsembleMembers, Model):
    """A deep ensemble of regression networks with a Gaussian posterior (a botorch `Model`).

    Each of `n_members` networks (MLP on tabular columns, a 1-D CNN per one-hot sequence block)
    predicts a mean and a variance per outcome (softplus plus a floor) and is trained on
    standardized outcomes by the Gaussian negative log-likelihood (Lakshminarayanan et al. 2017,
    *Simple and scalable predictive uncertainty estimation using deep ensembles*; the beta-NLL
    by default, see `TrainingOptions.nll_beta`), with AdamW, a cosine-decayed step size,
    gradient clipping, He initialization, mini-batches and early stopping on the CRPS of its
    own seeded validation split; optional physics penalty terms and per-row weights. The members
    train together as one batched network (`EnsembleNet`; see `TrainingOptions`) and predict
    with it.

    The posterior is Gaussian with diagonal covariance. With `observation_noise=True` its
    variance is the ensemble's predictive variance, mean of the members' variances (noise) +
    variance of their means (disagreement); without, only the disagreement (the analogue of a
    GP's latent variance). It supports `rsample`, so botorch's Monte-Carlo acquisition
    functions work on it, and it is differentiable in `X`.

    Args:
        n_members: Number of networks.
        network: Architecture (`NetworkSpec`); default `NetworkSpec()`.
        training: `TrainingOptions`; default `TrainingOptions()`.
        sequence_blocks: `(start column, length L, alphabet size A)` of each one-hot sequence
            block of `X` (see `one_hot`).
        physics: `PhysicsTerm`s added to each member's loss.
        seed: Seed of initialization, splits, shuffling and collocation points.
        ray: None trains here; `"auto"`, a Ray cluster's address or a `data.ray_tasks.RayCluster`
            trains each member in its own Ray task (`surrogates.ensemble_ray`): the fit of
            `TrainingOptions(batched=False)` here, bit for bit (and of the batched fit, for MLP
            members; sequence CNNs round in another order there).

    Example:
        >>> model = NeuralEnsemble(n_members=5).fit(X, Y)
        >>> post = model.posterior(X_new, observation_noise=True)   # mean, variance: `n x m`
    """

    def __init__(
        self,
        n_members: int = 5,
        network: NetworkSpec | None = None,
        training: TrainingOptions | None = None,
        sequence_blocks: Sequence[SequenceBlock] | None = None,
        physics: Sequence[PhysicsTerm] | None = None,
        seed: int = 0,
        ray: str | RayCluster | None = None,
    ) -> None:
        Model.__init__(self)
        if n_members < 1:
            raise ValueError(f"`n_members` must be >= 1. Got {n_members!r} instead.")
        self.n_members, self.network, self.sequence_blocks = n_members, network, sequence_blocks
        self.options, self.physics, self.seed = training or TrainingOptions(), list(physics or []), seed
        self.ray = ray

    def fit(
        self,
        X: Tensor | pd.DataFrame,
        Y: Tensor | pd.DataFrame | pd.Series,
        weights: Tensor | None = None,
        bounds: Tensor | None = None,
        space: Any = None,
        progress: bool = False,
    ) -> NeuralEnsemble:
        """Train every member.

        Args:
            X: A `n x d` tensor of inputs, or a DataFrame of designs (`surrogates.tables`).
            Y: A `n x m` (or `n`) tensor of outcomes, or a DataFrame or Series whose columns
                name the outcomes; NaN marks a missing measurement.
            weights: Optional `n` tensor of per-row weights (e.g. trust in a data source).
            bounds: Optional `2 x d` box for collocation points; default the data's range (the
                unit cube with a `space`).
            space: With a DataFrame `X`, the search space that encodes it (`design.SearchSpace`:
                categories, log scales, sequences); None takes its numeric columns as they are.
            progress: Show a progress bar over the epochs (on a terminal).

        Returns:
            `self`, fitted; `history_` holds one row per member and epoch with `train_loss`,
            `val_loss`, `lr` and one `physics:<name>` column per term.

        Example:
            >>> model = NeuralEnsemble(3).fit(designs_df, outcomes_df, space=space)
            >>> model.predict(new_designs_df)    # a DataFrame: <outcome>_mean, <outcome>_sd
        """
        self.codec_ = TableCodec.of(X, Y, space) if isinstance(X, pd.DataFrame) else None
        if self.codec_ is not None:
            X = self.codec_.encode(X)
            if bounds is None and space is not None:
                bounds = space.bounds
        X, Y = torch.as_tensor(X), as_outcome_tensor(Y)
        self._progress = progress
        Y = Y.reshape(len(Y), -1)
        check_rows(X, Y, weights)
        Yf = Y.float()
        self.y_mean_ = torch.nanmean(Yf, 0)
        centred = torch.where(torch.isnan(Yf), 0.0, Yf - self.y_mean_)
        count = (~torch.isnan(Yf)).sum(0).clamp_min(2)
        std = (centred.square().sum(0) / (count - 1)).sqrt()
        self.y_std_ = torch.where(std > 1e-12, std, torch.ones_like(std))
        self._num_outputs = Y.shape[-1]
        self._setup(X, 2 * self._num_outputs, bounds)
        T = (Yf - self.y_mean_) / self.y_std_
        w = None if weights is None else weights.float()
        self._train_all(X.float(), T, w, self._nll, None)
        return self

    def _split_out(self, raw: Tensor) -> tuple[Tensor, Tensor]:
        m = self._num_outputs
        floor = (self.network or NetworkSpec()).variance_floor
        return raw[..., :m], nn.functional.softplus(raw[..., m:]) + floor

    def _nll(self, raw: Tensor, T: Tensor, w: Tensor | None) -> Tensor:
        mean, var = self._split_out(raw)
        return gaussian_nll(mean, var, T, w, beta=self.options.nll_beta)

    def _val_loss(self, raw: Tensor, T: Tensor, w: Tensor | None) -> Tensor:
        """Early stopping's score with `stop_on="score"`: the CRPS of each member's Gaussian."""
        if self.options.stop_on != "score":
            return self._nll(raw, T, w)
        mean, var = self._split_out(raw)
        return gaussian_crps(mean, var, T, w)

    def _physics_terms(self) -> Sequence[PhysicsTerm]:
        return [t for t in self.physics if t.weight > 0]

    def _collocation(self, gen: torch.Generator) -> Tensor | None:
        if not self._physics_terms():
            return None
        low, high = self.bounds_
        return low + (high - low) * torch.rand(self.options.n_collocation, self.d_, generator=gen)

    def _physics_value(self, forward: Forward, term: PhysicsTerm, X_batch: Tensor, colloc: Tensor | None) -> Tensor:
        """One member's penalty of `term`; `forward` is that member's network (`EnsembleNet.member`)."""
        if isinstance(term.points, Tensor):
            points = term.points.float()
        else:
            assert colloc is not None  # `_collocation` draws points whenever there are physics terms
            points = {"both": torch.cat([colloc, X_batch]), "collocation": colloc, "data": X_batch}[term.points]
        points = points.detach().clone().requires_grad_(True)
        mean, _ = self._split_out(forward(points))
        return term.value(points, mean * self.y_std_ + self.y_mean_, make_grad(points))

    def _member_moments(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """Members' means and variances in outcome units, each `M x batch x n x m`."""
        self._check_fitted()
        self._check_X(X)
        flat = X.reshape(-1, self.d_).float()
        mean, var = self._split_out(self.net_(flat))  # M x N x m each
        means, variances = mean * self.y_std_ + self.y_mean_, var * self.y_std_**2
        shape = (self.n_members, *X.shape[:-1], self._num_outputs)
        return means.reshape(shape).to(X.dtype), variances.reshape(shape).to(X.dtype)

    @overload
    def predict(self, X: Tensor) -> tuple[Tensor, Tensor]: ...

    @overload
    def predict(self, X: pd.DataFrame) -> pd.DataFrame: ...

    def predict(self, X: Tensor | pd.DataFrame) -> tuple[Tensor, Tensor] | pd.DataFrame:
        """Predictive mean and total variance (noise + disagreement), each `batch x n x m`.

        A DataFrame `X` (fitted on a DataFrame) gives a DataFrame instead: `<outcome>_mean` and
        `<outcome>_sd` (the square root of that variance) per outcome, with the rows of `X`.
        """
        if isinstance(X, pd.DataFrame):
            codec = self._codec()
            with torch.no_grad():
                mean, var = self.predict(codec.encode(X))
            return codec.table(mean, var.sqrt(), X.index)
        means, variances = self._member_moments(X)
        return means.mean(0), variances.mean(0) + means.var(0, unbiased=False)

    def posterior(
        self,
        X: Tensor,
        output_indices: list[int] | None = None,
        observation_noise: bool | Tensor = False,
        posterior_transform: Any = None,
        **kwargs: Any,
    ) -> GPyTorchPosterior:
        """A Gaussian posterior at a `batch x n x d` tensor, mean and variance `batch x n x m`.

        Args:
            X: Inputs, differentiable.
            output_indices: Outcomes to keep (default all).
            observation_noise: True adds the members' mean variance (measurement noise).
            posterior_transform: Optional botorch `PosteriorTransform`.
        """
        means, variances = self._member_moments(X)
        mean = means.mean(0)
        var = means.var(0, unbiased=False) if self.n_members > 1 else torch.zeros_like(mean)
        if observation_noise is not False:
            var = var + variances.mean(0)
        var = var.clamp_min(1e-12)
        if output_indices is not None:
            mean, var = mean[..., output_indices], var[..., output_indices]
        if mean.shape[-1] == 1:
            mvn = MultivariateNormal(mean.squeeze(-1), DiagLinearOperator(var.squeeze(-1)))
        else:  # interleaved: entry i * m + j is point i, outcome j
            mvn = MultitaskMultivariateNormal(mean, DiagLinearOperator(var.flatten(-2)), interleaved=True)
        posterior = GPyTorchPosterior(mvn)
        return posterior if posterior_transform is None else posterior_transform(posterior)

    @property
    def num_outputs(self) -> int:
        """Number of outcomes `m`."""
        return self._num_outputs

    @property
    def batch_shape(self) -> torch.Size:
        """Models are not batched: `torch.Size([])`."""
        return torch.Size()
