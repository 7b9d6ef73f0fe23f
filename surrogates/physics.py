"""Physics penalty terms for neural surrogates: named laws added to the training loss, each logged."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

Grad = Callable[[Tensor], Tensor]
Residual = Callable[[Tensor, Tensor, Grad], Tensor]

POINT_SETS = ("both", "collocation", "data")


@dataclass
class PhysicsTerm:
    """A named law that the surrogate should obey, added to its training loss.

    `residual(X, Y_pred, grad)` gets a `k x d` tensor of inputs (requires grad), the `k x m`
    predicted means at them in the outcomes' own units, and `grad`, a function with
    `grad(y)` = the `k x d` derivative of a `k` tensor `y` (computed from `Y_pred`) with
    respect to `X` (graph kept, so `grad(grad(y)[:, i])` gives second derivatives). It returns a
    tensor that is zero where the law holds; the penalty is `weight * mean(residual ** 2)`.

    With `energy=True` the function returns an energy density instead, and the penalty is
    `weight * mean(value)`. On points sampled uniformly from the input box, `mean(value)` is the
    Monte-Carlo estimate of the energy integral divided by the box's volume, so minimizing it
    applies the principle of minimum potential energy (the deep energy method, Nguyen-Thanh et
    al. 2020). An energy term should use `points="collocation"` (data rows would bias the
    integral), and its value may be negative.

    Attributes:
        name: Label of the term in the training history (`history_` column `physics:<name>`).
        weight: Multiplier of the penalty in the loss (>= 0).
        residual: The function described above.
        energy: Penalize `mean(value)` instead of `mean(value ** 2)`.
        points: Where to evaluate: `"both"` (collocation points sampled uniformly from the input
            box each epoch, plus the training rows of the mini-batch), `"collocation"`, `"data"`,
            or a fixed `k x d` tensor of points (e.g. a boundary condition at `x = 0`).

    Example:
        >>> nonneg = PhysicsTerm("non-negative", 1.0, lambda X, Y, grad: torch.relu(-Y[:, 0]))
    """

    name: str
    weight: float
    residual: Residual
    energy: bool = False
    points: str | Tensor = "both"

    def __post_init__(self) -> None:
        if not float(self.weight) >= 0:
            raise ValueError(
                f"PhysicsTerm `{self.name}`: `weight` must be >= 0. Got {self.weight!r} instead. "
                "Use 0 to switch the term off."
            )
        if isinstance(self.points, str) and self.points not in POINT_SETS:
            raise ValueError(
                f"PhysicsTerm `{self.name}`: `points` must be one of {POINT_SETS} or a tensor. "
                f"Got {self.points!r} instead."
            )

    def value(self, X: Tensor, Y_pred: Tensor, grad: Grad) -> Tensor:
        """The unweighted penalty: `mean(residual**2)`, or `mean(value)` for an energy term."""
        r = self.residual(X, Y_pred, grad)
        return r.mean() if self.energy else r.square().mean()


def make_grad(X: Tensor) -> Grad:
    """`grad(y)`: the derivative of a tensor `y` computed from `X` (summed over rows), graph kept."""

    def grad(y: Tensor) -> Tensor:
        (g,) = torch.autograd.grad(y.sum(), X, create_graph=True, allow_unused=True)
        return torch.zeros_like(X) if g is None else g

    return grad


def monotonic(input_index: int, increasing: bool = True, outcome: int = 0, weight: float = 1.0) -> PhysicsTerm:
    """The outcome rises (or falls) with one input: penalizes `ReLU(-/+ dY/dx)`.

    Example:
        >>> term = monotonic(5, increasing=True, outcome=0)  # activation grows with dose
    """
    sign = 1.0 if increasing else -1.0

    def residual(X: Tensor, Y: Tensor, grad: Grad) -> Tensor:
        return torch.relu(-sign * grad(Y[:, outcome])[:, input_index])

    direction = "increasing" if increasing else "decreasing"
    return PhysicsTerm(f"monotonic[{outcome}] {direction} in x{input_index}", weight, residual)


def bounded(
    lower: float | None = None, upper: float | None = None, outcome: int = 0, weight: float = 1.0
) -> PhysicsTerm:
    """The outcome stays within `[lower, upper]` (either may be None): penalizes the excess.

    Example:
        >>> term = bounded(lower=0.0)  # a concentration cannot be negative
    """
    if lower is None and upper is None:
        raise ValueError("bounded() needs `lower` or `upper`. Got neither. Give at least one bound.")
    if lower is not None and upper is not None and not lower < upper:
        raise ValueError(f"bounded() needs lower < upper. Got lower={lower!r}, upper={upper!r} instead.")

    def residual(X: Tensor, Y: Tensor, grad: Grad) -> Tensor:
        y = Y[:, outcome]
        r = torch.zeros_like(y)
        if lower is not None:
            r = r + torch.relu(lower - y)
        if upper is not None:
            r = r + torch.relu(y - upper)
        return r

    return PhysicsTerm(f"bounded[{outcome}] in [{lower}, {upper}]", weight, residual)


def saturating(input_index: int, outcome: int = 0, weight: float = 1.0) -> PhysicsTerm:
    """The outcome is concave in one input (diminishing returns): penalizes `ReLU(d2Y/dx2)`.

    Needs a smooth activation (`silu`, `tanh`): a ReLU network has zero second derivative.

    Example:
        >>> term = saturating(5)  # dose response saturates
    """

    def residual(X: Tensor, Y: Tensor, grad: Grad) -> Tensor:
        first = grad(Y[:, outcome])[:, input_index]
        return torch.relu(grad(first)[:, input_index])

    return PhysicsTerm(f"saturating[{outcome}] in x{input_index}", weight, residual)


_BUILTINS: dict[str, Callable[..., PhysicsTerm]] = {
    "monotonic": monotonic,
    "bounded": bounded,
    "saturating": saturating,
}


def physics_terms_from_config(
    entries: Sequence[dict[str, Any]], input_names: Sequence[str], outcome_names: Sequence[str]
) -> list[PhysicsTerm]:
    """Build built-in terms from plain dicts, as a campaign config lists them.

    Each entry has `kind` (`monotonic`, `bounded` or `saturating`), `outcome` (a name) and
    `weight` (default 1); `monotonic` and `saturating` need `input` (a name), `monotonic` takes
    `increasing` (default true), `bounded` takes `lower` and/or `upper`. Input indices refer to
    the columns of the encoded `X` in the order of `input_names`.

    Args:
        entries: The list of dicts.
        input_names: Names of the encoded input columns.
        outcome_names: Names of the outcome columns.

    Returns:
        A list of `PhysicsTerm`.

    Raises:
        ValueError: For an unknown kind, name or key, naming the entry and the fix.

    Example:
        >>> physics_terms_from_config(
        ...     [{"kind": "monotonic", "input": "dose", "outcome": "activation", "weight": 1.0}],
        ...     ["size", "dose"], ["activation"])
    """
    allowed = {
        "monotonic": {"kind", "input", "outcome", "weight", "increasing"},
        "bounded": {"kind", "outcome", "weight", "lower", "upper"},
        "saturating": {"kind", "input", "outcome", "weight"},
    }
    terms = []
    for i, entry in enumerate(entries):
        where = f"physics[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be a mapping with a `kind`. Got {entry!r} instead.")
        kind = entry.get("kind")
        if kind not in _BUILTINS:
            raise ValueError(
                f"{where}.kind must be one of {sorted(_BUILTINS)}. Got {kind!r} instead. "
                "Custom laws are written in Python as a `PhysicsTerm`."
            )
        unknown = sorted(set(entry) - allowed[kind])
        if unknown:
            raise ValueError(f"{where} ({kind}) must have only the keys {sorted(allowed[kind])}. Got {unknown} too.")
        outcome = _index(
            entry.get("outcome", outcome_names[0] if len(outcome_names) == 1 else None),
            outcome_names,
            f"{where}.outcome",
        )
        kwargs: dict[str, Any] = {"outcome": outcome, "weight": float(entry.get("weight", 1.0))}
        if kind in ("monotonic", "saturating"):
            kwargs["input_index"] = _index(entry.get("input"), input_names, f"{where}.input")
        if kind == "monotonic":
            kwargs["increasing"] = bool(entry.get("increasing", True))
        if kind == "bounded":
            kwargs["lower"], kwargs["upper"] = entry.get("lower"), entry.get("upper")
        try:
            terms.append(_BUILTINS[kind](**kwargs))
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
    return terms


def _index(name: Any, names: Sequence[str], where: str) -> int:
    if name not in list(names):
        raise ValueError(f"{where} must be one of {list(names)}. Got {name!r} instead. Use one of those names.")
    return list(names).index(name)


def tune_physics_weight(
    term: PhysicsTerm,
    fit: Callable[[PhysicsTerm], Any],
    X_val: Tensor,
    Y_val: Tensor,
    grid: Sequence[float] | None = None,
    *,
    method: str = "grid",
    train: tuple[Tensor, Tensor] | None = None,
    **ift_options: Any,
) -> tuple[float, pd.DataFrame]:
    """Choose a term's weight by validation negative log-likelihood over a small grid (or by IFT).

    For each weight `w` of the grid (default: 0 and `10^-2 ... 10^2`, five log-spaced values),
    `fit` trains a surrogate with a copy of `term` at weight `w`; its predictive posterior
    (with observation noise) is scored on the held-out `X_val`, `Y_val` by the Gaussian
    negative log-likelihood per point. The grid is the simple and honest form of the bilevel
    problem "weight that minimizes validation loss".

    `method="ift"` solves that bilevel problem by implicit-function-theorem hypergradients instead
    (`surrogates.bilevel.tune_ensemble_ift`): `fit` is called once, at the geometric middle of the
    grid's positive weights, and that fitted `NeuralEnsemble` is trained on, full batch, while its
    log-weight follows the hypergradient of the validation NLL (needs `train=(X, Y)`, the rows
    `fit` trains on; `ift_options` go to `tune_weight_ift`). The table then has one row per outer
    step. It is not the default because it did not beat the grid on the score both minimize: on the
    hyperelastic bar (S5, deep-energy-method terms, 30 noisy measurements, 30 validation ones,
    seeds 0-2; `valley benchmark bilevel`, 2 busy cores) the grid of 0, 1, 10, 100, 1000 reached
    a validation NLL of -3.251 in 16.0 s (weights 100, 10, 100), IFT with CG from 31.6 within
    1 ... 1000 (6 outer steps of 150 inner steps) -3.242 in 12.9 s (52, 32, 134) and with the
    Neumann series -3.228 in 12.3 s. IFT's fields were closer to the reference (relative L2
    error 0.0135 and 0.0128 against the grid's 0.0158), a difference within the seeds' spread,
    and its hypergradients on the bar change sign from one outer step to the next (the inner
    training is stochastic and not converged), so the grid stays the default.

    Args:
        term: The term to tune (its own weight is ignored).
        fit: `fit(term_with_weight)` returns a fitted model with `posterior(X, observation_noise=True)`.
        X_val: A `k x d` tensor of validation inputs.
        Y_val: A `k x m` tensor of validation outcomes.
        grid: The weights to try (with `"ift"`: their positive range is the search range).
        method: `"grid"` or `"ift"`.
        train: With `"ift"`, the training rows `(X, Y)` given to `fit`.
        **ift_options: With `"ift"`, options of `surrogates.bilevel.tune_weight_ift`.

    Returns:
        `(best_weight, table_df)` with one row per weight (per outer step with `"ift"`):
        `weight`, `val_nll`, `val_rmse`.

    Example:
        >>> best, table_df = tune_physics_weight(monotonic(0), lambda t: NeuralEnsemble(physics=[t]).fit(X, Y),
        ...                                      X_val, Y_val)
    """
    grid = [0.0, *np.logspace(-2, 2, 5).tolist()] if grid is None else list(grid)
    if method not in ("grid", "ift"):
        raise ValueError(f'`method` must be "grid" or "ift". Got {method!r} instead.')
    if method == "ift":
        from surrogates.bilevel import tune_ensemble_ift

        positive = [float(g) for g in grid if g > 0]
        if train is None or len(positive) < 2:
            raise ValueError('`method="ift"` needs `train=(X, Y)` and at least two positive weights in `grid`.')
        low, high = min(positive), max(positive)
        start = math.sqrt(low * high)
        model = fit(PhysicsTerm(term.name, start, term.residual, term.energy, term.points))
        unit = PhysicsTerm(term.name, 1.0, term.residual, term.energy, term.points)
        best, history = tune_ensemble_ift(
            model, [unit], train[0], train[1], X_val, Y_val, start, (low, high), **ift_options
        )
        return best, history[["weight", "val_nll", "val_rmse"]]
    rows = []
    for weight in grid:
        model = fit(PhysicsTerm(term.name, float(weight), term.residual, term.energy, term.points))
        with torch.no_grad():
            post = model.posterior(X_val, observation_noise=True)
            mean, var = post.mean.reshape(Y_val.shape), post.variance.reshape(Y_val.shape)
        seen = ~torch.isnan(Y_val)
        nll = 0.5 * (torch.log(2 * torch.pi * var) + (Y_val - mean).square() / var)
        rows.append(
            {
                "weight": float(weight),
                "val_nll": float(nll[seen].mean()),
                "val_rmse": float((Y_val - mean)[seen].square().mean().sqrt()),
            }
        )
    table_df = pd.DataFrame(rows)
    return float(table_df.loc[table_df["val_nll"].idxmin(), "weight"]), table_df
