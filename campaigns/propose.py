"""Turns a campaign's measurements into the next batch: fit, acquire, decode, predict."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from campaigns.config import CampaignConfig
from design import (
    SearchSpace,
    choose_from_pool,
    make_acquisition,
    optimize_batch,
    probability_safe,
    space_filling,
    spread_rows,
)
from surrogates import SurrogateWarning, fit_outcome_models


@dataclass
class Proposal:
    """A batch of proposed designs and how it was made."""

    table: pd.DataFrame
    method: str
    notes: list[str] = field(default_factory=list)


def make_proposals(
    config: CampaignConfig,
    measured_df: pd.DataFrame,
    pending_df: pd.DataFrame,
    n: int,
    candidates_df: pd.DataFrame | None = None,
    seed: int = 0,
) -> Proposal:
    """Propose `n` designs from the measurements so far.

    With at least `d + 1` measurements of every outcome, one GP per outcome is fitted and
    qLogNEI (safety limits as outcome constraints, open proposals as pending points) chooses the
    batch, over the whole space or over the rows of `candidates_df`. With fewer, or if the model
    cannot be fitted, a space-filling design is returned instead, and `notes` says why.
    """
    space = config.space()
    outcomes = config.outcomes
    X = space.encode(measured_df)
    Y = torch.tensor(measured_df[outcomes].to_numpy(dtype=float), dtype=torch.double).reshape(-1, len(outcomes))
    X_pending = space.encode(pending_df) if len(pending_df) else None
    X_pool = space.encode(candidates_df) if candidates_df is not None else None
    notes: list[str] = []

    model = _fit(space, X, Y, outcomes, notes)
    X_new, method = None, "space-filling"
    if model is not None:
        try:
            X_new = _acquire(config, space, model, X, X_pending, X_pool, n, seed)
            method = "qLogNEI"
        except Exception as err:  # noqa: BLE001 - any numerical failure falls back, said in a note
            notes.append(f"acquisition failed ({type(err).__name__}: {err}); used a space-filling design.")
    if X_new is None:
        X_existing = X if X_pending is None else torch.cat([X, X_pending])
        X_new = _spread(space, n, X_existing, X_pool, seed)
    table = space.decode(X_new)
    if candidates_df is not None:
        table.index = candidates_df.index[_rows_of(X_pool, X_new)]
    ok = space.feasible(table)
    if not ok.all():
        notes.append(f"dropped {int((~ok).sum())} design(s) that broke a constraint after rounding.")
        table, X_new = table[ok], X_new[torch.as_tensor(ok)]
    return Proposal(_with_predictions(config, table, model, X_new), method, notes)


def _fit(space: SearchSpace, X: torch.Tensor, Y: torch.Tensor, outcomes: list[str], notes: list[str]):
    counts = (~torch.isnan(Y)).sum(dim=0)
    fewest = int(counts.min()) if len(counts) else 0
    if fewest < space.d + 1:
        name = outcomes[int(counts.argmin())]
        notes.append(
            f"{fewest} measurement(s) of {name!r}; a model needs at least {space.d + 1} "
            "(parameters + 1), so this batch is a space-filling design."
        )
        return None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SurrogateWarning)
            model = fit_outcome_models(X, Y, list(space.cat_dims))
        notes.extend(str(w.message) for w in caught if issubclass(w.category, SurrogateWarning))
        return model
    except Exception as err:  # noqa: BLE001
        notes.append(f"model fit failed ({type(err).__name__}: {err}); used a space-filling design.")
        return None


def _acquire(config, space, model, X, X_pending, X_pool, n, seed) -> torch.Tensor:
    settings = config.acquisition
    acqf = make_acquisition(
        model, X, config.objectives[0], config.safety, config.outcomes, X_pending, seed, settings.mc_samples
    )
    if X_pool is not None:
        return X_pool[choose_from_pool(acqf, X_pool, n)]
    return optimize_batch(acqf, space, n, seed, settings.num_restarts, settings.raw_samples)


def _spread(space, n, X_existing, X_pool, seed) -> torch.Tensor:
    if X_pool is None:
        return space_filling(space, n, X_existing, seed)
    return X_pool[spread_rows(X_pool, n, X_existing, space.cat_dims)]


def _rows_of(X_pool: torch.Tensor, X_new: torch.Tensor) -> list[int]:
    return [int((X_pool == x).all(dim=-1).nonzero()[0]) for x in X_new]


def _with_predictions(config: CampaignConfig, table: pd.DataFrame, model, X_new: torch.Tensor) -> pd.DataFrame:
    """Append `<outcome>_mean`, `<outcome>_sd` (of a new measurement) and `p_safe`."""
    table = table.copy()
    m = len(config.outcomes)
    if model is None or len(table) == 0:
        mean = sd = np.full((len(table), m), np.nan)
        p_safe = np.full(len(table), np.nan)
    else:
        with torch.no_grad():
            posterior = model.posterior(X_new, observation_noise=True)
            mean = posterior.mean.numpy()
            sd = posterior.variance.clamp_min(0).sqrt().numpy()
        p_safe = probability_safe(model, X_new, config.safety, config.outcomes).numpy()
    for j, name in enumerate(config.outcomes):
        table[f"{name}_mean"] = mean[:, j]
        table[f"{name}_sd"] = sd[:, j]
    if config.safety:
        table["p_safe"] = p_safe
    return table
