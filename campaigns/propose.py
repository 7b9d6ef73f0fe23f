"""Turns a campaign's measurements into the next batch: fit, acquire, choose, decode, predict."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cache, partial

import numpy as np
import pandas as pd
import torch
from linear_operator.utils.warnings import NumericalWarning
from torch import Tensor

from campaigns.config import CampaignConfig
from campaigns.large_data import MAX_GP_ROWS, goal_score, gp_rows
from campaigns.model_cache import ModelCache
from campaigns.surrogate_builders import fit_gps, make_classifier, make_ensemble, trust_weights
from design import (
    ConfidenceBarrier,
    FeasibilityWeighted,
    SearchSpace,
    candidate_pool,
    choose_from_pool,
    least_violation_samples,
    limits_hold,
    make_acquisition,
    optimize_batch,
    probability_safe,
    probability_safe_grad,
    space_filling,
    spread_rows,
)
from design.safe_set import reach_per_input, safe_set, small_steps
from design.warp import OutcomeWarp
from surrogates import FeasibilityModel, SurrogateWarning
from surrogates.calibration import calibrate

FAILED = "failed"  # optional column: a run that failed (its outcomes, if any, are ignored)
WIDENED = 1.5  # say so when a safety model's uncertainty is widened more than this


@dataclass
class Proposal:
    """A batch of proposed designs and how it was made."""

    table: pd.DataFrame
    method: str
    notes: list[str] = field(default_factory=list)


@dataclass
class _Batch:
    X: Tensor
    roles: list[str]


def make_proposals(
    config: CampaignConfig,
    measured_df: pd.DataFrame,
    pending_df: pd.DataFrame,
    n: int,
    candidates_df: pd.DataFrame | None = None,
    seed: int = 0,
    cache: ModelCache | None = None,
) -> Proposal:
    """Propose `n` distinct designs from the measurements so far.

    With at least `d + 1` measurements of every outcome, one GP per outcome is fitted and the
    acquisition function (qLogNEI, or qLogNEHVI for several objectives; safety limits as outcome
    constraints; open proposals pending; weighted by P(success) when runs have failed) chooses
    the batch over the space or over `candidates_df`. With safety limits, every design must reach
    P(all limits hold) >= the config's confidence (`probabilistic` mode), or come from the safe
    set (`safe_set` mode, see `design.safe_set`); when none does, the designs closest to safe are
    proposed, flagged in `meets_confidence` and in a note. With too few data, or if the model
    cannot be fitted, a space-filling design is returned instead, and a note says why. Above
    `MAX_GP_ROWS` rows the GPs learn from a subset of them (`campaigns.large_data`), with a note.
    A `cache` (`campaigns.model_cache`) saves refitting GPs to data they have seen.
    """
    space = config.space()
    X = space.encode(measured_df)
    failed = _failed(measured_df, config)
    Y = torch.tensor(measured_df[config.outcomes].to_numpy(dtype=float), dtype=torch.double)
    Y = Y.reshape(-1, len(config.outcomes))
    Y[torch.tensor(failed)] = float("nan")
    X_pending = space.encode(pending_df) if len(pending_df) else None
    X_pool = space.encode(candidates_df) if candidates_df is not None else None
    weights = trust_weights(config, measured_df)
    if config.binary_outcomes:
        inputs = _Inputs(space, X, Y, failed, weights, X_pending, X_pool, candidates_df)
        return _propose_binary(config, inputs, n, seed)
    notes: list[str] = []
    warp = OutcomeWarp.of(config.objectives, config.safety, Y, config.outcomes)  # bilog limits, logged objectives
    notes.extend(warp.log_notes(config.objectives, Y, config.outcomes))
    goals = {"safety": warp.model_limits(config.safety), "objectives": warp.model_objectives(config.objectives)}
    config = config.model_copy(update=goals)
    Y = warp.apply(Y, config.outcomes)
    if config.surrogate_kind(len(X)) == "gp" and len(X) > MAX_GP_ROWS:
        rows = gp_rows(X, goal_score(config.objectives, config.outcomes, Y), _measured_safe(config, Y), seed=seed)
        notes.append(
            f"{len(X)} measurements: the GPs learn from {len(rows)} of them, the {len(rows) // 2} nearest the best "
            "designs and the rest drawn at random (an exact GP on all would take minutes; see README, Large campaigns)."
        )
        X, Y, failed = X[torch.as_tensor(rows)], Y[torch.as_tensor(rows)], failed[rows]
        weights = None if weights is None else weights[torch.as_tensor(rows)]

    model = fit_regression_model(config, space, X, Y, notes, weights, cache)
    feasibility = _fit_feasibility(X, failed, notes) if model is not None else None
    batch, method = None, "space-filling"
    if model is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NumericalWarning)  # routine 1e-8 jitter notices
                batch = _choose(config, space, model, feasibility, X, Y, X_pending, X_pool, n, seed, notes)
            method = "qLogNEHVI" if len(config.objectives) > 1 else "qLogNEI"
            if config.safety_mode == "safe_set" and config.safety:
                method += " + safe set"
        except Exception as err:  # noqa: BLE001 - any numerical failure falls back, said in a note
            notes.append(f"acquisition failed ({type(err).__name__}: {err}); used a space-filling design.")
    if batch is None:
        X_existing = X if X_pending is None else torch.cat([X, X_pending])
        X_new = _spread(space, n, X_existing, X_pool, seed)
        batch = _Batch(X_new, ["space-filling"] * X_new.shape[0])
    if candidates_df is None:
        table = space.decode(batch.X)
    else:  # the pool's own rows, values exactly as given
        table = candidates_df.iloc[_rows_of(X_pool, batch.X)][config.parameter_names].copy()
    table = _with_predictions(config, table, model, feasibility, batch, warp)
    return Proposal(table, method, notes)


def _choose(config, space, model, feasibility, X, Y, X_pending, X_pool, n, seed, notes) -> _Batch:
    settings = config.acquisition
    complete = ~torch.isnan(Y).any(dim=-1)
    acqf = make_acquisition(
        model, X[complete], config.objectives, config.safety, config.outcomes, X_pending, seed, settings.mc_samples
    )
    if feasibility is not None:
        acqf = FeasibilityWeighted(acqf, feasibility.probability)
    X_safe = X[torch.as_tensor(_measured_safe(config, Y))]

    @cache
    def pool() -> Tensor:  # built only on the paths that need it: with an equality it takes seconds
        return X_pool if X_pool is not None else candidate_pool(space, X_safe if len(X_safe) else X, seed=seed)

    def confident_pool() -> Tensor:
        return pool()[_confident(config, model, pool())]

    if config.safety:
        p_safe = partial(probability_safe_grad, model, safety=config.safety, outcomes=config.outcomes)
        acqf = ConfidenceBarrier(acqf, p_safe, config.confidence)

    if config.safety and len(X_safe) == 0:
        picks = least_violation_samples(model, pool(), config.safety, config.outcomes, n, seed)
        notes.append(
            "nothing measured so far is safe: these are the designs most likely to be safe under samples "
            "of the model (least violation, as in SCBO). They are NOT known to be safe: see `meets_confidence`."
        )
        return _Batch(pool()[picks], ["find-safe"] * len(picks))
    if config.safety and config.safety_mode == "safe_set":
        batch = _safe_set_batch(config, space, model, acqf, pool(), X_safe, n)
    elif X_pool is not None:
        eligible = confident_pool()
        batch = _Batch(eligible[choose_from_pool(acqf, eligible, n)], ["optimize"] * min(n, len(eligible)))
    else:
        restarts, raw = settings.effort(mixed=bool(space.cat_dims or space.discrete_dims))
        X_new = optimize_batch(acqf, space, n, seed, restarts, raw)
        keep = _confident(config, model, X_new) & _first_of_duplicates(X_new)
        if not keep.all():
            why = f"fell below P(safe) >= {config.confidence:g} or repeated another" if config.safety else "repeated"
            notes.append(f"{int((~keep).sum())} optimized design(s) {why}; replaced by the best candidates left.")
        batch = _Batch(X_new[keep], ["optimize"] * int(keep.sum()))
        if not keep.all():
            batch = _top_up(acqf, batch, confident_pool(), n, "optimize")
    if len(batch.roles) < n and config.safety_mode == "safe_set" and len(batch.roles) > 0:
        notes.append(
            f"only {len(batch.roles)} design(s) could be vouched for by the safe set; a smaller batch is "
            "proposed. Measure these and ask again: the safe set grows with every safe measurement."
        )
    elif len(batch.roles) < n and config.safety and config.safety_mode == "safe_set":
        batch = _closest_to_safe(config, model, _small_steps(config, space, model, X_safe, seed), batch, n, notes)
    elif len(batch.roles) < n and config.safety:
        batch = _closest_to_safe(config, model, pool(), batch, n, notes)
    if len(batch.roles) < n:
        notes.append(f"only {len(batch.roles)} distinct design(s) could be proposed.")
    return batch


def _safe_set_batch(config, space: SearchSpace, model, acqf, pool: Tensor, X_safe: Tensor, n: int) -> _Batch:
    """Half the batch (rounded down) to the strongest expanders, the rest by acquisition among maximizers."""
    objective = config.objectives[0] if len(config.objectives) == 1 else None
    sets = safe_set(
        model,
        pool,
        objective,
        config.safety,
        config.outcomes,
        config.confidence,
        X_safe,
        space.cat_dims,
        space.discrete_dims,
    )
    order = torch.argsort(sets.expansion, descending=True).tolist()
    expanders = [i for i in order if sets.expansion[i] > 0][: n // 2]
    batch = _Batch(pool[expanders], ["expand"] * len(expanders))
    taken = torch.zeros(pool.shape[0], dtype=torch.bool)
    taken[expanders] = True
    batch = _top_up(acqf, batch, pool[sets.maximizers & ~taken], n, "maximize")
    return _top_up(acqf, batch, pool[sets.safe & ~taken], n, "maximize")


def _small_steps(config, space: SearchSpace, model, X_safe: Tensor, seed: int) -> Tensor:
    """Feasible designs a small step from those measured safe (`design.safe_set.small_steps`)."""
    if space.botorch_constraints()[1]:  # a step would leave an equality's surface: the pool's own designs
        return candidate_pool(space, X_safe, seed=seed)
    limited = [config.outcomes.index(limit.name) for limit in config.safety]
    reach = reach_per_input(model, limited, X_safe.shape[-1], space.discrete_dims)
    steps = space.snap(small_steps(X_safe, reach, space.cat_dims, seed=seed).clamp(0.0, 1.0))
    feasible = torch.as_tensor(space.feasible(space.decode(steps)))
    return steps[feasible] if feasible.any() else candidate_pool(space, X_safe, seed=seed)


def _top_up(acqf, batch: _Batch, eligible: Tensor, n: int, role: str) -> _Batch:
    """Add the best rows of `eligible` (by acquisition, the batch so far pending) up to `n`."""
    need = n - len(batch.roles)
    if need <= 0 or eligible.shape[0] == 0:
        return batch
    fresh = eligible[~_matches_any(eligible, batch.X)]
    base = acqf.X_pending
    acqf.set_X_pending(batch.X if base is None else torch.cat([base, batch.X]))
    try:
        picks = choose_from_pool(acqf, fresh, need)
    finally:
        acqf.set_X_pending(base)
    return _Batch(torch.cat([batch.X, fresh[picks]]), batch.roles + [role] * len(picks))


def _closest_to_safe(config, model, pool: Tensor, batch: _Batch, n: int, notes: list[str]) -> _Batch:
    """Top the batch up with the designs of `pool` most likely safe, spread among the `4 n` best."""
    fresh = pool[~_matches_any(pool, batch.X)]
    p = probability_safe(model, fresh, config.safety, config.outcomes)
    need = n - len(batch.roles)
    top = torch.argsort(p, descending=True)[: 4 * n]
    picks = top[spread_rows(fresh[top], need, batch.X, {})]
    if config.safety_mode == "safe_set":
        short, where = "is in the safe set", "a small step from designs measured safe"
    else:
        short, where = f"reaches P(safe) >= {config.confidence:g}", "near the measured ones"
    notes.append(
        f"not enough designs {short} yet; {len(picks)} design(s) with the highest P(safe) (best "
        f"{float(p[top[0]]):.2f}) {where} are proposed. They are NOT known to be safe: see `meets_confidence` "
        "and `p_safe`."
    )
    return _Batch(torch.cat([batch.X, fresh[picks]]), batch.roles + ["closest-to-safe"] * len(picks))


def fit_regression_model(
    config: CampaignConfig,
    space: SearchSpace,
    X: Tensor,
    Y: Tensor,
    notes: list[str],
    weights=None,
    cache: ModelCache | None = None,
):
    """Fit the configured surrogate of `config.regression_outcomes` (the columns of `Y`), or None (why: in `notes`).

    With a `cache`, GPs already fitted to these very data are loaded instead of refitted
    (`campaigns.model_cache`).
    """
    outcomes = config.regression_outcomes
    # distinct designs, not rows: one design measured ten times pins the model down at one point only
    counts = [len(torch.unique(X[~torch.isnan(Y[:, j])], dim=0)) for j in range(Y.shape[-1])]
    fewest = min(counts, default=0)
    if fewest < space.d + 1:
        name = outcomes[counts.index(fewest)]
        notes.append(
            f"{fewest} distinct design(s) successfully measured for {name!r}; a model needs at least "
            f"{space.d + 1} (parameters + 1), so this batch is a space-filling design."
        )
        return None
    for limit in config.safety:
        y = Y[:, outcomes.index(limit.name)]
        if y[~torch.isnan(y)].unique().numel() == 1:
            notes.append(
                f"every measurement of {limit.name!r} is the same value: the model cannot tell yet where its limit "
                "breaks, so p_safe away from the measured designs rests on that one value. Measure designs that "
                "should change it."
            )
    kind = config.surrogate_kind(X.shape[0])
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SurrogateWarning)
            if kind == "ensemble":
                model = make_ensemble(config, space).fit(X, Y, weights=weights, bounds=space.bounds)
            else:
                model = fit_gps(config, space, X, Y, weights, cache, notes)
        notes.extend(str(w.message) for w in caught if issubclass(w.category, SurrogateWarning))
    except Exception as err:  # noqa: BLE001
        notes.append(f"model fit failed ({type(err).__name__}: {err}); used a space-filling design.")
        return None
    if kind == "ensemble":  # one model with m outputs: no per-outcome GP to recalibrate by leave-one-out
        why = "" if config.surrogate.kind == "ensemble" else f" (surrogate auto: {X.shape[0]} measurements)"
        notes.append(
            f"outcomes modelled by a neural ensemble of {config.surrogate.members} network(s){why}; "
            "check its calibration with `valley status` or `valley report`."
        )
        return model
    limited = list(dict.fromkeys(outcomes.index(limit.name) for limit in config.safety))
    small_sample = config.safety_mode == "safe_set"
    for j, factor in zip(limited, calibrate(model, limited, small_sample), strict=True):
        if factor > WIDENED:
            why = "few data; leave-one-out checks" if small_sample else "leave-one-out checks"
            notes.append(f"the uncertainty of {outcomes[j]!r} was widened {factor:.1f}x ({why}) before judging safety.")
    return model


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
    if distinct < space.d + 1 or n_pos in (0, int(seen.sum())):
        notes.append(
            f"{distinct} distinct design(s) successfully measured for {name!r} with {n_pos} positive(s); the "
            f"classifier needs at least {space.d + 1} (parameters + 1) and both 0 and 1, so this batch is a "
            "space-filling design."
        )
    else:
        model = fit_regression_model(config, space, X, Y[:, regression], notes, data.weights) if regression else None
        if model is not None or not regression:
            w = None if data.weights is None else data.weights[seen]
            try:
                classifier = make_classifier(config, space).fit(X[seen], labels[seen], weights=w)
            except Exception as err:  # noqa: BLE001
                notes.append(f"the classifier of {name!r} could not be fitted ({type(err).__name__}: {err}).")
    if classifier is not None:
        feasibility = _fit_feasibility(X, data.failed, notes)
        batch = _binary_batch(config, data, classifier, model, feasibility, n, seed, notes)
        method = f"P({name} = {1 if objective.goal == 'maximize' else 0}) ranking"
    else:
        X_existing = X if data.X_pending is None else torch.cat([X, data.X_pending])
        X_new = _spread(space, n, X_existing, data.X_pool, seed)
        batch, method = _Batch(X_new, ["space-filling"] * X_new.shape[0]), "space-filling"
    if data.candidates_df is None:
        table = space.decode(batch.X)
    else:
        table = data.candidates_df.iloc[_rows_of(data.X_pool, batch.X)][config.parameter_names].copy()
    return Proposal(_binary_predictions(config, table, classifier, model, feasibility, batch), method, notes)


def _binary_batch(config, data: _Inputs, classifier, model, feasibility, n: int, seed: int, notes) -> _Batch:
    space, X = data.space, data.X
    regression = config.regression_outcomes
    if data.X_pool is not None:
        pool = data.X_pool
    else:
        X_safe = X[torch.as_tensor(_measured_safe(config, data.Y))] if config.safety else X
        pool = candidate_pool(space, X_safe if len(X_safe) else X, seed=seed)
    taken = X if data.X_pending is None else torch.cat([X, data.X_pending])
    pool = pool[~_matches_any(pool, taken)]
    with torch.no_grad():
        p = classifier.predict_proba(pool)
        score = p if config.objectives[0].goal == "maximize" else 1 - p
        if feasibility is not None:
            score = score * feasibility.probability(pool)
    if config.safety:
        p_safe = probability_safe(model, pool, config.safety, regression)
        confident = p_safe >= config.confidence
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
    return _Batch(pool[picks], roles)


def _binary_predictions(config, table: pd.DataFrame, classifier, model, feasibility, batch: _Batch) -> pd.DataFrame:
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
        table["meets_confidence"] = p_safe >= config.confidence
    if feasibility is not None:
        with torch.no_grad():
            table["p_feasible"] = feasibility.probability(X_new).numpy()
    table["role"] = batch.roles
    return table


def _fit_feasibility(X: Tensor, failed: np.ndarray, notes: list[str]) -> FeasibilityModel | None:
    if not failed.any() or failed.all():
        return None
    try:
        return FeasibilityModel().fit(X, torch.as_tensor(~failed))
    except Exception as err:  # noqa: BLE001
        notes.append(f"the failure classifier could not be fitted ({type(err).__name__}); failures are ignored.")
        return None


def _failed(measured_df: pd.DataFrame, config: CampaignConfig) -> np.ndarray:
    """A run failed if it says so in the optional `failed` column or left any outcome empty."""
    flagged = measured_df[FAILED].fillna(False).astype(bool) if FAILED in measured_df else False
    return (measured_df[config.outcomes].isna().any(axis=1) | flagged).to_numpy(dtype=bool)


def _measured_safe(config: CampaignConfig, Y: Tensor) -> np.ndarray:
    """Rows whose regression outcomes were all measured and meet every safety limit."""
    measured = pd.DataFrame(Y.numpy(), columns=config.outcomes)
    return measured[config.regression_outcomes].notna().all(axis=1).to_numpy() & limits_hold(config.safety, measured)


def _confident(config: CampaignConfig, model, X: Tensor) -> Tensor:
    if not config.safety or X.shape[0] == 0:
        return torch.ones(X.shape[0], dtype=torch.bool)
    return probability_safe(model, X, config.safety, config.outcomes) >= config.confidence


def _matches_any(A: Tensor, B: Tensor) -> Tensor:
    if B.shape[0] == 0:
        return torch.zeros(A.shape[0], dtype=torch.bool)
    return (torch.cdist(A, B) < 1e-9).any(dim=1)


def _first_of_duplicates(X: Tensor) -> Tensor:
    close = torch.cdist(X, X) < 1e-9
    return ~torch.tril(close, diagonal=-1).any(dim=1)


def _spread(space, n, X_existing, X_pool, seed) -> Tensor:
    if X_pool is None:
        return space_filling(space, n, X_existing, seed)
    return X_pool[spread_rows(X_pool, n, X_existing, space.cat_dims)]


def _rows_of(X_pool: Tensor, X_new: Tensor) -> list[int]:
    return [int((X_pool == x).all(dim=-1).nonzero()[0]) for x in X_new]


def _with_predictions(
    config: CampaignConfig, table: pd.DataFrame, model, feasibility, batch: _Batch, warp: OutcomeWarp | None = None
) -> pd.DataFrame:
    """Append `<outcome>_mean`, `<outcome>_sd` (of a new measurement), `p_safe` and friends.

    With a `warp`, the model's warped safety outcomes are mapped back to the outcomes' units.
    """
    table = table.copy()
    m, X_new = len(config.outcomes), batch.X
    if model is None or len(table) == 0:
        mean = sd = np.full((len(table), m), np.nan)
        p_safe = np.full(len(table), np.nan)
    else:
        with torch.no_grad():
            posterior = model.posterior(X_new, observation_noise=True)
            mean = posterior.mean.numpy()
            sd = posterior.variance.clamp_min(0).sqrt().numpy()
        if warp is not None:
            mean, sd = warp.invert(mean, sd, config.outcomes)
        p_safe = probability_safe(model, X_new, config.safety, config.outcomes).numpy()
    for j, name in enumerate(config.outcomes):
        table[f"{name}_mean"] = mean[:, j]
        table[f"{name}_sd"] = sd[:, j]
    if config.safety:
        table["p_safe"] = p_safe
        table["meets_confidence"] = p_safe >= config.confidence
    if feasibility is not None:
        with torch.no_grad():
            table["p_feasible"] = feasibility.probability(X_new).numpy()
    if config.safety or feasibility is not None:
        table["role"] = batch.roles
    return table
