"""Can a surrogate be trusted? k-fold cross-validation: accuracy, likelihood and interval coverage per outcome."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import norm
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import KFold
from torch import Tensor

from surrogates.ensemble import NeuralEnsemble
from surrogates.gp import fit_outcome_models

FitPredict = Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]

# Thresholds of `calibration_verdict`. With k-fold CV on a few dozen points, the observed
# coverage of a calibrated 95 % interval scatters by a few points (binomial sd ~ 3 % at n = 50),
# so 0.85 flags intervals that are clearly too narrow (overconfident: unsafe for safety limits)
# and 0.995 intervals that are clearly too wide (everything inside: uninformative).
COVERAGE_95_LOW = 0.85
COVERAGE_95_HIGH = 0.995


def cross_validate(
    fit_predict: FitPredict,
    X: Tensor,
    Y: Tensor,
    k: int = 5,
    seed: int = 0,
    outcome_names: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """k-fold cross-validation of a surrogate: a table with one row per outcome, and the predictions.

    Folds come from `sklearn.model_selection.KFold(k, shuffle=True, random_state=seed)`. For
    each fold, `fit_predict(X_train, Y_train, X_test)` fits on the other folds and returns the
    predictive mean and variance of a new measurement (observation noise included) at
    `X_test`. Each outcome is scored on its measured (non-NaN) rows: R2 and RMSE
    (scikit-learn), the mean Gaussian negative log-likelihood per point, and the share of
    held-out values inside the central 68 % and 95 % predictive intervals.

    Args:
        fit_predict: See above; `fit_predict_gp` and `fit_predict_ensemble` are ready-made.
        X: A `n x d` tensor of inputs.
        Y: A `n x m` tensor of outcomes (NaN: not measured).
        k: Number of folds (at most `n`).
        seed: Seed of the fold assignment.
        outcome_names: Names for the `outcome` column (default `y0, y1, ...`).

    Returns:
        `(cv_df, oof_df)`: `cv_df` has columns `outcome, n, r2, rmse, nll, coverage_68,
        coverage_95, verdict`; `oof_df` holds the out-of-fold predictions (columns `row, fold,
        outcome, y, mean, sd`) for parity and calibration plots.

    Raises:
        ValueError: If `k` is not in `[2, n]`.

    Example:
        >>> cv_df, oof_df = cross_validate(fit_predict_gp, X, Y, k=5)
        >>> cv_df[["outcome", "r2", "coverage_95"]]
    """
    Y = Y.reshape(len(Y), -1)
    n, m = Y.shape
    if not 2 <= k <= n:
        raise ValueError(f"`k` must lie in [2, {n}] (the number of rows). Got {k!r} instead.")
    names = list(outcome_names) if outcome_names is not None else [f"y{j}" for j in range(m)]
    mean, var, fold = np.full((n, m), np.nan), np.full((n, m), np.nan), np.zeros(n, dtype=int)
    for f, (train, test) in enumerate(KFold(k, shuffle=True, random_state=seed).split(np.arange(n))):
        mu, v = fit_predict(X[train], Y[train], X[test])
        mean[test], var[test], fold[test] = _numpy(mu, len(test)), _numpy(v, len(test)), f
    y = Y.detach().cpu().numpy().astype(float)
    oof_df = pd.DataFrame(
        {
            "row": np.tile(np.arange(n), m),
            "fold": np.tile(fold, m),
            "outcome": np.repeat(names, n),
            "y": y.T.ravel(),
            "mean": mean.T.ravel(),
            "sd": np.sqrt(np.clip(var, 1e-300, None)).T.ravel(),
        }
    ).dropna(subset=["y"])
    cv_df = pd.DataFrame([_scores(name, group) for name, group in oof_df.groupby("outcome", sort=False)])
    cv_df["verdict"] = [calibration_verdict(row) for _, row in cv_df.iterrows()]
    return cv_df, oof_df.reset_index(drop=True)


def _numpy(t: Any, rows: int) -> np.ndarray:
    a = t.detach().cpu().numpy() if isinstance(t, Tensor) else np.asarray(t)
    return a.astype(float).reshape(rows, -1)


def _scores(name: str, group: pd.DataFrame) -> dict[str, Any]:
    y, mu, sd = group["y"].to_numpy(), group["mean"].to_numpy(), group["sd"].to_numpy()
    z = np.abs(y - mu) / sd
    return {
        "outcome": name,
        "n": len(y),
        "r2": r2_score(y, mu) if len(y) > 1 else np.nan,
        "rmse": float(np.sqrt(mean_squared_error(y, mu))),
        "nll": float(np.mean(-norm.logpdf(y, mu, sd))),
        "coverage_68": float(np.mean(z <= norm.ppf(0.84))),
        "coverage_95": float(np.mean(z <= norm.ppf(0.975))),
    }


def calibration_verdict(row: pd.Series | dict, limited: bool | None = None) -> str:
    """One line on whether an outcome's predictive intervals can be trusted.

    Poorly calibrated when the held-out coverage of the 95 % interval is below
    `COVERAGE_95_LOW` (0.85: intervals too narrow, the model is overconfident) or above
    `COVERAGE_95_HIGH` (0.995: intervals too wide to be informative); otherwise well calibrated.

    Args:
        row: A row of `cross_validate`'s table (needs `outcome` and `coverage_95`).
        limited: Whether the outcome has a safety limit (its p_safe is then what to doubt), or
            not (its predicted range is); None: unknown, both are named.

    Returns:
        A sentence that starts with "well calibrated" or "poorly calibrated".
    """
    cover = float(row["coverage_95"])
    name = row.get("outcome", "outcome")
    if cover < COVERAGE_95_LOW:
        return (
            f"poorly calibrated: {name}'s 95% intervals hold {cover:.0%} of held-out measurements "
            f"(below {COVERAGE_95_LOW:.0%}); the model is overconfident, {_doubt(limited)}"
        )
    if cover > COVERAGE_95_HIGH:
        return (
            f"poorly calibrated: {name}'s 95% intervals hold {cover:.1%} of held-out measurements "
            f"(above {COVERAGE_95_HIGH:.1%}); the intervals are too wide to be informative."
        )
    return f"well calibrated: {name}'s 95% intervals hold {cover:.0%} of held-out measurements."


def _doubt(limited: bool | None) -> str:
    if limited:
        return "so treat p_safe with caution."
    if limited is None:
        return "so treat its intervals (and p_safe, for a safety outcome) with caution."
    return "so expect measurements outside its predicted intervals more often than they say."


def fit_predict_gp(
    X_train: Tensor, Y_train: Tensor, X_test: Tensor, cat_dims: list[int] | None = None, **options: Any
) -> tuple[Tensor, Tensor]:
    """`fit_predict` for `cross_validate` with `fit_outcome_models` (extra options go to it).

    Returns the predictive mean and variance (observation noise included), each `n_test x m`.
    Bind `cat_dims` and options with `functools.partial`.
    """
    model = fit_outcome_models(X_train, Y_train.reshape(len(Y_train), -1), cat_dims, **options)
    with torch.no_grad():
        post = model.posterior(X_test, observation_noise=True)
    return post.mean, post.variance


def fit_predict_ensemble(X_train: Tensor, Y_train: Tensor, X_test: Tensor, **options: Any) -> tuple[Tensor, Tensor]:
    """`fit_predict` for `cross_validate` with `NeuralEnsemble(**options)`.

    Returns the predictive mean and total variance (noise + disagreement), each `n_test x m`.
    """
    model = NeuralEnsemble(**options).fit(X_train, Y_train)
    with torch.no_grad():
        return model.predict(X_test)
