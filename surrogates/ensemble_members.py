"""What the regression and classification ensembles share: members, splits, training and checks."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from torch import Tensor

from data.progress import epoch_bar
from data.ray_tasks import RayCluster
from surrogates.ensemble_ray import train_members_on_ray
from surrogates.ensemble_training import (
    DEFAULT_LR,
    PATIENCE_SHARE,
    Forward,
    LossFn,
    TrainingOptions,
    train_members,
)
from surrogates.networks import EnsembleNet, NetworkSpec, SequenceBlock, SurrogateNet
from surrogates.physics import PhysicsTerm
from surrogates.tables import TableCodec


class EnsembleMembers:
    """What the regression and classification ensembles share: setup, splitting and training."""

    # set by the subclasses' constructors
    n_members: int
    network: NetworkSpec | None
    sequence_blocks: Sequence[SequenceBlock] | None
    options: TrainingOptions
    seed: int
    ray: str | RayCluster | None = None  # where the members train: here (None) or one Ray task each
    codec_: TableCodec | None = None  # set by `fit`: how a DataFrame becomes the input tensor
    training_options_: TrainingOptions  # set by `fit`: `options` with the model's defaults filled in
    _progress: bool = False

    def _setup(self, X: Tensor, n_out: int, bounds: Tensor | None) -> None:
        self.d_ = X.shape[-1]
        Xf = X.float()
        shift, scale = Xf.mean(0), Xf.std(0) if len(Xf) > 1 else torch.ones(self.d_)
        scale = torch.where(scale > 1e-6, scale, torch.ones_like(scale))
        self.bounds_ = (torch.stack([Xf.min(0).values, Xf.max(0).values]) if bounds is None else bounds).float()
        blocks = list(self.sequence_blocks or [])
        for start, L, A in blocks:
            if start < 0 or start + L * A > self.d_:
                raise ValueError(
                    f"`sequence_blocks` entry {(start, L, A)} must fit in the {self.d_} columns of X "
                    f"(start + L * A <= {self.d_}). Got {start + L * A} instead."
                )
        members = []
        for k in range(self.n_members):
            with torch.random.fork_rng(devices=[]):  # layer constructors draw from the global RNG
                net = SurrogateNet(self.d_, n_out, blocks, self.network or NetworkSpec(), shift, scale)
            net.reset_parameters(torch.Generator().manual_seed(self._member_seed(k)))
            members.append(net)
        self.net_ = EnsembleNet(members)

    def _member_seed(self, k: int) -> int:
        return 10_007 * int(self.seed) + k

    def _split(self, n: int, k: int, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        idx = np.arange(n)
        frac = self.options.validation_fraction
        if frac <= 0 or round(frac * n) < 2 or n - round(frac * n) < 2:
            return idx, idx[:0]
        stratify = labels
        if labels is not None and np.bincount(labels.astype(int), minlength=2).min() < 2:
            stratify = None
        return train_test_split(idx, test_size=frac, random_state=self._member_seed(k), stratify=stratify)

    def _train_all(self, X: Tensor, T: Tensor, w: Tensor | None, loss_fn: LossFn, labels: np.ndarray | None) -> None:
        """Train the members together (or one after another with `batched=False`); set `history_`."""
        splits = [self._split(len(X), k, labels) for k in range(self.n_members)]
        seeds = [self._member_seed(k) for k in range(self.n_members)]
        options = self.training_options_ = self._resolved_options()
        with torch.enable_grad(), epoch_bar(self._progress, f"training {type(self).__name__}") as on_epoch:
            if self.ray is not None:  # one Ray task per member, each trained as `batched=False` trains it
                losses, data = (loss_fn, self._val_loss), (X, T, w)
                rows, self.best_epochs_ = train_members_on_ray(self, data, splits, seeds, losses, options, self.ray)
            elif options.batched:
                rows, self.best_epochs_ = train_members(
                    self.net_, (X, T, w), splits, seeds, loss_fn, self, options, None, self._val_loss, on_epoch
                )
            else:
                rows, self.best_epochs_ = [], []
                for k in range(self.n_members):
                    single = self.net_.select(k)
                    history, best = train_members(
                        single,
                        (X, T, w),
                        splits[k : k + 1],
                        seeds[k : k + 1],
                        loss_fn,
                        self,
                        options,
                        [k],
                        self._val_loss,
                        on_epoch,
                    )
                    self.net_.put(k, single)
                    rows, self.best_epochs_ = rows + history, self.best_epochs_ + best
        self.net_.eval()
        self.history_ = pd.DataFrame(rows).sort_values(["member", "epoch"], kind="stable").reset_index(drop=True)

    _val_loss: LossFn | None = None  # what early stopping scores with `stop_on="score"` (None: the training loss)
    # the `TrainingOptions` fields that a model fills in where they are None (see there)
    _option_defaults: dict[str, float] = {"input_l1": 0.0, "lr": DEFAULT_LR, "patience_share": PATIENCE_SHARE}

    def _resolved_options(self) -> TrainingOptions:
        """`self.options` with the model's defaults (`_option_defaults`) in place of the fields left None."""
        options, defaults = self.options, self._option_defaults
        return dataclasses.replace(
            options,
            input_l1=defaults["input_l1"] if options.input_l1 is None else options.input_l1,
            lr=defaults["lr"] if options.lr is None else options.lr,
            patience_share=defaults["patience_share"] if options.patience_share is None else options.patience_share,
        )

    def _physics_terms(self) -> Sequence[PhysicsTerm]:
        return ()

    def _collocation(self, gen: torch.Generator) -> Tensor | None:
        return None

    def _physics_value(self, forward: Forward, term: PhysicsTerm, X_batch: Tensor, colloc: Tensor | None) -> Tensor:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "history_"):
            raise RuntimeError(f"This {type(self).__name__} is not fitted yet. Call `fit(X, Y)` first.")

    def _codec(self) -> TableCodec:
        self._check_fitted()
        if self.codec_ is None:
            raise ValueError(f"This {type(self).__name__} was fitted on tensors: pass a tensor, or fit on a DataFrame.")
        return self.codec_

    def _check_X(self, X: Tensor) -> None:
        if X.shape[-1] != self.d_:
            raise ValueError(f"`X` must have {self.d_} columns, as in `fit`. Got {X.shape[-1]} instead.")


def check_rows(X: Tensor, Y: Tensor, weights: Tensor | None) -> None:
    """Raise a ValueError unless `X` is `n x d`, `Y` has `n` rows and `weights` is `n` numbers >= 0."""
    if X.dim() != 2 or Y.shape[0] != X.shape[0]:
        raise ValueError(
            f"`X` must be `n x d` and `Y` have `n` rows. Got X {tuple(X.shape)} and Y {tuple(Y.shape)} instead."
        )
    if weights is not None and (weights.shape != (X.shape[0],) or (weights < 0).any()):
        raise ValueError(
            f"`weights` must be a `n` tensor of non-negative numbers, n = {X.shape[0]}. "
            f"Got shape {tuple(weights.shape)} instead."
        )
