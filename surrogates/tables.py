"""Tables in, tables out: the ensembles take DataFrames the way scikit-learn estimators do.

`fit(X_df, Y_df, space=space)` encodes the designs with a search space (anything with
`encode(df)` and `names` (of its parameters), e.g. `design.SearchSpace`: categories one-hot, log scales,
sequences), or, without one, takes the numeric columns as they are; the outcome columns name the
outputs. `predict(X_df)` then encodes the new rows the same way and returns a DataFrame with
`<outcome>_mean` and `<outcome>_sd`. Tensors keep working as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor


@dataclass(frozen=True)
class TableCodec:
    """How a fitted ensemble turns a table into its input tensor, and the names of its outputs."""

    columns: list[str]
    space: Any = None  # an encoder with `encode(df)`, or None for numeric columns as they are
    outcomes: tuple[str, ...] = ()

    @classmethod
    def of(cls, X: pd.DataFrame, Y: Any, space: Any = None) -> TableCodec:
        columns = list(space.names) if space is not None else [str(c) for c in X.columns]
        if isinstance(Y, pd.Series):
            outcomes: tuple[str, ...] = (str(Y.name),)
        elif isinstance(Y, pd.DataFrame):
            outcomes = tuple(str(c) for c in Y.columns)
        else:
            outcomes = ()
        return cls(columns, space, outcomes)

    def encode(self, X: pd.DataFrame) -> Tensor:
        """The `n x d` input tensor of `X` (double), or a ValueError naming the missing or non-numeric column."""
        missing = [c for c in self.columns if c not in X.columns]
        if missing:
            raise ValueError(f"`X` must have the columns {self.columns} it was fitted with. Missing: {missing}.")
        if self.space is not None:
            return self.space.encode(X[self.columns])
        for column in self.columns:
            if not pd.api.types.is_numeric_dtype(X[column]) or pd.api.types.is_bool_dtype(X[column]):
                raise ValueError(
                    f"column {column!r} must hold numbers. Got {X[column].dtype} instead. Pass `space=` "
                    "(a design.SearchSpace) to encode categories and sequences, or drop the column."
                )
        return torch.tensor(X[self.columns].to_numpy(dtype=float), dtype=torch.double)

    def names(self, m: int) -> tuple[str, ...]:
        """The outputs' names: the outcome columns `fit` saw, else `y0, y1, ...`."""
        return self.outcomes or tuple(f"y{j}" for j in range(m))

    def table(self, mean: Tensor, sd: Tensor, index: pd.Index) -> pd.DataFrame:
        """Predictions as a DataFrame: `<outcome>_mean`, `<outcome>_sd` per output, rows as `index`."""
        data: dict[str, np.ndarray] = {}
        for j, name in enumerate(self.names(mean.shape[-1])):
            data[f"{name}_mean"] = mean[..., j].detach().numpy()
            data[f"{name}_sd"] = sd[..., j].detach().numpy()
        return pd.DataFrame(data, index=index)


def as_outcome_tensor(Y: Any) -> Tensor:
    """`Y` (a tensor, a Series or a DataFrame of numbers; NaN: missing) as a double tensor."""
    if isinstance(Y, pd.Series | pd.DataFrame):
        return torch.tensor(Y.to_numpy(dtype=float), dtype=torch.double)
    return Y
