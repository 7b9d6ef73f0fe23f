"""Turns a campaign's measurements into the next batch: fit, acquire, choose, decode, predict."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from linear_operator.utils.warnings import NumericalWarning
from torch import Tensor

from campaigns.campaign_model import (
    CampaignModel,
    campaign_tensors,
    fit_campaign_model,
    fit_feasibility,
    fit_outcomes,
    measured_safe,
)
from campaigns.config import CampaignConfig
from campaigns.model_cache import ModelCache
from campaigns.surrogate_builders import make_classifier
from design import SearchSpace, candidate_pool, probability_safe
from design.batch_policy import (
    Batch,
    BatchRequest,
    SafetyRule,
    choose_batch,
    matches_any,
    meets_confidence,
    spread_batch,
)
from design.bo import rows_of
from surrogates.kernel_shapes import fixed_kernel_shapes


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
    cache: ModelCache | None = None,
    claims_df: pd.DataFrame | None = None,
) -> Proposal:
    """Propose `n` distinct designs from the measurements so far.

    With at least `d + 1` measurements of every outcome, the campaign model is fitted
    (`campaigns.campaign_model`: one GP per outcome, or the ensemble) and the acquisition
    function (qLogNEI, or qLogNEHVI for several objectives; safety limits as outcome
    constraints; open proposals pending; weighted by P(success) when runs have failed) chooses
    the batch over the space or over `candidates_df`. With safety limits, every design must reach
    P(all limits hold) >= the config's confidence (`probabilistic` mode), or come from the safe
    set (`safe_set` mode, see `design.safe_set`); when none does, the designs closest to safe are
    proposed, flagged in `meets_confidence` and in a note. With too few data, or if the model
    cannot be fitted, a space-filling design is returned instead, and a note says why. Above
    `MAX_GP_ROWS` rows the GPs learn from a subset of them (`campaigns.large_data`), with a note.
    A `cache` (`campaigns.model_cache`) saves refitting GPs to data they have seen. `claims_df`,
    the campaign's measured proposals, widens the safety GPs where earlier claims failed
    (`campaigns.campaign_model.claim_errors`); each row records the widening as `<outcome>_widened`.
    The same `seed` and data give the same proposals.
    """
    # botorch draws from torch's global generator in places (baseline pruning, fit restarts):
    # it is seeded for this call only.
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        space = config.space()
        X_pending = space.encode(pending_df) if len(pending_df) else None
        X_pool = space.encode(candidates_df) if candidates_df is not None else None
        if config.binary_outcomes:
            data = campaign_tensors(config, measured_df)
            inputs = _Inputs(space, data.X, data.Y, data.failed, data.weights, X_pending, X_pool, candidates_df)
            return _propose_binary(config, inputs, n, seed)
        fitted = fit_campaign_model(config, measured_df, seed, cache, claims_df)
        model, feasibility, X, Y, notes = fitted.model, fitted.feasibility, fitted.X, fitted.Y, fitted.notes
        config = fitted.config  # limits and objectives on the model's scale
        batch, method = None, "space-filling"
        if model is not None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", NumericalWarning)  # routine 1e-8 jitter notices
                    request = _request(config, space, X, Y, X_pending, X_pool, feasibility)
                    with fixed_kernel_shapes(model):
                        batch = choose_batch(model, request, n, seed, notes)
                method = "qLogNEHVI" if len(config.objectives) > 1 else "qLogNEI"
                if config.safety_mode == "safe_set" and config.safety:
                    method += " + safe set"
            except Exception as err:  # noqa: BLE001 - any numerical failure falls back, said in a note
                notes.append(f"acquisition failed ({type(err).__name__}: {err}); used a space-filling design.")
        if batch is None:
            batch = spread_batch(space, n, X if X_pending is None else torch.cat([X, X_pending]), X_pool, seed)
        if candidates_df is None:
            table = space.decode(batch.X)
        else:  # the pool's own rows, values exactly as given
            assert X_pool is not None
            table = candidates_df.iloc[rows_of(X_pool, batch.X)][config.parameter_names].copy()
        table = _with_predictions(fitted, table, batch)
        return Proposal(table, method, notes)


def _request(config: CampaignConfig, space: SearchSpace, fitted_X, Y, X_pending, X_pool, feasibility) -> BatchRequest:
    """The batch policy's inputs from a config whose limits and objectives are on the model's scale."""
    settings = config.acquisition
    return BatchRequest(
        space=space,
        objectives=config.objectives,
        outcomes=config.outcomes,
        rule=safety_rule(config),
        X=fitted_X,
        Y=Y,
        X_safe=fitted_X[torch.as_tensor(measured_safe(config, Y))],
        X_pending=X_pending,
        X_pool=X_pool,
        effort=settings.effort(mixed=bool(space.cat_dims or space.discrete_dims)),
        mc_samples=settings.mc_samples,
        feasibility=feasibility,
    )


def safety_rule(config: CampaignConfig) -> SafetyRule:
    """The config's limits, confidence and mode as the batch policy takes them."""
    return SafetyRule(
        list(config.safety),
        config.confidence,
        config.safety_mode,
        config.safety_expander,
        config.safety_spread,
        config.safety_explore,
    )


