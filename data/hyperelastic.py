"""System 5: a neo-Hookean hyperelastic bar under load, its reference solution and its potential energy.

A SYNTHETIC test problem in nondimensional units (no particular material). A bar of length
`L = 1` is clamped at `X = 0`, carries a distributed axial body force `b(X)` per unit reference
length and a traction `T` at its free end `X = L`. Its displacement is `u(X)`, the stretch
`F = 1 + u'(X)`, and the compressible 1-D neo-Hookean strain energy density is::

    W(F) = MU / 2 * (F^2 - 1 - 2 ln F) + LAM / 2 * (ln F)^2          (MU = LAM = 1)
    P(F) = dW/dF = MU * (F - 1/F) + LAM * ln(F) / F                   first Piola-Kirchhoff stress
    b(X) = B0 * (1 + 2 sin(3 pi X))                                    (B0 = 1, T = 0.2)

Equilibrium is `dP/dX + b = 0` with `u(0) = 0` and `P(L) = T`, so the stress is known in closed
form, `P(X) = T + B0 * ((L - X) + 2 / (3 pi) * (cos(3 pi X) - cos(3 pi L)))`, and the reference
is solved finely: `P(F) = P(X)` for `F` by `scipy.optimize.brentq` (P is increasing in F) on a
grid of 4,001 points, and `u(X) = integral_0^X (F - 1)` by `scipy.integrate.cumulative_trapezoid`
(error about 1e-8). Stretches range from about 1.07 to 1.84: a large-strain, nonlinear response.

The same solution minimizes the potential energy (the principle of minimum potential energy)::

    Pi[u] = integral_0^L W(1 + u') dX - integral_0^L b u dX - T u(L)

over fields with `u(0) = 0`. Since `u(L) = integral u'` when `u(0) = 0`, `Pi = L * mean(e)` over
uniform points with the energy density `e = W(1 + u') - b u - T u'`: this is
`potential_energy_density`, ready to be an energy-style physics term (deep energy method).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from scipy.integrate import cumulative_trapezoid
from scipy.optimize import brentq
from torch import Tensor

LENGTH = 1.0
MU = 1.0
LAM = 1.0
B0 = 1.0
TRACTION = 0.2
_GRID = np.linspace(0.0, LENGTH, 4001)


def body_force(x: np.ndarray | Tensor) -> np.ndarray | Tensor:
    """`b(X)`, the distributed axial load per unit reference length (numpy or torch)."""
    if isinstance(x, Tensor):
        return B0 * (1 + 2 * torch.sin(3 * math.pi * x))
    return B0 * (1 + 2 * np.sin(3 * math.pi * x))


def stress(x: np.ndarray) -> np.ndarray:
    """The equilibrium first Piola-Kirchhoff stress `P(X)` in closed form."""
    k = 3 * math.pi
    return TRACTION + B0 * ((LENGTH - x) + 2 / k * (np.cos(k * x) - math.cos(k * LENGTH)))


def piola(F: np.ndarray) -> np.ndarray:
    """`P(F) = dW/dF` of the neo-Hookean energy."""
    return MU * (F - 1 / F) + LAM * np.log(F) / F


def strain_energy(F: np.ndarray | Tensor) -> np.ndarray | Tensor:
    """The neo-Hookean strain energy density `W(F)` (numpy or torch)."""
    log_F = torch.log(F) if isinstance(F, Tensor) else np.log(F)
    return MU / 2 * (F**2 - 1 - 2 * log_F) + LAM / 2 * log_F**2


def _solve_reference() -> tuple[np.ndarray, np.ndarray]:
    F = np.array([brentq(lambda f, p=p: piola(f) - p, 0.05, 20.0, xtol=1e-13) for p in stress(_GRID)])
    return F, cumulative_trapezoid(F - 1, _GRID, initial=0.0)


_F_REF, _U_REF = _solve_reference()


def reference_displacement(x: np.ndarray) -> np.ndarray:
    """The reference displacement `u(X)` at positions in `[0, L]`.

    Example:
        >>> float(reference_displacement(np.array([0.0]))[0])
        0.0
    """
    return np.interp(np.asarray(x, dtype=float), _GRID, _U_REF)


def reference_stretch(x: np.ndarray) -> np.ndarray:
    """The reference stretch `F(X) = 1 + u'(X)`."""
    return np.interp(np.asarray(x, dtype=float), _GRID, _F_REF)


def sample_measurements(n: int, seed: int = 0, noise_sd: float = 0.01) -> pd.DataFrame:
    """Noisy displacement measurements at `n` positions drawn uniformly along the bar.

    Args:
        n: Number of measurements.
        seed: Seed of positions and noise.
        noise_sd: Standard deviation of the Gaussian measurement noise (the tip moves about 0.41).

    Returns:
        A DataFrame with columns `x` and `u`.

    Example:
        >>> sample_measurements(10, seed=0).shape
        (10, 2)
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, LENGTH, n)
    return pd.DataFrame({"x": x, "u": reference_displacement(x) + rng.normal(0.0, noise_sd, n)})


def potential_energy_density(X: Tensor, Y_pred: Tensor, grad) -> Tensor:
    """`e = W(1 + u') - b u - T u'` at each point: `L * mean(e)` over uniform points is `Pi[u]`.

    Signature of a physics residual: `X` is `k x 1` positions (requiring grad), `Y_pred` the
    `k x 1` predicted displacements, `grad(y)` the derivative with respect to `X`. The stretch
    is clamped at 1e-3 so that a wild early network does not take the log of a negative number.
    Use as an energy term on collocation points, together with the clamp `u(0) = 0`
    (`clamp_residual` at `X = 0`).
    """
    u = Y_pred[:, 0]
    du = grad(u)[:, 0]
    F = (1 + du).clamp_min(1e-3)
    return strain_energy(F) - body_force(X[:, 0]) * u - TRACTION * du


def clamp_residual(X: Tensor, Y_pred: Tensor, grad) -> Tensor:
    """Residual of the boundary condition `u(0) = 0`: evaluate it at `X = 0`."""
    return Y_pred[:, 0]


def potential_energy(u: np.ndarray, x: np.ndarray | None = None) -> float:
    """`Pi[u]` of a displacement field sampled on a fine grid (trapezoid rule).

    Args:
        u: Displacements at `x` (default the 4,001-point reference grid), with `u[0] = 0`.
        x: Increasing positions from 0 to `L`.
    """
    x = _GRID if x is None else np.asarray(x, dtype=float)
    F = 1 + np.gradient(u, x)
    density = strain_energy(F) - body_force(x) * u
    return float(np.trapezoid(density, x) - TRACTION * u[-1])


def displacement_error(u_pred: np.ndarray, x: np.ndarray) -> float:
    """Relative L2 error of predicted displacements against the reference at positions `x`."""
    u_ref = reference_displacement(x)
    return float(np.linalg.norm(u_pred - u_ref) / np.linalg.norm(u_ref))
