"""The campaign model: the one fitted model behind `propose`, `design`, `report` and `status`.

`fit_campaign_model(config, measured_df)` is the only way a command gets a model of a
campaign's outcomes, so that what `report` cross-validates is what `propose` proposes with and
what `design` designs with. It does, in this order:

1. designs to the unit cube (`SearchSpace.encode`), outcomes to one tensor (NaN for a failed
   run), trust weights from the optional `weight` column (`campaign_tensors`);
2. each outcome's scale (`design.warp.OutcomeWarp`): `bilog` around a one-sided safety limit,
   `log` for a wide positive objective. An outcome that carries prior knowledge for the model in
   use (the GP's `surrogate.mean`, the ensemble's `surrogate.physics` terms) keeps its units, so
   that the knowledge means what the config says: a `bounded` term with `lower: 0` bounds the
   outcome, an Emax mean is fitted to the outcome and its parameters are in its units;
3. above `MAX_GP_ROWS` rows, the subset the GPs learn from (`campaigns.large_data`);
4. the surrogate (GPs, from the `campaigns.model_cache` when they were fitted to these very data,
   or the neural ensemble), with the safety GPs widened by their leave-one-out checks and by the
   record of the campaign's own claims at its proposals (`fit_regression_model`, `claim_errors`);
5. the failure classifier, once some runs failed.

The model works on the scale of step 2; `CampaignModel.predict` and `CampaignModel.user_units`
give predictions in the outcomes' own units (`OutcomeWarp.invert`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from botorch.models import ModelListGP
from gpytorch.kernels import MaternKernel, RBFKernel
from torch import Tensor

from campaigns.config import CampaignConfig, MeanConfig, PhysicsConfig
from campaigns.large_data import MAX_GP_ROWS, goal_score, gp_rows
from campaigns.model_cache import ModelCache
from campaigns.surrogate_builders import fit_gps, make_ensemble, trust_weights
from design import SearchSpace, limits_hold, probability_safe
from design.safe_set import REACH
from design.warp import OutcomeWarp
from surrogates import FeasibilityModel, SurrogateWarning
from surrogates.calibration import calibrate, claims_factor, inflate
from surrogates.extrapolation import shorten_lengthscales
from surrogates.protocol import Surrogate

FAILED = "failed"  # optional column: a run that failed (its outcomes, if any, are ignored)
WIDENED = 1.5  # say so when a safety model's uncertainty is widened more than this


@dataclass(frozen=True)
class CampaignTensors:
    """A campaign's measurements as tensors: `X` encoded, `Y` over `config.outcomes` (NaN: failed)."""

    space: SearchSpace
    X: Tensor
    Y: Tensor
    failed: np.ndarray
    weights: Tensor | None


def campaign_tensors(config: CampaignConfig, measured_df: pd.DataFrame) -> CampaignTensors:
    """Encode `measured_df` (the place where outcome tables become tensors)."""
    space = config.space()
    failed = failed_runs(measured_df, config)
    Y = torch.tensor(measured_df[config.outcomes].to_numpy(dtype=float), dtype=torch.double)
    Y = Y.reshape(-1, len(config.outcomes))
    Y[torch.tensor(failed)] = float("nan")
    return CampaignTensors(space, space.encode(measured_df), Y, failed, trust_weights(config, measured_df))


@dataclass
class UserUnitsPosterior:
    """Predictive mean and variance in the outcomes' units (differentiable in `X`)."""

    mean: Tensor
    variance: Tensor


@dataclass
class UserUnits:
    """A campaign model seen in the outcomes' units: `posterior(X)` as `design.inverse` needs it.

    A log-modelled objective is log-normal (its mean and variance exactly); a bilog-modelled
    outcome maps its model-scale mean to the median and its sd by the delta method
    (`OutcomeWarp.invert`), so a Gaussian on these numbers approximates it near the mean.
    """

    model: Surrogate
    warp: OutcomeWarp
    outcomes: list[str]
    num_outputs: int = field(init=False)

    def __post_init__(self) -> None:
        self.num_outputs = len(self.outcomes)

    def posterior(
        self, X: Tensor, output_indices: list[int] | None = None, *, observation_noise: bool = False
    ) -> UserUnitsPosterior:
        posterior = self.model.posterior(X, observation_noise=observation_noise)
        mean, sd = self.warp.invert(posterior.mean, posterior.variance.clamp_min(0).sqrt(), self.outcomes)
        if output_indices is not None:
            mean, sd = mean[..., output_indices], sd[..., output_indices]
        return UserUnitsPosterior(mean, sd**2)