@dataclass
class _Inputs:
    space: SearchSpace
    X: Tensor
    Y: Tensor
    failed: np.ndarray
    weights: Tensor | None
    X_pending: Tensor | None
    X_pool: Tensor | None
    candidates_df: pd.DataFrame | None


def _propose_binary(config: CampaignConfig, data: _Inputs, n: int, seed: int) -> Proposal:
    """A binary objective: the designs of a candidate pool with the highest P(objective = 1) (or = 0).

    A class-weighted classifier ensemble learns P(1); any continuous (safety) outcomes get the
    regression surrogate. Candidates (the `candidates` table, or a Sobol pool plus steps around
    the measured designs) that reach P(safe) >= confidence are ranked by P(goal) times P(success)
    once runs have failed, and the best `n` not measured or pending yet are proposed. Short of
    confident ones, the highest-P(safe) designs fill the batch, flagged. With too few labels, or
    only one class seen, the batch is space-filling.
    """
    space, X, Y = data.space, data.X, data.Y
    notes: list[str] = []
    objective = config.objectives[0]
    name = objective.name
    labels = Y[:, config.outcomes.index(name)]
    regression = [config.outcomes.index(o) for o in config.regression_outcomes]
    seen = ~torch.isnan(labels)
    classifier = model = feasibility = None
    n_pos = int((labels[seen] == 1).sum())
    distinct = len(torch.unique(data.X[seen], dim=0))
    if distinct < space.n_choices + 1 or n_pos in (0, int(seen.sum())):
        notes.append(
            f"{distinct} distinct design(s) successfully measured for {name!r} with {n_pos} positive(s); the "
            f"classifier needs at least {space.n_choices + 1} (parameters + 1) and both 0 and 1, so this batch is a "
            "space-filling design."
        )
    else:
        if regression:
            fitted = fit_outcomes(config, space, X, Y[:, regression], data.weights, seed)
            model = fitted.model
            notes.extend(fitted.notes)
        if model is not None or not regression:
            w = None if data.weights is None else data.weights[seen]
            try:
                classifier = make_classifier(config, space).fit(X[seen], labels[seen], weights=w)
            except Exception as err:  # noqa: BLE001
                notes.append(f"the classifier of {name!r} could not be fitted ({type(err).__name__}: {err}).")
    if classifier is not None:
        feasibility = fit_feasibility(X, data.failed, notes)
        batch = _binary_batch(config, data, classifier, model, feasibility, n, seed, notes)
        method = f"P({name} = {1 if objective.goal == 'maximize' else 0}) ranking"
    else:
        X_existing = X if data.X_pending is None else torch.cat([X, data.X_pending])
        batch, method = spread_batch(space, n, X_existing, data.X_pool, seed), "space-filling"
    if data.candidates_df is None:
        table = space.decode(batch.X)
    else:
        assert data.X_pool is not None
        table = data.candidates_df.iloc[rows_of(data.X_pool, batch.X)][config.parameter_names].copy()
    return Proposal(_binary_predictions(config, table, classifier, model, feasibility, batch), method, notes)


