"""Surrogates as a campaign config's `surrogate` section describes them (shared by proposals and reports)."""

from __future__ import annotations

import pandas as pd
import torch
from botorch.models import ModelListGP
from torch import Tensor

from campaigns.config import CampaignConfig, dump_config
from campaigns.large_data import hyperparameter_rows
from campaigns.model_cache import CachedFit, ModelCache, fingerprint
from design import SearchSpace
from design.parameters import CategoricalParameter
from surrogates import (
    NeuralClassifierEnsemble,
    NeuralEnsemble,
    TrainingOptions,
    fit_outcome_models,
    mean_from_config,
    physics_terms_from_config,
)


def trust_weights(config: CampaignConfig, measured_df: pd.DataFrame) -> Tensor | None:
    """The rows' trust weights (the optional `weight` column, 1 where empty), or None when all are 1."""
    column = config.weight_column
    if column not in measured_df:
        return None
    w = pd.to_numeric(measured_df[column], errors="coerce").fillna(1.0).to_numpy(dtype=float)
    return None if (w == 1.0).all() else torch.tensor(w, dtype=torch.double)


def input_names(space: SearchSpace) -> list[str]:
    """A name per encoded column: scalar parameters, then `<sequence>[k]` for one-hot columns."""
    names = [p.name for p in space.scalars]
    for p in space.sequences:
        names += [f"{p.name}[{k}]" for k in range(p.n_columns)]
    return names


def mean_modules(config: CampaignConfig, space: SearchSpace) -> list | None:
    """GP mean modules per regression outcome from `surrogate.mean` (fresh ones each call), or None."""
    entry = config.surrogate.mean
    if entry is None:
        return None
    outcomes = config.regression_outcomes
    ranges = {}
    for p in space.scalars:
        if not isinstance(p, CategoricalParameter):
            ranges[p.name] = (float(p.bounds[0]), float(p.bounds[1]), bool(getattr(p, "log", False)))
    module = mean_from_config(entry.model_dump(), input_names(space), ranges)
    target = entry.outcome or outcomes[0]
    return [module if name == target else None for name in outcomes]


def physics_terms(config: CampaignConfig, space: SearchSpace) -> list:
    """The ensemble's `PhysicsTerm`s from `surrogate.physics` (inputs in encoded coordinates)."""
    keys = {
        "monotonic": ("kind", "input", "outcome", "weight", "increasing"),
        "bounded": ("kind", "outcome", "weight", "lower", "upper"),
        "saturating": ("kind", "input", "outcome", "weight"),
    }
    outcomes = config.regression_outcomes
    entries = []
    for term in config.surrogate.physics:
        entry = {k: v for k, v in term.model_dump().items() if k in keys[term.kind] and v is not None}
        entry["outcome"] = term.outcome or outcomes[0]
        entries.append(entry)
    return physics_terms_from_config(entries, input_names(space), outcomes)


def make_ensemble(config: CampaignConfig, space: SearchSpace) -> NeuralEnsemble:
    """An unfitted `NeuralEnsemble` as the config's `surrogate` section describes it."""
    sur = config.surrogate
    return NeuralEnsemble(
        sur.members,
        training=TrainingOptions(epochs=sur.epochs),
        sequence_blocks=space.sequence_blocks or None,
        physics=physics_terms(config, space),
        seed=config.seed,
    )


def make_classifier(config: CampaignConfig, space: SearchSpace) -> NeuralClassifierEnsemble:
    """An unfitted class-weighted ("balanced") classifier ensemble for a binary outcome."""
    sur = config.surrogate
    return NeuralClassifierEnsemble(
        sur.members,
        training=TrainingOptions(epochs=sur.epochs),
        sequence_blocks=space.sequence_blocks or None,
        class_weight="balanced",
        seed=config.seed,
    )


def fit_gps(
    config: CampaignConfig,
    space: SearchSpace,
    X: Tensor,
    Y: Tensor,
    weights: Tensor | None,
    cache: ModelCache | None,
    notes: list[str],
) -> ModelListGP:
    """One GP per regression outcome: loaded from `cache` for the very same data, else fitted.

    Above `HYPER_ROWS` rows the hyperparameters are fitted to a seeded sample of that many and
    the GPs then condition on every row (`campaigns.large_data`).
    """
    given = dict(zip(config.outcomes, config.noise_sd, strict=True))
    noise_sd = [given[name] for name in config.regression_outcomes]

    def fit(rows=None, starts=None, refit=True):
        pick = slice(None) if rows is None else torch.as_tensor(rows)
        w = None if weights is None else weights[pick]
        means = mean_modules(config, space)
        return fit_outcome_models(
            X[pick], Y[pick], list(space.cat_dims), noise_sd, mean_modules=means, weights=w, starts=starts, refit=refit
        )

    key = fingerprint(dump_config(config), X, Y, weights)
    hit = None if cache is None else cache.find(key, notes)
    if hit is not None:
        try:
            return fit(starts=hit.states, refit=False)
        except (RuntimeError, KeyError) as err:  # states that do not fit this model
            notes.append(f"the cached model did not fit this campaign ({type(err).__name__}); refitting.")
    sample = hyperparameter_rows(len(X), config.seed)
    model = fit(sample)
    states = [{k: v.detach().clone() for k, v in gp.state_dict().items()} for gp in model.models]
    if sample is not None:
        notes.append(f"the GPs' hyperparameters were fitted to {len(sample)} of the {len(X)} rows, drawn at random.")
        model = fit(starts=states, refit=False)
    if cache is not None:
        cache.save(CachedFit(key, states))
    return model