@dataclass
class CampaignModel:
    """The fitted model of a campaign's continuous outcomes (see the module docstring).

    Attributes:
        config: The campaign's config with its limits and objectives on the model's scale
            (`OutcomeWarp.model_limits`, `model_objectives`): what acquisition and P(safe) use.
        space: The search space.
        warp: The scale each outcome is modelled on.
        model: The GPs (`ModelListGP`) or the neural ensemble of `config.regression_outcomes`,
            on the model's scale; None when too few data (why: in `notes`).
        X, Y, failed, weights: The rows the model learnt from (`Y` on the model's scale).
        feasibility: P(a run succeeds), once some failed; else None.
        widened: Per safety outcome, the factor its GP's sd was widened by (1: not at all).
        notes: What the fit noticed, in plain words.
    """

    config: CampaignConfig
    space: SearchSpace
    warp: OutcomeWarp
    model: Surrogate | None
    X: Tensor
    Y: Tensor
    failed: np.ndarray
    weights: Tensor | None
    feasibility: FeasibilityModel | None = None
    widened: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def predict(self, X: Tensor, observation_noise: bool = True) -> tuple[Tensor, Tensor]:
        """Mean and sd (of a new measurement, by default) per regression outcome, in the outcomes' units."""
        with torch.no_grad():
            posterior = self.user_units().posterior(X, observation_noise=observation_noise)
            return posterior.mean, posterior.variance.sqrt()

    def p_safe(self, X: Tensor) -> Tensor:
        """P(every safety limit holds) at `X` (exact on the model's scale)."""
        assert self.model is not None, "no model was fitted (see `notes`)"
        return probability_safe(self.model, X, self.config.safety, self.config.regression_outcomes)

    def user_units(self) -> UserUnits:
        assert self.model is not None, "no model was fitted (see `notes`)"
        return UserUnits(self.model, self.warp, self.config.regression_outcomes)


def fit_campaign_model(
    config: CampaignConfig,
    measured_df: pd.DataFrame,
    seed: int = 0,
    cache: ModelCache | None = None,
    claims_df: pd.DataFrame | None = None,
) -> CampaignModel:
    """The campaign model of `measured_df` (every step of the module docstring).

    `claims_df` holds the campaign's measured proposals (`Campaign.measured_proposals`): what
    `propose` claimed beside what was measured. Their errors widen the safety GPs (`claim_errors`).
    """
    data = campaign_tensors(config, measured_df)
    regression = [config.outcomes.index(name) for name in config.regression_outcomes]
    errors = claim_errors(config, claims_df) if claims_df is not None else None
    fitted = fit_outcomes(
        config, data.space, data.X, data.Y[:, regression], data.weights, seed, cache, data.failed, errors
    )
    if fitted.model is not None:
        fitted.feasibility = fit_feasibility(fitted.X, fitted.failed, fitted.notes)
    return fitted


