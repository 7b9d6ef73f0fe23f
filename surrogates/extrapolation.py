"""Shorten a safety GP's lengthscales to the shortest its data do not rule out.

A GP fitted to a few smooth-looking measurements takes long lengthscales, the most likely
ones, and then extrapolates the trend it saw with confidence. For a safety limit that is the
dangerous direction: in `valley demo` (seed 2, last round, on one machine) three designs at a
dose and surface charge the campaign had barely measured were claimed at complement activation
1.12-1.32 (+- 0.09-0.14) and measured 1.67-1.77, about 4 sd over. Leave-one-out checks and the
amplitude bound (`surrogates.calibration`) do not see this, since they judge the model at the
measured designs. Shorter lengthscales, which the same data barely tell apart from the fitted
ones, say that far from the data the outcome may be anything its prior allows.

`shorten_lengthscales` walks a common factor `s` on every continuous lengthscale down from 1
(refitting the other hyperparameters at each step: a profile likelihood) and keeps the smallest
`s` whose negative log marginal likelihood is within `PROFILE_DROP` (1.92) of the fit, the 95 %
profile-likelihood interval of `s`. The model then holds the shortest lengthscales that the
data are consistent with, in the spirit of robust uncertainty bounds over a set of plausible
hyperparameters (Fiedler, Scherer and Trimpe, AAAI 2021; Capone et al., 2022). Near the data
little changes; away from it the intervals widen and the mean reverts toward the data's mean.
"""

from __future__ import annotations

import warnings
from typing import cast

import torch
from botorch.models.gpytorch import GPyTorchModel
from botorch.optim.fit import fit_gpytorch_mll_scipy
from gpytorch.kernels import MaternKernel, RBFKernel
from gpytorch.mlls import ExactMarginalLogLikelihood
from torch import Tensor

from surrogates.kernel_shapes import fixed_kernel_shapes
from surrogates.profile_likelihood import PROFILE_DROP

STEP = 0.8  # each step shortens every lengthscale by this factor
MAX_STEPS = 12  # 0.8^12 = 0.07: no shorter than this
REFIT_ITERATIONS = 20  # L-BFGS-B steps refitting the other hyperparameters at each step


def shorten_lengthscales(gp: GPyTorchModel, drop: float = PROFILE_DROP) -> float:
    """Shorten every continuous lengthscale of `gp` by the smallest plausible common factor, in place; return it.

    Args:
        gp: A fitted exact GP (a `SingleTaskGP` or `MixedSingleTaskGP`; categorical kernels are
            left as they are).
        drop: How far the negative log marginal likelihood (the priors' terms included) may
            rise above the fit's.

    Returns:
        The factor, in `(0, 1]`; 1 when the data rule out any shortening (then `gp` is unchanged).
    """
    kernels = [k for k in gp.modules() if isinstance(k, MaternKernel | RBFKernel)]
    if not kernels:
        return 1.0
    fitted = [k.lengthscale.detach().clone() for k in kernels]
    held = {id(k.raw_lengthscale) for k in kernels}
    trainable = {p: p.requires_grad for p in gp.parameters()}
    refit = any(g and id(p) not in held for p, g in trainable.items())
    mll = ExactMarginalLogLikelihood(gp.likelihood, gp)
    best, kept, kept_state = _neg_log_likelihood(mll), 1.0, _snapshot(gp)
    try:
        for p, requires_grad in trainable.items():
            p.requires_grad_(requires_grad and id(p) not in held)
        with fixed_kernel_shapes(gp), warnings.catch_warnings(), torch.enable_grad():
            warnings.simplefilter("ignore")  # a refit that stops early still gives a likelihood to judge by
            for step in range(1, MAX_STEPS + 1):
                factor = STEP**step
                for kernel, lengthscale in zip(kernels, fitted, strict=True):
                    kernel.lengthscale = lengthscale * factor
                try:
                    if refit:
                        fit_gpytorch_mll_scipy(mll, options={"maxiter": REFIT_ITERATIONS})
                    shorter = _neg_log_likelihood(mll)
                except Exception:  # noqa: BLE001 - a kernel matrix too ill-conditioned to judge: shorten no further
                    break
                if not shorter - best <= drop:  # NaN too
                    break
                kept, kept_state = factor, _snapshot(gp)
    finally:
        for p, requires_grad in trainable.items():
            p.requires_grad_(requires_grad)
        gp.load_state_dict(kept_state)
        gp.eval()
    return kept


def _neg_log_likelihood(mll: ExactMarginalLogLikelihood) -> float:
    """The negative log marginal likelihood (with the priors' terms) of `mll`'s GP at its training data."""
    gp = mll.model
    gp.train()
    with torch.no_grad():
        X = cast(tuple[Tensor, ...], gp.train_inputs)[0]  # gpytorch's `ExactGP` attributes, untyped
        y = cast(Tensor, gp.train_targets)
        return -float(mll(gp(X), y)) * y.shape[-1]  # gpytorch divides by the number of points


def _snapshot(gp: GPyTorchModel) -> dict[str, Tensor]:
    return {name: value.detach().clone() for name, value in gp.state_dict().items()}
