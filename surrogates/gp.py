"""Gaussian-process surrogates: one botorch GP per outcome, fitted robustly."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from functools import partial

import gpytorch
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import MixedSingleTaskGP, ModelListGP, SingleTaskGP
from botorch.models.transforms import Standardize
from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior
from gpytorch.means import Mean
from gpytorch.mlls import ExactMarginalLogLikelihood
from torch import Tensor

from surrogates.kernel_shapes import fixed_kernel_shapes
from surrogates.noise import TrustWeightedLikelihood


class SurrogateWarning(UserWarning):
    """A fit that needed a fallback; the message says what was done instead."""


# L-BFGS-B steps per fit. The mixed kernel's likelihood is flat in some directions, so its fits
# seldom converge: they stop at the limit. Past ~200 steps a fit only creeps (seen: 500 steps, 4 s,
# for 20 rows) without changing predictions. From `FEW_ROWS` rows on, 100 steps predict as well as
# 200 at half the time (nanoparticle config, 2,000 held-out designs; at 200 rows, seeds 0-7:
# RMSE 0.311 / 0.034 against 0.309 / 0.035 for the objective / the safety outcome, 95 % coverage
# 91 / 97 % with either, 2.4 s instead of 4.6 s for the two GPs; level at 60 and 100 rows too, seeds
# 0-3); at 30 rows 200 steps cut the safety outcome's RMSE by 5 %. Hartmann-6's GPs converge sooner.
FIT_STEPS = 100
FEW_ROWS_FIT_STEPS = 200
FEW_ROWS = 50


def fit_steps(n: int) -> int:
    """L-BFGS-B steps for fitting a GP's hyperparameters to `n` rows."""
    return FEW_ROWS_FIT_STEPS if n < FEW_ROWS else FIT_STEPS


_matern52 = partial(get_covar_module_with_dim_scaled_prior, use_rbf_kernel=False)


def matern52_kernel(d: int, outputs: int = 1):
    """Matern-5/2 with ARD over `d` inputs and botorch's dimension-scaled lengthscale prior.

    `outputs` > 1 gives each output of a batched GP lengthscales of its own.
    """
    return _matern52(ard_num_dims=d, batch_shape=torch.Size([outputs] if outputs > 1 else []))


def fit_gp(
    X: Tensor,
    y: Tensor,
    cat_dims: list[int] | None = None,
    yvar: Tensor | None = None,
    mean_module: Mean | None = None,
    weights: Tensor | None = None,
    start: dict[str, Tensor] | None = None,
    refit: bool = True,
) -> SingleTaskGP:
    """Fit a GP to one outcome (or to `m` outcomes measured on the same rows, as one batched GP).

    Matern-5/2 with one lengthscale per input (ARD) and botorch's dimension-scaled prior;
    categorical inputs (integer codes at `cat_dims`) get botorch's `MixedSingleTaskGP`
    categorical kernel. Outcomes are standardized. Inputs are expected in the unit cube
    (the search space's encoding does that).

    If the fit fails numerically (a kernel matrix that is not positive definite), it is retried
    with more jitter and then kept at the prior's hyperparameters, with a `SurrogateWarning`.

    Args:
        X: A `n x d` tensor of encoded designs.
        y: A `n` tensor of one outcome (no NaN), or `n x m` for a batched GP with `m` outputs,
            each with hyperparameters of its own (botorch fits them as independent problems
            in one batched L-BFGS-B run).
        cat_dims: Columns of `X` that hold categorical codes.
        yvar: Optional `n` tensor of known observation-noise variances.
        mean_module: Optional gpytorch `Mean` (e.g. `EmaxMean`), fitted jointly with the
            hyperparameters; the GP then models the discrepancy from it. Default: constant.
        weights: Optional `n` tensor of trust weights in (0, 1] (or above): row `i`'s noise
            variance is divided by `weights[i]`, so a row of weight 0.25 counts as a
            measurement with twice the noise standard deviation. With `yvar` that is
            `yvar / weights`; otherwise the learned noise is scaled (`TrustWeightedLikelihood`).
        start: Optional `state_dict` of an earlier fit of this outcome: its learned parameters
            (those of matching shape; buffers such as the outcome standardization are the
            data's own) are where the optimizer starts, which saves most of its steps when the
            data changed a little.
        refit: False takes `start`'s parameters as they are and skips the optimizer (for the
            same data, or a larger sample of the same outcome).

    Raises:
        ValueError: If `weights` is not a `n` tensor of positive numbers.

    Example:
        >>> X = torch.rand(10, 2, dtype=torch.double)
        >>> model = fit_gp(X, X.sum(-1))
    """
    Y = y.reshape(len(y), -1)
    Yvar = None if yvar is None else yvar.reshape(len(y), -1)
    likelihood = None
    if weights is not None:
        if weights.shape != (X.shape[0],) or not bool((weights > 0).all()):
            raise ValueError(
                f"`weights` must be a `n` tensor of positive numbers, n = {X.shape[0]}. "
                f"Got shape {tuple(weights.shape)} (min {float(weights.min()):g}) instead. Drop rows you do not trust."
            )
        if Yvar is None:
            likelihood = TrustWeightedLikelihood(X, weights.to(X))
        else:
            Yvar = Yvar / weights.to(X).reshape(-1, 1)
    if cat_dims:
        model = MixedSingleTaskGP(
            X,
            Y,
            cat_dims=cat_dims,
            train_Yvar=Yvar,
            cont_kernel_factory=_matern52,
            likelihood=likelihood,
            outcome_transform=Standardize(m=Y.shape[-1]),
        )
        if mean_module is not None:  # MixedSingleTaskGP takes no mean argument; its forward reads this attribute
            model.mean_module = mean_module.to(X)
    else:
        model = SingleTaskGP(
            X,
            Y,
            train_Yvar=Yvar,
            likelihood=likelihood,
            covar_module=matern52_kernel(X.shape[-1], Y.shape[-1]),
            mean_module=None if mean_module is None else mean_module.to(X),
            outcome_transform=Standardize(m=Y.shape[-1]),
        )
    if start is not None:
        loaded = _load_hyperparameters(model, start)
        if not refit:
            missing = sorted(set(dict(model.named_parameters())) - loaded)
            if missing:
                raise KeyError(f"`start` lacks {missing}; it cannot stand for a fit of this model.")
            return model.eval()
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    for jitter in (None, 1e-4, 1e-2):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                settings = (
                    nullcontext()
                    if jitter is None
                    else gpytorch.settings.cholesky_jitter(float_value=jitter, double_value=jitter)
                )
                with settings, torch.enable_grad(), fixed_kernel_shapes(model):  # also inside `no_grad`
                    fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": fit_steps(len(X))}})
            if jitter is not None:
                warnings.warn(f"GP fit needed cholesky jitter {jitter:g}.", SurrogateWarning, stacklevel=2)
            break
        except Exception as err:  # noqa: BLE001 - botorch raises several kinds on bad data
            last = err
    else:
        warnings.warn(
            f"GP fit failed ({type(last).__name__}); using prior hyperparameters.",
            SurrogateWarning,
            stacklevel=2,
        )
    return model.eval()


