"""System 1: a textured parallel slider bearing, simulated with the 2-D Reynolds equation.

This is a SIMULATOR, not measured data: a finite-volume solution of the steady, incompressible,
isoviscous Reynolds equation for a parallel slider whose stationary pad carries a partial laser
surface texture of spherical dimples, after I. Etsion and co-workers (e.g. Brizmer, Kligerman and
Etsion, Tribology Letters 15, 2003, "A laser surface textured parallel thrust bearing"). Its
numbers follow those trends; they are not a validated bearing design tool.

Geometry and units. The pad is `L = 2 mm` long in the sliding direction `x` and `B = 1 mm` wide in
`z`; the runner slides at `U = 1 m/s` over it, carrying oil of viscosity `mu = 0.05 Pa s`, at a
nominal (untextured) film thickness `c = 2 um`. Dimples of depth `hp` and radius `rp` sit at the
centres of square cells of side `2 r1`, where `Sp = pi rp^2 / (2 r1)^2` is the area density;
the texture covers the inlet part `x < alpha L` of the pad (`alpha`, the textured fraction; the
inlet is at `x = 0`), and the zone boundary cuts through the dimples it crosses. Inside a dimple
the film is `h = c + hp (1 - r^2 / rp^2)` (a paraboloid, the shallow limit of a spherical cap);
elsewhere `h = c`.

Equation. With `X = x / L`, `Z = z / L`, `H = h / c` and `p = P * 6 mu U L / c^2`::

    d/dX (H^3 dP/dX) + d/dZ (H^3 dP/dZ) = dH/dX,     P = 0 on the four edges,

discretized by finite volumes on an `nx x nz` grid of cell centres (default 96 x 48, so a cell
is 20.8 um; film thickness is averaged over 3 x 3 sub-points per cell so that dimples a few cells
wide are not aliased). Face values of `H^3` are harmonic means; the Couette term uses face
values of `H`, so the scheme conserves mass. The sparse system (scipy.sparse, solved with
`spsolve`) is a symmetric M-matrix.

Cavitation. Half-Sommerfeld with complementarity (`P >= 0`, the flow residual `>= 0` where
`P = 0`, and their product zero), solved by a primal-dual active-set iteration: nodes are
clamped to zero or released according to the sign of `lambda - P`, until the active set stops
changing (typically 3-6 solves).

Outputs. Load capacity `W = integral of p dA` (N), the friction force on the runner
`F = integral of (mu U / h + (h / 2) dp/dx) dA` (N) and the friction coefficient `F / W`. A plain
(untextured) parallel slider carries no load (`W = 0`, infinite friction coefficient): texturing
the inlet part of the pad makes it work like a Rayleigh step, and the load peaks at a textured
fraction of about 0.6-0.7, as Etsion's analyses found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from data.core import parameter_arrays

LENGTH_M, WIDTH_M = 2e-3, 1e-3
SPEED_M_S, VISCOSITY_PA_S, FILM_M = 1.0, 0.05, 2e-6
LOAD_NOISE, FRICTION_LOG_NOISE = 0.02, 0.02  # relative measurement noise when `simulate` gets an rng


@dataclass(frozen=True)
class Grid:
    """Finite-volume grid: `nx` cells along the sliding direction, `nz` across, `sub` sub-points per cell side."""

    nx: int = 96
    nz: int = 48
    sub: int = 3


def config() -> dict[str, Any]:
    """Return a fresh campaign config dict: minimize friction while the pad carries at least 0.8 N."""
    return {
        "name": "bearing",
        "seed": 0,
        "parameters": [
            {"name": "dimple_depth_um", "type": "continuous", "bounds": [1.0, 10.0]},
            {"name": "dimple_radius_um", "type": "continuous", "bounds": [40.0, 120.0]},
            {"name": "area_density", "type": "continuous", "bounds": [0.05, 0.5]},
            {"name": "textured_fraction", "type": "continuous", "bounds": [0.1, 1.0]},
        ],
        "constraints": [],
        "objectives": [{"name": "friction_coeff", "goal": "minimize"}],
        "safety": [{"name": "load_N", "lower": 0.8, "confidence": 0.95}],
        "surrogate": {"kind": "gp"},
    }


def film_thickness(depth_um: float, radius_um: float, density: float, fraction: float, grid: Grid) -> np.ndarray:
    """Dimensionless film thickness `H = h / c` at the cell centres, an `nx x nz` array (cell averages)."""
    rp, hp = radius_um * 1e-6, depth_um * 1e-6
    r1 = rp * np.sqrt(np.pi / (4.0 * density))
    dx, dz = LENGTH_M / grid.nx, WIDTH_M / grid.nz
    offsets = (np.arange(grid.sub) + 0.5) / grid.sub - 0.5
    x = ((np.arange(grid.nx) + 0.5)[:, None] + offsets[None, :]).ravel() * dx
    # Centre the dimple array across the width, so the side edges cut dimples symmetrically.
    z = ((np.arange(grid.nz) + 0.5)[:, None] + offsets[None, :]).ravel() * dz
    z = z - 0.5 * WIDTH_M + r1
    u = np.mod(x, 2 * r1) - r1
    v = np.mod(z, 2 * r1) - r1
    textured = (x < fraction * LENGTH_M)[:, None]  # the zone boundary cuts through dimples: smooth in `alpha`
    r2 = u[:, None] ** 2 + v[None, :] ** 2
    depth = np.where(textured & (r2 < rp**2), hp * (1.0 - r2 / rp**2), 0.0)
    h = FILM_M + depth.reshape(grid.nx, grid.sub, grid.nz, grid.sub).mean(axis=(1, 3))
    return h / FILM_M


def solve_pressure(H: np.ndarray, max_iter: int = 30) -> np.ndarray:
    """Dimensionless pressure `P >= 0` (half-Sommerfeld by complementarity) for film `H`, `nx x nz`."""
    nx, nz = H.shape
    dX, dZ = 1.0 / nx, (WIDTH_M / LENGTH_M) / nz
    idx = np.arange(nx * nz).reshape(nx, nz)
    H3 = H**3
    # Face conductances (harmonic means inside; the wall cell's own H at the p = 0 boundary, half a cell away).
    cx = 2 * H3[:-1] * H3[1:] / (H3[:-1] + H3[1:]) / dX**2
    cz = 2 * H3[:, :-1] * H3[:, 1:] / (H3[:, :-1] + H3[:, 1:]) / dZ**2
    diag = np.zeros((nx, nz))
    diag[:-1] += cx
    diag[1:] += cx
    diag[:, :-1] += cz
    diag[:, 1:] += cz
    diag[0] += 2 * H3[0] / dX**2
    diag[-1] += 2 * H3[-1] / dX**2
    diag[:, 0] += 2 * H3[:, 0] / dZ**2
    diag[:, -1] += 2 * H3[:, -1] / dZ**2
    rows = np.concatenate([idx.ravel(), idx[:-1].ravel(), idx[1:].ravel(), idx[:, :-1].ravel(), idx[:, 1:].ravel()])
    cols = np.concatenate([idx.ravel(), idx[1:].ravel(), idx[:-1].ravel(), idx[:, 1:].ravel(), idx[:, :-1].ravel()])
    vals = np.concatenate([diag.ravel(), -cx.ravel(), -cx.ravel(), -cz.ravel(), -cz.ravel()])
    K = sp.csr_matrix((vals, (rows, cols)), shape=(nx * nz, nx * nz))
    # -div(H^3 grad P) = -dH/dX, with face H from neighbour means and the edge cells' own H at the edges.
    He = np.vstack([0.5 * (H[:-1] + H[1:]), H[-1:]])
    Hw = np.vstack([H[:1], 0.5 * (H[:-1] + H[1:])])
    f = (-(He - Hw) / dX).ravel()
    P = np.zeros(nx * nz)
    active = np.zeros(nx * nz, dtype=bool)
    for _ in range(max_iter):
        free = ~active
        P = np.zeros(nx * nz)
        P[free] = spsolve(K[free][:, free].tocsc(), f[free])
        multiplier = K @ P - f  # >= 0 where P is clamped, 0 where P is free
        new_active = (multiplier - P) > 1e-14
        if np.array_equal(new_active, active):
            break
        active = new_active
    return np.maximum(P, 0.0).reshape(nx, nz)


def bearing_outputs(
    depth_um: float, radius_um: float, density: float, fraction: float, grid: Grid | None = None
) -> dict[str, float]:
    """Solve one design: load (N), friction force (N) and friction coefficient.

    Example:
        >>> out = bearing_outputs(5.0, 80.0, 0.3, 0.6, Grid(48, 24))
        >>> out["load_N"] > 1.0
        True
    """
    grid = grid or Grid()
    H = film_thickness(depth_um, radius_um, density, fraction, grid)
    P = solve_pressure(H)
    scale = 6 * VISCOSITY_PA_S * SPEED_M_S * LENGTH_M / FILM_M**2
    p = P * scale
    dx, dz = LENGTH_M / grid.nx, WIDTH_M / grid.nz
    h = H * FILM_M
    dpdx = np.gradient(np.pad(p, ((1, 1), (0, 0))), dx, axis=0)[1:-1]
    shear = VISCOSITY_PA_S * SPEED_M_S / h + 0.5 * h * dpdx
    load = float(p.sum() * dx * dz)
    friction = float(shear.sum() * dx * dz)
    coeff = friction / load if load > 1e-12 else float("inf")
    return {"load_N": load, "friction_N": friction, "friction_coeff": coeff}


def simulate(
    designs_df: pd.DataFrame, rng: np.random.Generator | None = None, grid: Grid | None = None, progress: bool = False
) -> pd.DataFrame:
    """Simulate the load capacity and friction of textured bearing designs.

    Args:
        designs_df: One row per design, columns `dimple_depth_um`, `dimple_radius_um`,
            `area_density` and `textured_fraction` (user units, inside the config's bounds).
        rng: `None` for the solver's values; a generator adds 2 % measurement noise to the
            load and to the friction coefficient.
        grid: Finite-volume grid (default 96 x 48; coarser is faster and rougher).
        progress: Show a rich progress bar.

    Returns:
        A DataFrame with the index of `designs_df` and the columns `friction_coeff`, `load_N`
        and `friction_N`.
    """
    x = parameter_arrays(designs_df, config())
    rows = []
    columns = ("dimple_depth_um", "dimple_radius_um", "area_density", "textured_fraction")
    designs = list(zip(*(x[c] for c in columns), strict=True))
    for depth, radius, density, fraction in _progress(designs, progress, "Solving the Reynolds equation"):
        rows.append(bearing_outputs(depth, radius, density, fraction, grid=grid))
    out = pd.DataFrame(rows, index=designs_df.index, columns=["load_N", "friction_N", "friction_coeff"])
    if rng is not None:
        out["load_N"] *= 1 + LOAD_NOISE * rng.standard_normal(len(out))
        out["friction_coeff"] *= np.exp(FRICTION_LOG_NOISE * rng.standard_normal(len(out)))
    return out[["friction_coeff", "load_N", "friction_N"]]


def generate_dataset(n: int, seed: int = 0, grid: Grid | None = None, progress: bool = True) -> pd.DataFrame:
    """Sample `n` texture designs uniformly from the box and solve each one (noise-free).

    Returns:
        The design columns followed by the outcome columns of `simulate`.

    Example:
        >>> generate_dataset(2, grid=Grid(32, 16), progress=False).shape
        (2, 7)
    """
    rng = np.random.default_rng(seed)
    params = config()["parameters"]
    designs_df = pd.DataFrame({p["name"]: rng.uniform(p["bounds"][0], p["bounds"][1], size=n) for p in params})
    return pd.concat([designs_df, simulate(designs_df, None, grid, progress)], axis=1)


def _progress(items: list, show: bool, label: str):
    if not show:
        yield from items
        return
    from rich.progress import track

    yield from track(items, description=label)
