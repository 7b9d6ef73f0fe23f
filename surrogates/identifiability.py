"""Which parameters of a GP's fitted mechanistic mean can the data pin down?

A GP with a mechanistic mean (`EmaxMean`: E0, Emax, EC50, Hill; or a `CustomMean`) fits the
mean's parameters with the kernel's by maximizing the marginal likelihood. Some combinations of
them the data cannot tell apart: with doses only far below EC50 the curve looks like the line
`E0 + Emax * (D / EC50)^h`, and any EC50 with an Emax that keeps `Emax / EC50^h` fits as well as
the true one (a long, flat "banana" valley of the likelihood). This module finds such valleys.

How (`mean_identifiability`): with the GP's other hyperparameters held at their fitted values,
the covariance of the training outcomes `S = K + noise` is fixed, and the negative marginal
log-likelihood as a function of the mean's parameters `t` is `0.5 r^T S^-1 r` plus a constant,
`r = y - m(X; t)`. Its Hessian `H` at the fit (`torch.autograd.functional.hessian`) is taken in
user units: the parameters as the model reports them, through their constraint transforms
(EC50, Hill), and for `EmaxMean` E0 and Emax in the outcome's own units (the GP fits them in
standardized units). `H^-1` is the parameters' covariance (Laplace approximation), whose
diagonal gives each one's standard error. For directions, `H` is rescaled to relative changes
(`D H D`, `D` = each parameter's size) so that the eigenvalues do not depend on the units; a
direction is flagged when its eigenvalue is small next to the largest (condition number above
`CONDITION_LIMIT`) or when one standard error along it is larger than the parameters themselves.

`surrogates.profile_likelihood` is the check that needs no quadratic approximation: one parameter is held
at each value of a grid while the mean's other parameters are refitted (a few L-BFGS steps,
the same fixed `S`), and the range where the profile stays within `chi2(1, 0.95) / 2 = 1.92`
of its optimum is the 95 % profile-likelihood interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

import numpy as np
import pandas as pd
import torch
from gpytorch.likelihoods import FixedNoiseGaussianLikelihood
from gpytorch.means import Mean
from torch import Tensor

from surrogates.means import EmaxMean

# Condition number of the relative-units Hessian above which a direction counts as flat, set by
# measurement: with doses spanning EC50 (12 noisy doses over 1-100 with EC50 30, six seeds) the
# worst direction reached 5e2 to 1.5e3, set by E0, which the GP's own level absorbs (relative SE
# ~0.4); on the nanoparticle simulator's fixed formulation 2e1 to 2e2. With doses only below EC50
# the EC50/Emax direction reached 1e3 to 6e5 and beyond, and there one standard error along it is
# larger than the parameters themselves, which flags it whatever its condition number. 1e4 stays
# above every identifiable case measured; the relative-SE rule does the rest.
CONDITION_LIMIT = 1e4
LOADING = 0.3  # a parameter takes part in a direction when its loading is at least this
_EMAX_NAMES = {"e0": "E0", "emax": "Emax", "ec50": "EC50", "hill": "Hill"}


@dataclass(frozen=True)
class _Coord:
    """One scalar parameter of the mean: its name, where it lives, and its user-unit mapping."""

    name: str
    raw: str  # name of the raw parameter in the mean module
    index: int  # element of that raw parameter (flattened)
    to_raw: Callable[[Tensor], Tensor]
    to_user: Callable[[Tensor], Tensor]
    level: bool  # E0 or Emax of an EmaxMean: its size is judged against the outcome's spread


@dataclass
class FlatDirection:
    """One eigen-direction of the relative-units Hessian.

    Attributes:
        eigenvalue: Curvature along the unit direction, in relative units.
        condition: Largest eigenvalue over this one (inf when this one is not positive).
        relative_se: One standard error along the direction (1 = 100 % of the parameters' size).
        loadings: Parameter -> loading of the unit eigenvector (largest one positive).
        flagged: Whether the data cannot pin this combination down.
        description: The direction in words.
    """

    eigenvalue: float
    condition: float
    relative_se: float
    loadings: dict[str, float]
    flagged: bool
    description: str


@dataclass
class Identifiability:
    """Result of `mean_identifiability` (see the module docstring).

    Attributes:
        names: Parameter names, in order (`E0`, `Emax`, `EC50`, `Hill` for an `EmaxMean`).
        values: Fitted values in user units.
        scales: Each parameter's size, used for relative standard errors and directions.
        standard_errors: `sqrt(diag(H^-1))` in user units (inf along a non-positive curvature).
        hessian: `H` in user units.
        directions: Eigen-directions of `D H D`, flattest first.
        n: Training points.
        notes: Caveats (a parameter at its bound, a fit that had not converged).
    """

    names: list[str]
    values: np.ndarray
    scales: np.ndarray
    standard_errors: np.ndarray
    hessian: np.ndarray
    directions: list[FlatDirection]
    n: int
    condition_limit: float = CONDITION_LIMIT
    notes: list[str] = field(default_factory=list)

    @property
    def relative_se(self) -> np.ndarray:
        """Standard errors over the parameters' sizes."""
        return self.standard_errors / self.scales

    @property
    def condition_number(self) -> float:
        """Largest over smallest eigenvalue of the relative-units Hessian."""
        return max(d.condition for d in self.directions)

    @property
    def flagged_directions(self) -> list[FlatDirection]:
        return [d for d in self.directions if d.flagged]

    @property
    def flagged(self) -> list[str]:
        """Parameters the data cannot pin down: relative SE above 1 or part of a flagged direction."""
        out = {name for name, rel in zip(self.names, self.relative_se, strict=True) if not rel <= 1.0}
        for d in self.flagged_directions:
            out |= {name for name, v in d.loadings.items() if abs(v) >= LOADING}
        return [name for name in self.names if name in out]

    @property
    def identifiable(self) -> bool:
        return not self.flagged

    def table(self) -> pd.DataFrame:
        """One row per parameter: value, standard error, relative SE, flagged."""
        flagged = set(self.flagged)
        return pd.DataFrame(
            {
                "parameter": self.names,
                "value": self.values,
                "se": self.standard_errors,
                "relative_se": self.relative_se,
                "flagged": [name in flagged for name in self.names],
            }
        )

    def directions_table(self) -> pd.DataFrame:
        """One row per eigen-direction, flattest first."""
        return pd.DataFrame(
            {
                "eigenvalue": [d.eigenvalue for d in self.directions],
                "condition": [d.condition for d in self.directions],
                "relative_se": [d.relative_se for d in self.directions],
                "direction": [_loading_text(d.loadings) for d in self.directions],
                "flagged": [d.flagged for d in self.directions],
            }
        )

    def summary(self) -> list[str]:
        """Sentences: each flagged direction in words, or that every parameter is pinned down."""
        lines = [d.description for d in self.flagged_directions]
        for name, rel in zip(self.names, self.relative_se, strict=True):
            in_direction = any(abs(d.loadings.get(name, 0.0)) >= LOADING for d in self.flagged_directions)
            if not rel <= 1.0 and not in_direction:
                lines.append(f"{name} is not pinned down: its standard error is {_percent(rel)} of its size.")
        if not lines:
            lines.append(
                f"Every parameter is pinned down (condition number {self.condition_number:.3g}, largest relative "
                f"standard error {_percent(float(np.max(self.relative_se)))})."
            )
        return lines + self.notes


class _Problem:
    """The mean's negative log-likelihood with the GP's covariance fixed at its fit."""

    def __init__(self, gp: Any, scales: Mapping[str, float] | None = None) -> None:
        mean = getattr(gp, "mean_module", None)
        if not isinstance(mean, Mean) or not any(p.requires_grad for p in mean.parameters()):
            raise ValueError(
                "mean_identifiability needs a GP whose mean module has fitted parameters (e.g. `EmaxMean`, "
                f"`CustomMean`). Got a mean module of type {type(mean).__name__} instead."
            )
        self.mean = mean
        X = cast(tuple[Tensor, ...], gp.train_inputs)[0]  # gpytorch's `ExactGP` attribute, untyped
        if X.dim() != 2:
            raise ValueError(f"mean_identifiability needs a single-output GP (`n x d` inputs). Got {tuple(X.shape)}.")
        was_training = gp.training
        gp.train()
        try:
            with torch.no_grad():
                prior = gp(X)
                noisy = (
                    gp.likelihood(prior, X)
                    if isinstance(gp.likelihood, FixedNoiseGaussianLikelihood)
                    else gp.likelihood(prior)
                )
                S = noisy.covariance_matrix.detach()
        finally:
            gp.train(was_training)
        self.X, self.y = X.detach(), cast(Tensor, gp.train_targets).detach()
        self.L = torch.linalg.cholesky(S + 1e-9 * S.diagonal().mean() * torch.eye(len(S), dtype=S.dtype))
        transform = getattr(gp, "outcome_transform", None)
        mu = float(transform.means.reshape(-1)[0]) if transform is not None and hasattr(transform, "means") else 0.0
        sd = float(transform.stdvs.reshape(-1)[0]) if transform is not None and hasattr(transform, "stdvs") else 1.0
        y_user = mu + sd * self.y
        self.outcome_range = float(y_user.max() - y_user.min()) if len(y_user) > 1 else sd
        self.shapes = {name: p.shape for name, p in mean.named_parameters() if p.requires_grad}  # fixed ones stay
        self.coords = _coords(mean, mu, sd)
        self.raw0 = torch.stack(
            [dict(mean.named_parameters())[c.raw].detach().reshape(-1)[c.index] for c in self.coords]
        )
        with torch.no_grad():
            self.user0 = torch.stack([c.to_user(r) for c, r in zip(self.coords, self.raw0, strict=True)])
        given = dict(scales or {})
        self.scales = np.array(
            [
                given.get(c.name, max(abs(float(v)), self.outcome_range if c.level else 1e-12))
                for c, v in zip(self.coords, self.user0, strict=True)
            ]
        )

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.coords]

    def nll_raw(self, raw: Tensor) -> Tensor:
        """`0.5 r^T S^-1 r` at the raw parameter values `raw` (one per coordinate)."""
        params = {}
        for name, shape in self.shapes.items():
            parts = [(c.index, raw[i]) for i, c in enumerate(self.coords) if c.raw == name]
            parts.sort(key=lambda item: item[0])
            params[name] = torch.stack([v for _, v in parts]).reshape(shape)
        m = torch.func.functional_call(self.mean, params, (self.X,))
        z = torch.linalg.solve_triangular(self.L, (self.y - m).unsqueeze(-1), upper=False)
        return 0.5 * z.square().sum()

    def nll_user(self, user: Tensor) -> Tensor:
        raw = torch.stack([c.to_raw(user[i]) for i, c in enumerate(self.coords)])
        return self.nll_raw(raw)