def fit_outcomes(
    config: CampaignConfig,
    space: SearchSpace,
    X: Tensor,
    Y: Tensor,
    weights: Tensor | None = None,
    seed: int = 0,
    cache: ModelCache | None = None,
    failed: np.ndarray | None = None,
    errors_of_claims: dict[str, np.ndarray] | None = None,
) -> CampaignModel:
    """Steps 2 to 4 of the module docstring on tensors; `Y` over `config.regression_outcomes` in their units.

    Cross-validation (`campaigns.report`) refits exactly this on each fold.
    """
    notes: list[str] = []
    failed = np.zeros(len(X), dtype=bool) if failed is None else failed
    outcomes = config.regression_outcomes
    warp = outcome_warp(config, Y, notes)
    goals = {"safety": warp.model_limits(config.safety), "objectives": warp.model_objectives(config.objectives)}
    config = config.model_copy(update=goals)
    Y = warp.apply(Y, outcomes)
    if config.surrogate_kind(len(X)) == "gp" and len(X) > MAX_GP_ROWS:
        score = goal_score([o for o in config.objectives if o.name in outcomes], outcomes, Y)
        rows = gp_rows(X, score, measured_safe(config, Y), seed=seed)
        notes.append(
            f"{len(X)} measurements: the GPs learn from {len(rows)} of them, the {len(rows) // 2} nearest the best "
            "designs and the rest drawn at random (an exact GP on all would take minutes; see README, Large campaigns)."
        )
        X, Y, failed = X[torch.as_tensor(rows)], Y[torch.as_tensor(rows)], failed[rows]
        weights = None if weights is None else weights[torch.as_tensor(rows)]
    widened: dict[str, float] = {}
    model = fit_regression_model(config, space, X, Y, notes, weights, cache, errors_of_claims, widened)
    return CampaignModel(config, space, warp, model, X, Y, failed, weights, widened=widened, notes=notes)


def outcome_warp(config: CampaignConfig, Y: Tensor, notes: list[str] | None = None) -> OutcomeWarp:
    """The scale of each regression outcome (step 2), from `Y` over them in their units; why, in `notes`."""
    if config.binary_outcomes:  # the classifier's path judges the other outcomes in their units
        return OutcomeWarp()
    outcomes = config.regression_outcomes
    continuous = [o for o in config.objectives if o.name in outcomes]
    keep = prior_outcomes(config, config.surrogate_kind(len(Y)))
    warp = OutcomeWarp.of(continuous, config.safety, Y, outcomes, keep=keep)
    if notes is not None:
        notes.extend(warp.log_notes(continuous, Y, outcomes))
        notes.extend(_kept_notes(config, continuous, Y, keep))
    return warp


def prior_outcomes(config: CampaignConfig, kind: str) -> tuple[str, ...]:
    """Outcomes that the prior knowledge of the surrogate `kind` speaks about (they keep their units)."""
    first = config.regression_outcomes[0] if config.regression_outcomes else None
    entries: list[MeanConfig | PhysicsConfig] = []
    if kind == "gp" and config.surrogate.mean is not None:
        entries.append(config.surrogate.mean)
    elif kind == "ensemble":
        entries.extend(config.surrogate.physics)
    names = [entry.outcome or first for entry in entries]
    return tuple(dict.fromkeys(name for name in names if name is not None))


def _kept_notes(config: CampaignConfig, objectives: list, Y: Tensor, keep: tuple[str, ...]) -> list[str]:
    """Say which outcomes would have been rescaled but keep their units for the prior knowledge on them."""
    outcomes = config.regression_outcomes
    free = OutcomeWarp.of(objectives, config.safety, Y, outcomes)
    rescaled = {limit.name for limit in free.limits} | set(free.logged)
    what = "the mean function" if config.surrogate_kind(len(Y)) == "gp" else "physics terms"
    return [
        f"{name!r} is modelled in its units (not on a log or bilog scale) because {what} in the config speak "
        "about it in those units."
        for name in keep
        if name in rescaled
    ]


