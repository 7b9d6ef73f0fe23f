"""The profile likelihood of one parameter of a GP's fitted mechanistic mean (`surrogates.identifiability`).

Where the Hessian at the fit (`mean_identifiability`) looks only nearby, the profile walks the
parameter outward and refits the others at each value, so it also finds flat valleys that bend.
The GP's covariance stays at its fit: the profile is conditional on the fitted hyperparameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from surrogates.identifiability import _Problem, mean_identifiability

PROFILE_DROP = 1.920729410347062  # chi2(1).ppf(0.95) / 2: the 95 % profile-likelihood drop


@dataclass
class Profile:
    """Result of `profile_likelihood`.

    Attributes:
        name: The profiled parameter.
        estimate: Its fitted value.
        grid: The values it was held at (user units, increasing; the fit's own value included).
        delta_nll: Profile negative log-likelihood minus its optimum, per grid value.
        low, high: The 95 % profile-likelihood interval (where `delta_nll <= 1.92`), interpolated;
            the walk's end when the profile does not rise that far (`bounded_*` False: no bound
            within a factor 10 of the fit, or within a bounded parameter's range).
    """

    name: str
    estimate: float
    grid: np.ndarray
    delta_nll: np.ndarray
    low: float
    high: float
    bounded_low: bool
    bounded_high: bool

    def text(self) -> str:
        lo = f"{self.low:.3g}" if self.bounded_low else f"<= {self.low:.3g} (no bound found)"
        hi = f"{self.high:.3g}" if self.bounded_high else f">= {self.high:.3g} (no bound found)"
        return f"{self.name} = {self.estimate:.3g}, 95 % profile-likelihood interval: {lo} to {hi}"


def profile_likelihood(
    gp: Any, name: str, points: int = 9, steps: int = 25, grid: np.ndarray | None = None, reach: float = 10.0
) -> Profile:
    """The profile likelihood of one of the mean's parameters (GP covariance fixed at its fit).

    The parameter is held at values walking outward from the fit, while the mean's other
    parameters are refitted from the previous value (L-BFGS, `steps` iterations). Each side
    takes `points // 2` steps over two standard errors, then steps of doubling size until the
    profile rises by 1.92 or the walk reaches `reach` (a factor 10 for a positive parameter, 10
    sizes otherwise) or a bounded parameter's bound.

    Args:
        gp: A fitted single-output GP whose mean has parameters (as `mean_identifiability`).
        name: The parameter, as `mean_identifiability` names it (e.g. `EC50`).
        points: Values on the first, even part of the walk (both sides together).
        steps: L-BFGS iterations per value.
        grid: Optional values to use instead of the walk.
        reach: How far the walk goes at most (see above).

    Returns:
        A `Profile` with the 95 % profile-likelihood interval.

    Raises:
        ValueError: For an unknown parameter name.
    """
    problem = _Problem(gp)
    if name not in problem.names:
        raise ValueError(f"name must be one of {problem.names}. Got {name!r} instead.")
    i = problem.names.index(name)
    value = float(problem.user0[i])
    with torch.no_grad():
        best = float(problem.nll_raw(problem.raw0))
    found = {value: best}
    if grid is None:
        found |= _walk(gp, problem, i, max(points // 2, 1), steps, best, reach)
    else:
        ahead = sorted(float(v) for v in grid if v > value)
        behind = sorted((float(v) for v in grid if v < value), reverse=True)
        for side in (ahead, behind):
            free = problem.raw0[_others(problem, i)].clone()
            for v in side:
                free, found[v] = _refit(problem, i, v, free, steps)
    values = np.array(sorted(found))
    profile = np.array([found[v] for v in values])
    delta = profile - min(best, float(profile.min()))
    center = int(np.searchsorted(values, value))
    low, bounded_low = _crossing(values, delta, center, -1)
    high, bounded_high = _crossing(values, delta, center, +1)
    return Profile(name, value, values, delta, low, high, bounded_low, bounded_high)


def _others(problem: _Problem, i: int) -> list[int]:
    return [k for k in range(len(problem.coords)) if k != i]


def _walk(gp: Any, problem: _Problem, i: int, even: int, steps: int, best: float, reach: float) -> dict[float, float]:
    """Profile values walking out from the fit on both sides (see `profile_likelihood`)."""
    value = float(problem.user0[i])
    try:
        rel_se = float(mean_identifiability(gp).relative_se[i])
    except (np.linalg.LinAlgError, RuntimeError):
        rel_se = math.inf
    coord = problem.coords[i]
    constraint = problem.mean.constraint_for_parameter_name(coord.raw) if "." not in coord.raw else None
    lower = float(getattr(constraint, "lower_bound", -math.inf)) if constraint is not None else -math.inf
    upper = float(getattr(constraint, "upper_bound", math.inf)) if constraint is not None else math.inf
    margin = 1e-3 * (upper - lower) if math.isfinite(upper - lower) else 0.0
    log = value > 0 and lower >= 0  # a positive parameter walks in log(value)
    scale = float(problem.scales[i])
    span = math.log(reach) if log else reach

    def to_t(v: float) -> float:
        return math.log(v) if log else v / scale

    def from_t(t: float) -> float:
        return math.exp(t) if log else t * scale

    t0 = to_t(value)
    limits = [t0 - span, t0 + span]
    if lower + margin > -math.inf and (not log or lower + margin > 0):
        limits[0] = max(limits[0], to_t(lower + margin))
    if upper - margin < math.inf:
        limits[1] = min(limits[1], to_t(upper - margin))
    found: dict[float, float] = {}
    for side, limit in ((+1, limits[1]), (-1, limits[0])):
        free = problem.raw0[_others(problem, i)].clone()
        t, step = t0, min(max(2 * rel_se, 0.05), span) / even
        for k in range(even + 6):
            if side * (limit - t) <= 1e-12:
                break
            t = min(t + step, limit) if side > 0 else max(t - step, limit)
            v = from_t(t)
            free, found[v] = _refit(problem, i, v, free, steps)
            if found[v] - best > PROFILE_DROP:
                break
            if k + 1 >= even:
                step *= 2
    return found


def _refit(problem: _Problem, i: int, value: float, start: Tensor, steps: int) -> tuple[Tensor, float]:
    """The mean's other parameters refitted with parameter `i` held at `value`: their raw values and the NLL."""
    others = _others(problem, i)
    fixed = problem.coords[i].to_raw(torch.tensor(value, dtype=problem.raw0.dtype)).detach()
    free = start.clone().requires_grad_(True)

    def full(z: Tensor) -> Tensor:
        parts = list(z.unbind())
        raw = [fixed if k == i else parts[others.index(k)] for k in range(len(problem.coords))]
        return problem.nll_raw(torch.stack(raw))

    if others:
        optimizer = torch.optim.LBFGS([free], max_iter=steps, line_search_fn="strong_wolfe")

        def closure() -> Tensor:
            optimizer.zero_grad()
            loss = full(free)
            loss.backward()
            return loss

        with torch.enable_grad():
            optimizer.step(closure)
    with torch.no_grad():
        return free.detach(), float(full(free.detach()))


def _crossing(grid: np.ndarray, delta: np.ndarray, center: int, step: int) -> tuple[float, bool]:
    """Where `delta` first rises above `PROFILE_DROP` walking from `center`; the grid's end if it never does."""
    k = center
    while 0 <= k + step < len(grid):
        nxt = k + step
        if delta[nxt] > PROFILE_DROP:
            a, b = delta[k], delta[nxt]
            frac = (PROFILE_DROP - a) / (b - a) if b != a else 0.0
            return float(grid[k] + frac * (grid[nxt] - grid[k])), True
        k = nxt
    return float(grid[k]), False