def _coords(mean: Mean, mu: float, sd: float) -> list[_Coord]:
    coords = []
    for raw_name, p in mean.named_parameters():
        if not p.requires_grad:  # held fixed by the user: not fitted, not analysed
            continue
        constraint = mean.constraint_for_parameter_name(raw_name) if "." not in raw_name else None
        base = raw_name.removeprefix("params.").removeprefix("raw_")
        if isinstance(mean, EmaxMean) and base in ("e0", "emax"):  # fitted in standardized units
            shift = mu if base == "e0" else 0.0
            to_raw: Callable[[Tensor], Tensor] = partial(_standardize, shift=shift, sd=sd)
            to_user: Callable[[Tensor], Tensor] = partial(_unstandardize, shift=shift, sd=sd)
        elif constraint is not None and constraint.enforced:
            to_raw, to_user = constraint.inverse_transform, constraint.transform
        else:
            to_raw = to_user = _identity
        label = _EMAX_NAMES.get(base, base) if isinstance(mean, EmaxMean) else base
        level = isinstance(mean, EmaxMean) and base in ("e0", "emax")
        for k in range(p.numel()):
            name = label if p.numel() == 1 else f"{label}[{k}]"
            coords.append(_Coord(name, raw_name, k, to_raw, to_user, level))
    return coords