def _binary_batch(config, data: _Inputs, classifier, model, feasibility, n: int, seed: int, notes) -> Batch:
    space, X = data.space, data.X
    regression = config.regression_outcomes
    if data.X_pool is not None:
        pool = data.X_pool
    else:
        X_safe = X[torch.as_tensor(measured_safe(config, data.Y, config.outcomes))] if config.safety else X
        pool = candidate_pool(space, X_safe if len(X_safe) else X, seed=seed)
    taken = X if data.X_pending is None else torch.cat([X, data.X_pending])
    pool = pool[~matches_any(pool, taken)]
    with torch.no_grad():
        p = classifier.predict_proba(pool)
        score = p if config.objectives[0].goal == "maximize" else 1 - p
        if feasibility is not None:
            score = score * feasibility.probability(pool)
    if config.safety:
        p_safe = probability_safe(model, pool, config.safety, regression)
        confident = meets_confidence(p_safe, config.confidence)
    else:
        p_safe, confident = torch.ones(len(pool), dtype=pool.dtype), torch.ones(len(pool), dtype=torch.bool)
    order = torch.argsort(torch.where(confident, score, torch.full_like(score, -1.0)), descending=True)
    picks = [int(i) for i in order[: min(n, int(confident.sum()))]]
    roles = ["optimize"] * len(picks)
    if len(picks) < n and config.safety:
        rest = [int(i) for i in torch.argsort(p_safe, descending=True) if not bool(confident[i])][: n - len(picks)]
        if rest:
            notes.append(
                f"not enough designs reach P(safe) >= {config.confidence:g}; {len(rest)} design(s) with the highest "
                "P(safe) are added. They are NOT known to be safe: see `meets_confidence` and `p_safe`."
            )
        picks, roles = picks + rest, roles + ["closest-to-safe"] * len(rest)
    if len(picks) < n:
        notes.append(f"only {len(picks)} distinct design(s) could be proposed.")
    return Batch(pool[picks], roles)


def _binary_predictions(config, table: pd.DataFrame, classifier, model, feasibility, batch: Batch) -> pd.DataFrame:
    """`p_<binary>`, then `<outcome>_mean` and `<outcome>_sd` of the other outcomes, `p_safe` and friends."""
    table = table.copy()
    X_new, rows = batch.X, len(table)
    name = config.binary_outcomes[0]
    regression = config.regression_outcomes
    with torch.no_grad():
        table[f"p_{name}"] = classifier.predict_proba(X_new).numpy() if classifier is not None and rows else np.nan
        if model is not None and rows:
            posterior = model.posterior(X_new, observation_noise=True)
            mean, sd = posterior.mean.numpy(), posterior.variance.clamp_min(0).sqrt().numpy()
        else:
            mean = sd = np.full((rows, len(regression)), np.nan)
    for j, outcome in enumerate(regression):
        table[f"{outcome}_mean"] = mean[:, j]
        table[f"{outcome}_sd"] = sd[:, j]
    if config.safety:
        p_safe = (
            probability_safe(model, X_new, config.safety, regression).numpy()
            if model is not None and rows
            else np.full(rows, np.nan)
        )
        table["p_safe"] = p_safe
        table["meets_confidence"] = meets_confidence(p_safe, config.confidence)
    if feasibility is not None:
        with torch.no_grad():
            table["p_feasible"] = feasibility.probability(X_new).numpy()
    table["role"] = batch.roles
    return table


def _with_predictions(fitted: CampaignModel, table: pd.DataFrame, batch: Batch) -> pd.DataFrame:
    """Append `<outcome>_mean`, `<outcome>_sd` (of a new measurement) in the outcomes' units, `p_safe` and friends."""
    table = table.copy()
    config, X_new = fitted.config, batch.X
    if fitted.model is None or len(table) == 0:
        mean = sd = np.full((len(table), len(config.outcomes)), np.nan)
        p_safe = np.full(len(table), np.nan)
    else:
        mean, sd = (t.numpy() for t in fitted.predict(X_new))
        p_safe = fitted.p_safe(X_new).numpy()
    for j, name in enumerate(config.outcomes):
        table[f"{name}_mean"] = mean[:, j]
        table[f"{name}_sd"] = sd[:, j]
    if config.safety:
        table["p_safe"] = p_safe
        table["meets_confidence"] = meets_confidence(p_safe, config.confidence)
    for name, factor in fitted.widened.items():  # what the next fit's `claim_errors` divides out
        table[f"{name}_widened"] = factor
    if fitted.feasibility is not None:
        with torch.no_grad():
            table["p_feasible"] = fitted.feasibility.probability(X_new).numpy()
    if config.safety or fitted.feasibility is not None:
        table["role"] = batch.roles
    return table