def fit_regression_model(
    config: CampaignConfig,
    space: SearchSpace,
    X: Tensor,
    Y: Tensor,
    notes: list[str],
    weights: Tensor | None = None,
    cache: ModelCache | None = None,
    errors_of_claims: dict[str, np.ndarray] | None = None,
    widened: dict[str, float] | None = None,
):  # noqa: ANN201 - a ModelListGP or a NeuralEnsemble
    """Fit the configured surrogate of `config.regression_outcomes` (the columns of `Y`), or None (why: in `notes`).

    With a `cache`, GPs already fitted to these very data are loaded instead of refitted
    (`campaigns.model_cache`). The safety GPs are then widened by their leave-one-out checks,
    and further where the errors of earlier claims (`errors_of_claims` per outcome, from
    `claim_errors`) say they must be (`surrogates.calibration.claims_factor`). The factor used
    per safety outcome lands in `widened`.
    """
    outcomes = config.regression_outcomes
    # distinct designs, not rows: one design measured ten times pins the model down at one point only
    counts = [len(torch.unique(X[~torch.isnan(Y[:, j])], dim=0)) for j in range(Y.shape[-1])]
    fewest = min(counts, default=0)
    if fewest < space.n_choices + 1:
        name = outcomes[counts.index(fewest)]
        notes.append(
            f"{fewest} distinct design(s) successfully measured for {name!r}; a model needs at least "
            f"{space.n_choices + 1} (parameters + 1), so this batch is a space-filling design."
        )
        return None
    constant = {}  # safety outcome -> its one measured value (model scale)
    for limit in config.safety:
        y = Y[:, outcomes.index(limit.name)]
        if y[~torch.isnan(y)].unique().numel() == 1:
            constant[limit.name] = float(y[~torch.isnan(y)][0])
            notes.append(
                f"every measurement of {limit.name!r} is the same value: the model cannot tell yet where its limit "
                "breaks, so away from the measured designs p_safe assumes it may vary by as much as its distance "
                "to the limit (p_safe about 0.84 far away). Measure designs that should change it."
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
    if not isinstance(model, ModelListGP):  # the ensemble, one model with m outputs: no GP to recalibrate
        why = "" if config.surrogate.kind == "ensemble" else f" (surrogate auto: {X.shape[0]} measurements)"
        notes.append(
            f"outcomes modelled by a neural ensemble of {config.surrogate.members} network(s){why}; "
            "check its calibration with `valley status` or `valley report`."
        )
        return model
    limited = list(dict.fromkeys(outcomes.index(limit.name) for limit in config.safety))
    cautious = [j for j in limited if outcomes[j] not in constant] if config.safety_extrapolation == "cautious" else []
    for j in cautious:  # a constant outcome gets the prior `_span_gap` gives it instead
        shortened = shorten_lengthscales(model.models[j])  # type: ignore[arg-type]  # a ModelListGP's GPs
        if shortened < 1.0:
            notes.append(
                f"safety_extrapolation cautious: the lengthscales of {outcomes[j]!r} were taken {shortened:.2g}x as "
                "long as fitted, the shortest its data do not rule out."
            )
    # In both modes the amplitude learnt from few points is taken at its 95 % upper bound
    # (`amplitude_factor`): in probabilistic mode, without it, the first two batches' claims at
    # p_safe >= 0.95 broke limits 21-25 % of the time on the spring and the pressure vessel.
    for j, factor in zip(limited, calibrate(model, limited, small_sample=True), strict=True):
        errors = (errors_of_claims or {}).get(outcomes[j], np.zeros(0))
        from_claims = claims_factor(errors, config.confidence)
        if from_claims > factor:
            inflate(model.models[j], from_claims / factor)  # type: ignore[arg-type]  # a ModelListGP's GPs
            notes.append(
                f"the uncertainty of {outcomes[j]!r} was widened {from_claims:.2f}x: at {len(errors)} measured "
                f"proposals it missed by more than its claims allowed (a claim at p_safe {config.confidence:g} must "
                f"hold {config.confidence:.0%} of the time)."
            )
        elif factor > WIDENED:
            notes.append(
                f"the uncertainty of {outcomes[j]!r} was widened {factor:.1f}x (few data, or leave-one-out checks) "
                "before judging safety."
            )
        if outcomes[j] in constant:  # a flat GP would certify every design: the prior spans the gap instead
            _span_gap(model.models[j], config, outcomes[j], constant[outcomes[j]])
        if widened is not None:
            widened[outcomes[j]] = max(factor, from_claims)
    return model


def _span_gap(gp, config: CampaignConfig, name: str, value: float) -> None:  # noqa: ANN001 - a botorch GP
    """Give a constant outcome's GP the prior it cannot learn: it may vary, and over short distances.

    Measurements that never varied say nothing of how far apart designs must be to differ, nor by
    how much, and the fit then makes the outcome flat and certain everywhere. Instead the
    continuous lengthscales are capped at `REACH` (a quarter of the unit cube, as the safe set's
    reach) and the kernel (not the noise: near the measured designs the outcome stays pinned at
    `value`) is scaled until its prior sd equals the distance to the limit, so that far from the
    data p_safe falls to Phi(1) = 0.84.
    """
    gp.train()
    for kernel in gp.covar_module.modules():
        if isinstance(kernel, MaternKernel | RBFKernel):
            kernel.lengthscale = kernel.lengthscale.detach().clamp_max(REACH)
    bounds = [b for limit in config.safety if limit.name == name for b in (limit.lower, limit.upper) if b is not None]
    gap = min(abs(b - value) for b in bounds)
    x = gp.train_inputs[0][:1]
    with torch.no_grad():
        prior_sd = float(gp.covar_module(x, x).to_dense().squeeze().sqrt())  # standardized units
    prior_sd *= float(gp.outcome_transform.stdvs.squeeze())
    inflate(gp, gap / max(prior_sd, 1e-12), noise=False)
    gp.eval()  # caches rebuilt with the new lengthscales


def claim_errors(config: CampaignConfig, claims_df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per safety outcome, the signed errors of the campaign's claims at its measured proposals.

    For each measured, successful proposal with a prediction, `u = (y - mean) / sd` in the claimed
    mean and sd of a new measurement, with the sd taken back to its unwidened size (divided by
    `<outcome>_widened`, the factor recorded with the proposal) and the sign turned so that
    positive is toward the limit (`mean - y` for a lower limit). Both limits of a band count.
    """
    errors: dict[str, list[np.ndarray]] = {}
    ok = ~claims_df["measured_failed"].astype(bool).to_numpy() if len(claims_df) else np.zeros(0, dtype=bool)
    for limit in config.safety:
        name = limit.name
        if f"{name}_mean" not in claims_df or f"measured_{name}" not in claims_df:
            continue
        mean = claims_df[f"{name}_mean"].to_numpy(dtype=float)
        sd = claims_df[f"{name}_sd"].to_numpy(dtype=float)
        if f"{name}_widened" in claims_df:
            sd = sd / claims_df[f"{name}_widened"].fillna(1.0).to_numpy(dtype=float)
        y = claims_df[f"measured_{name}"].to_numpy(dtype=float)
        usable = ok & np.isfinite(mean) & np.isfinite(y) & (sd > 0)
        u = (y[usable] - mean[usable]) / sd[usable]
        signed = [u] if limit.upper is not None else []
        signed += [-u] if limit.lower is not None else []
        errors.setdefault(name, []).extend(signed)
    return {name: np.concatenate(parts) for name, parts in errors.items() if parts}


def fit_feasibility(X: Tensor, failed: np.ndarray, notes: list[str]) -> FeasibilityModel | None:
    """P(a run succeeds) from the failed and successful rows, or None when none (or all) failed."""
    if not failed.any() or failed.all():
        return None
    try:
        return FeasibilityModel().fit(X, torch.as_tensor(~failed))
    except Exception as err:  # noqa: BLE001
        notes.append(f"the failure classifier could not be fitted ({type(err).__name__}); failures are ignored.")
        return None


def failed_runs(measured_df: pd.DataFrame, config: CampaignConfig) -> np.ndarray:
    """A run failed if it says so in the optional `failed` column or left any outcome empty."""
    flagged = measured_df[FAILED].fillna(False).astype(bool) if FAILED in measured_df else False
    return (measured_df[config.outcomes].isna().any(axis=1) | flagged).to_numpy(dtype=bool)


def measured_safe(config: CampaignConfig, Y: Tensor, columns: list[str] | None = None) -> np.ndarray:
    """Rows whose regression outcomes were all measured and meet every safety limit.

    `Y` has the columns `columns` (default: `config.regression_outcomes`), on the scale of
    `config`'s limits.
    """
    measured = pd.DataFrame(Y.numpy(), columns=columns or config.regression_outcomes)
    return measured[config.regression_outcomes].notna().all(axis=1).to_numpy() & limits_hold(config.safety, measured)