def _load_hyperparameters(model: SingleTaskGP, state: dict[str, Tensor]) -> set[str]:
    """Copy the learned parameters of `state` that match `model`'s in name and shape; return their names.

    Buffers (the outcome standardization, trust weights per training row) describe the data,
    so the model keeps its own.
    """
    own = dict(model.named_parameters())
    kept = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
    model.load_state_dict(kept, strict=False)
    return set(kept)


def fit_outcome_models(
    X: Tensor,
    Y: Tensor,
    cat_dims: list[int] | None = None,
    noise_sd: Sequence[float | None] | None = None,
    mean_modules: Sequence[Mean | None] | None = None,
    weights: Tensor | None = None,
    starts: Sequence[dict[str, Tensor]] | None = None,
    refit: bool = True,
) -> ModelListGP:
    """Fit one GP per column of `Y`, each on the rows where that outcome was measured.

    Args:
        X: A `n x d` tensor of encoded designs.
        Y: A `n x m` tensor of outcomes; NaN marks a missing (failed) measurement.
        cat_dims: Columns of `X` that hold categorical codes.
        noise_sd: Known measurement noise per outcome (None: learned from the data, which
            replicate measurements inform).
        mean_modules: Optional mean module per outcome (None entries keep the constant mean).
        weights: Optional trust weights, a `n` tensor (all outcomes) or `n x m` (per outcome);
            see `fit_gp`.
        starts: Optional `state_dict` per outcome of an earlier fit, where each fit starts (`fit_gp`).
        refit: False takes `starts`' parameters as they are (no optimizer step).

    Outcomes measured on every row, without mean modules or weights, are fitted as one batched
    GP (each with hyperparameters of its own) and then split into one GP each.

    Returns:
        A `ModelListGP` with `m` outputs, in the column order of `Y`.
    """
    sds: list[float | None] = [None] * Y.shape[-1] if noise_sd is None else list(noise_sd)
    plain = (mean_modules is None or all(mean is None for mean in mean_modules)) and weights is None
    if starts is None and plain and Y.shape[-1] > 1 and not bool(torch.isnan(Y).any()):
        starts = _batched_starts(X, Y, cat_dims, sds)
        refit = starts is None  # the batched fit's hyperparameters are taken as they are
    models = []
    for j in range(Y.shape[-1]):
        seen = ~torch.isnan(Y[:, j])
        yvar = None if (sd := sds[j]) is None else torch.full((int(seen.sum()),), sd**2, dtype=X.dtype)
        mean = None if mean_modules is None else mean_modules[j]
        w = None if weights is None else (weights if weights.dim() == 1 else weights[:, j])[seen]
        start = None if starts is None else starts[j]
        models.append(fit_gp(X[seen], Y[seen, j], cat_dims, yvar, mean, w, start, refit))
    return ModelListGP(*models)


def _batched_starts(
    X: Tensor, Y: Tensor, cat_dims: list[int] | None, sds: Sequence[float | None]
) -> list[dict[str, Tensor]] | None:
    """Each column's hyperparameters from one batched fit of all columns of `Y`; None if that cannot stand.

    The fit takes the same optimizer steps at about 3/4 of the time of one fit per column (the
    nanoparticle config at 200 rows). None when the noise is known for some columns only, or when
    the fit needed a fallback (jitter, prior): then each column is fitted alone, so that only the
    one that needs it falls back.
    """
    if len({sd is None for sd in sds}) > 1:
        return None
    given = [sd**2 for sd in sds if sd is not None]
    yvar = torch.tensor(given, dtype=X.dtype).expand_as(Y) if given else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SurrogateWarning)
        batched = fit_gp(X, Y, cat_dims, yvar)
    if any(issubclass(w.category, SurrogateWarning) for w in caught):
        return None
    params = dict(batched.named_parameters())
    return [{name: p[j].detach() for name, p in params.items()} for j in range(Y.shape[-1])]
