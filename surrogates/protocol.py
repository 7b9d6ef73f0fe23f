"""The small interface that designers rely on: a model with a differentiable posterior."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor


class Posterior(Protocol):
    @property
    def mean(self) -> Tensor: ...

    @property
    def variance(self) -> Tensor: ...


@runtime_checkable
class Surrogate(Protocol):
    """Anything with `posterior(X)` returning a `mean` and `variance`, differentiable in `X`.

    botorch models satisfy it; `X` is a `batch x n x d` tensor in the search space's encoding,
    and the posterior's `mean` and `variance` are `batch x n x m` for `m` outcomes.
    """

    @property
    def num_outputs(self) -> int: ...  # a plain attribute serves too

    def posterior(
        self, X: Tensor, output_indices: list[int] | None = None, *, observation_noise: bool = False
    ) -> Posterior: ...  # output_indices: the outcomes to keep (default all), as botorch's models take it