def _identity(t: Tensor) -> Tensor:
    return t


def _standardize(value: Tensor, shift: float, sd: float) -> Tensor:
    return (value - shift) / sd


def _unstandardize(raw: Tensor, shift: float, sd: float) -> Tensor:
    return shift + sd * raw


def mean_identifiability(
    gp: Any, condition_limit: float = CONDITION_LIMIT, scales: Mapping[str, float] | None = None
) -> Identifiability:
    """Hessian and eigen-analysis of the mean's parameters of a fitted single-output GP.

    Args:
        gp: A fitted botorch `SingleTaskGP` (or `MixedSingleTaskGP`) whose mean module has
            parameters, e.g. one of a `ModelListGP`'s `.models`.
        condition_limit: Condition number above which a direction counts as flat.
        scales: Optional size per parameter name, in user units (default: the fitted value's
            magnitude; for an `EmaxMean`'s E0 and Emax at least the range of the measured outcome,
            so that a baseline near 0 is judged against the spread of the data).

    Returns:
        An `Identifiability`: standard errors, directions (flattest first, flagged ones named
        in words), and the flagged parameters.

    Raises:
        ValueError: If the GP's mean has no parameters or the GP is not single-output.

    Example:
        >>> gp = fit_gp(X, y, mean_module=EmaxMean(0, lower=1.0, upper=100.0, log=True))
        >>> mean_identifiability(gp).summary()  # doses far below EC50
        ['Emax and EC50 move together: a long flat valley along +0.84 Emax / +0.54 EC50 (...)']
    """
    problem = _Problem(gp, scales)
    user0 = problem.user0.clone()
    with torch.enable_grad():
        hessian = torch.autograd.functional.hessian(problem.nll_user, user0)
        u = user0.clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(problem.nll_user(u), u)
    H = hessian.detach().cpu().numpy().astype(float)
    H = 0.5 * (H + H.T)
    D = problem.scales
    H_rel = D[:, None] * H * D[None, :]
    eigenvalues, vectors = np.linalg.eigh(H_rel)
    largest = float(eigenvalues.max())
    tiny = max(largest, 1e-300) * 1e-14  # below this, numerically flat
    inv_curv = np.where(eigenvalues > tiny, 1.0 / np.maximum(eigenvalues, tiny), np.inf)
    with np.errstate(invalid="ignore"):
        rel_var = np.array(
            [np.sum(np.where(np.abs(vectors[i]) > 1e-6, vectors[i] ** 2 * inv_curv, 0.0)) for i in range(len(D))]
        )
    standard_errors = np.sqrt(rel_var) * D
    names = problem.names
    directions = []
    for k in range(len(eigenvalues)):
        v = vectors[:, k]
        v = v if v[np.argmax(np.abs(v))] > 0 else -v
        lam = float(eigenvalues[k])
        condition = largest / lam if lam > tiny else math.inf
        rel_se = 1.0 / math.sqrt(lam) if lam > tiny else math.inf
        loadings = {name: float(x) for name, x in zip(names, v, strict=True)}
        flagged = condition > condition_limit or rel_se > 1.0
        directions.append(
            FlatDirection(lam, condition, rel_se, loadings, flagged, _describe(loadings, rel_se, condition))
        )
    notes = _notes(problem, gradient.detach().cpu().numpy().astype(float), eigenvalues, vectors, tiny)
    values = problem.user0.detach().cpu().numpy().astype(float)
    return Identifiability(names, values, D, standard_errors, H, directions, len(problem.y), condition_limit, notes)


