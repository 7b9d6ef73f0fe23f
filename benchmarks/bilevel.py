"""Bilevel benchmark: tuning the physics weight on the hyperelastic bar (S5), IFT hypergradients vs a grid.

The deep-energy-method terms of `benchmarks.surrogates.dem_terms` (potential energy on collocation
points, clamp `u(0) = 0` at 100x the weight) are added to an ensemble of the bar's displacement
trained on `n` noisy measurements (as `benchmarks.surrogates.fit_bar`: 3 members, tanh 32x32, 400
epochs of batch 32, `lr` 3e-3 constant, plain NLL). The weight is chosen by the predictive NLL on
`n_val` further noisy measurements (another seed):

- grid: one fit per weight of the grid (`tune_physics_weight`'s procedure), the best kept;
- IFT: one fit at the geometric middle of the grid's positive range, then
  `surrogates.bilevel.tune_ensemble_ift` (warm-started inner training, hypergradient steps on
  the log-weight) within that range, with the CG and the Neumann inverse-Hessian products.

Each method's chosen model is scored by the validation NLL and the relative L2 error of `u(x)`
against the reference solution at 201 points; seconds include every fit. Every number is measured
in the run that prints it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from benchmarks.surrogates import _single_thread, dem_terms
from data import hyperelastic
from surrogates import NetworkSpec, NeuralEnsemble, TrainingOptions
from surrogates.bilevel import gaussian_val_nll, tune_ensemble_ift

Progress = Callable[[str], None] | None
GRID = (0.0, 1.0, 10.0, 100.0, 1000.0)


def _data(n: int, seed: int) -> tuple[Tensor, Tensor]:
    df = hyperelastic.sample_measurements(n, seed=seed)
    return torch.tensor(df[["x"]].to_numpy()), torch.tensor(df[["u"]].to_numpy())


def fit_weighted(X: Tensor, Y: Tensor, weight: float, seed: int, epochs: int = 400) -> NeuralEnsemble:
    """The bar's ensemble with DEM terms of `weight` (0: none), trained as `benchmarks.surrogates.fit_bar`."""
    model = NeuralEnsemble(
        n_members=3,
        network=NetworkSpec(hidden=(32, 32), activation="tanh"),
        training=TrainingOptions(
            epochs=epochs,
            batch_size=32,
            validation_fraction=0.0,
            n_collocation=128,
            lr=3e-3,
            nll_beta=0.0,
            lr_schedule="constant",
        ),
        physics=dem_terms(weight) if weight > 0 else None,
        seed=seed,
    )
    return model.fit(X, Y, bounds=torch.tensor([[0.0], [hyperelastic.LENGTH]]))


def _scores(model: NeuralEnsemble, X_val: Tensor, Y_val: Tensor) -> dict[str, float]:
    x = np.linspace(0.0, hyperelastic.LENGTH, 201)
    with torch.no_grad():
        nll = float(gaussian_val_nll(model, X_val, Y_val))
        u = model.posterior(torch.as_tensor(x).reshape(-1, 1)).mean.numpy().ravel()
    return {"val_nll": nll, "rel_l2_error": hyperelastic.displacement_error(u, x)}


def bench_bilevel(
    seed: int,
    n: int = 30,
    n_val: int = 30,
    grid: Sequence[float] = GRID,
    outer_steps: int = 6,
    inner_steps: int = 150,
    epochs: int = 400,
    solvers: Sequence[str] = ("cg", "neumann"),
) -> pd.DataFrame:
    """Grid vs IFT tuning of the DEM weight for one seed: chosen weight, val NLL, error, seconds, fits."""
    X, Y = _data(n, seed)
    X_val, Y_val = _data(n_val, seed + 1000)
    rows = []
    start = time.perf_counter()
    best: tuple[float, float, NeuralEnsemble | None] = (math.inf, 0.0, None)
    for w in grid:
        model = fit_weighted(X, Y, float(w), seed, epochs)
        nll = _scores(model, X_val, Y_val)["val_nll"]
        if nll < best[0]:
            best = (nll, float(w), model)
    assert best[2] is not None
    seconds = time.perf_counter() - start
    rows.append({"method": f"grid ({len(grid)} fits)", "weight": best[1], **_scores(best[2], X_val, Y_val)})
    rows[-1]["seconds"] = seconds
    positive = [float(g) for g in grid if g > 0]
    low, high = min(positive), max(positive)
    for solver in solvers:
        start = time.perf_counter()
        w0 = math.sqrt(low * high)
        model = fit_weighted(X, Y, w0, seed, epochs)
        weight, _ = tune_ensemble_ift(
            model,
            dem_terms(1.0),
            X,
            Y,
            X_val,
            Y_val,
            w0,
            (low, high),
            seed=seed,
            outer_steps=outer_steps,
            inner_steps=inner_steps,
            solver=solver,
        )
        seconds = time.perf_counter() - start
        label = f"IFT {solver} ({outer_steps} x {inner_steps} steps)"
        rows.append({"method": label, "weight": weight, **_scores(model, X_val, Y_val), "seconds": seconds})
    return pd.DataFrame(rows).assign(seed=seed)


def run_bilevel_benchmark(seeds: Sequence[int] = (0, 1, 2), progress: Progress = None, **options) -> pd.DataFrame:
    """`bench_bilevel` for each seed on one torch thread; one row per seed and method."""
    frames = []
    with _single_thread():
        for seed in seeds:
            start = time.perf_counter()
            frames.append(bench_bilevel(seed, **options))
            if progress is not None:
                progress(f"seed {seed} done in {time.perf_counter() - start:.0f} s")
    return pd.concat(frames, ignore_index=True)


def format_bilevel(results: pd.DataFrame) -> str:
    """Per method: mean val NLL, rel. L2 error and seconds over seeds, and the weight chosen per seed."""
    grouped = results.groupby("method", sort=False)
    table = grouped[["val_nll", "rel_l2_error", "seconds"]].mean()
    table["weights"] = grouped["weight"].apply(lambda w: ", ".join(f"{v:.3g}" for v in w))
    seeds = results["seed"].nunique()
    title = f"System 5 (neo-Hookean bar): DEM weight chosen by validation NLL, mean over {seeds} seed(s)"
    return "\n".join([title, table.to_string(float_format=lambda v: f"{v:.4g}")])