def _notes(
    problem: _Problem, gradient: np.ndarray, eigenvalues: np.ndarray, vectors: np.ndarray, tiny: float
) -> list[str]:
    notes = []
    for c, value in zip(problem.coords, problem.user0, strict=True):
        constraint = problem.mean.constraint_for_parameter_name(c.raw) if "." not in c.raw else None
        lower, upper = getattr(constraint, "lower_bound", None), getattr(constraint, "upper_bound", None)
        if lower is None or upper is None or not math.isfinite(float(upper - lower)):
            continue
        for bound in (float(lower), float(upper)):
            if abs(float(value) - bound) < 1e-3 * float(upper - lower):
                notes.append(f"{c.name} = {float(value):.3g} sits at its bound {bound:g}: the data push it there.")
    g_rel = vectors.T @ (gradient * problem.scales)  # the gradient along each eigen-direction
    unsettled = (eigenvalues <= tiny) | (np.abs(g_rel) > np.sqrt(np.maximum(eigenvalues, tiny)))
    if unsettled.any():
        notes.append(
            "The fit has not settled in the mean's parameters: the likelihood still falls (or curves downward) along a "
            "flat direction, so the optimizer stopped somewhere in a valley; the numbers describe where it stopped."
        )
    return notes


def _describe(loadings: Mapping[str, float], rel_se: float, condition: float) -> str:
    big = sorted(((n, v) for n, v in loadings.items() if abs(v) >= LOADING), key=lambda item: -abs(item[1]))
    names = [n for n, _ in big]
    along = _loading_text(dict(big))
    moves = ", ".join(f"{n} by {_percent(rel_se * abs(v))}" for n, v in big)
    size = (
        f"condition number {condition:.3g}; one standard error along it moves {moves}"
        if math.isfinite(rel_se)
        else "the likelihood does not rise along it at all: no finite standard error"
    )
    if len(big) == 1:
        return f"{names[0]} is poorly pinned down on its own: a long flat valley along {along} ({size})."
    joined = ", ".join(names[:-1]) + f" and {names[-1]}"
    signs = {v > 0 for _, v in big}
    verb = "move together" if len(signs) == 1 else "move jointly"
    if len(signs) > 1 and len(big) == 2:
        verb = "trade off (one up, the other down)"
    return f"{joined} {verb}: a long flat valley along {along} ({size})."


def _loading_text(loadings: Mapping[str, float]) -> str:
    """`+0.71 EC50 / +0.70 Emax` (relative changes), largest loading first."""
    items = sorted(loadings.items(), key=lambda item: -abs(item[1]))
    return " / ".join(f"{v:+.2f} {n}" for n, v in items if abs(v) >= 0.05)


def _percent(x: float) -> str:
    return "inf" if not math.isfinite(x) else f"{100 * x:.0f} %" if x < 100 else f"{x:.3g}x"
