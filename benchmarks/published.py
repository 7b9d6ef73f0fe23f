"""The published inverse-design benchmark (Ren et al., NeurIPS 2020): re-simulation error of the best of T designs.

Problems: the robot arm of Ardizzone et al. (2019) and Kruse et al. (2021) with the priors of Ren
et al. (`benchmarks.robot_arm.benchmark_*`), and Ren et al.'s sine wave (`benchmarks.sine_wave`). For each:
simulate `n_train` training rows and `n_targets` held-out targets (outcomes of designs drawn from
the same prior, other seed), then ask each method for `T` designs per target and re-simulate them.

Methods:

- `k-NN lookup`: the training designs whose outcomes are nearest the target;
- `neural adjoint`: Ren et al.'s method on an MLP trained on the MSE (`benchmarks.inverse_baselines`);
- `default (Valley)`: `inverse_design(..., targets=...)` (one batched run for all targets) with the
  training data passed (`InverseOptions(train_X=X, train_Y=Y)`, as `valley design` passes them)
  and every other setting at its default, on the same MLP and on a `NeuralEnsemble` with its
  defaults (the surrogate of the issue). The default `anchor="auto"` anchors on the data and
  descends only the targets that no anchored design meets;
- `descent only (Valley)`: the same call with `anchor=None`: gradient descent from random starts
  for every target (`design.inverse.batch`);
- `anchored on data (Valley)`: the same call with `anchor="data"`: the training designs nearest
  each target in outcome space, corrected by Gauss-Newton steps through the surrogate
  (`design.inverse.anchor`), for every target, met or not.

The metric is Ren et al.'s: the mean over targets of the squared error (mean over outcomes)
between the target and the re-simulated outcome of the first design (`mse_T1`) and of the best
of the first T designs (`mse_T10` for T = 10). `s_per_target` is the search time per target (its
T designs), without the surrogate's training (`fit_s`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
import torch

from benchmarks import robot_arm, sine_wave
from benchmarks.inverse_baselines import knn_designs, neural_adjoint, train_mlp
from design.inverse import InverseOptions, inverse_design
from design.parameters import ContinuousParameter
from design.space import SearchSpace
from surrogates.protocol import Surrogate

PUBLISHED_PROBLEMS = ("robot_arm_ren", "sine_wave")
# Valley's rows: the method's name and its `InverseOptions.anchor` ("auto" is the default)
VALLEY_METHODS = {"default (Valley)": "auto", "descent only (Valley)": None, "anchored on data (Valley)": "data"}
MLP_HIDDEN = (128, 128, 128)


@dataclass
class PublishedProblem:
    name: str
    space: SearchSpace
    outcomes: list[str]
    simulate: Callable[[pd.DataFrame, np.random.Generator | None], pd.DataFrame]
    dataset: Callable[[int, int], pd.DataFrame]  # (n, seed) -> designs drawn from the prior, with outcomes


def published_problem(name: str) -> PublishedProblem:
    """The problem called `name` (one of `PUBLISHED_PROBLEMS`)."""
    if name == "robot_arm_ren":
        params = zip(robot_arm.BENCHMARK_PARAMETERS, robot_arm.benchmark_bounds(), strict=True)
        space = SearchSpace([ContinuousParameter(name=p, bounds=b) for p, b in params])
        return PublishedProblem(
            name, space, list(robot_arm.BENCHMARK_OUTCOMES), robot_arm.benchmark_simulate, robot_arm.benchmark_dataset
        )
    if name == "sine_wave":
        params = zip(sine_wave.PARAMETERS, sine_wave.BOUNDS, strict=True)
        space = SearchSpace([ContinuousParameter(name=p, bounds=b) for p, b in params])
        return PublishedProblem(name, space, list(sine_wave.OUTCOMES), sine_wave.simulate, sine_wave.generate_dataset)
    raise ValueError(f"`name` must be one of {PUBLISHED_PROBLEMS}. Got {name!r} instead.")


def resimulation_mse(problem: PublishedProblem, designs: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """A `B x T` array: squared error (mean over outcomes) of each re-simulated design against its target.

    Args:
        problem: The problem.
        designs: `B x T x d` encoded designs (NaN rows for missing designs give NaN).
        targets: `B x m` target outcomes.
    """
    B, T, d = designs.shape
    flat = designs.reshape(-1, d)
    ok = ~flat.isnan().any(-1)
    Y = np.full((B * T, len(problem.outcomes)), np.nan)
    if ok.any():
        Y[ok.numpy()] = problem.simulate(problem.space.decode(flat[ok]), None)[problem.outcomes].to_numpy()
    return ((Y.reshape(B, T, -1) - targets.numpy()[:, None, :]) ** 2).mean(-1)


def run_published(
    name: str,
    n_train: int = 10_000,
    n_targets: int = 200,
    T: int = 10,
    starts: int = 256,
    steps: int = 300,
    seed: int = 0,
    mlp_epochs: int = 300,
    tolerance: float = 0.01,
) -> list[dict]:
    """Every method on one published problem; one row per (surrogate, method).

    Args:
        name: One of `PUBLISHED_PROBLEMS`.
        n_train: Training rows.
        n_targets: Held-out targets.
        T: Designs per target (the metric reports the first and the best of `T`).
        starts: Starts per target, for the neural adjoint and for Valley.
        steps: Adam steps of the neural adjoint (Valley uses its own default steps).
        seed: Seed of the data (targets: `seed + 1`), the surrogates and the methods.
        mlp_epochs: Training epochs of the MLP.
        tolerance: Tolerance of Valley's target goals (`y=target:v±tolerance`).

    Returns:
        Rows with `problem`, `surrogate`, `method`, `mse_T1`, `mse_T10` (best of `T`),
        `s_per_target` (search seconds per target) and `fit_s` (surrogate training seconds).
    """
    problem = published_problem(name)
    train_df = problem.dataset(n_train, seed)
    targets_df = problem.dataset(n_targets, seed + 1)[problem.outcomes].reset_index(drop=True)
    X = problem.space.encode(train_df)
    Y = torch.tensor(train_df[problem.outcomes].to_numpy(dtype=float), dtype=torch.double)
    targets = torch.tensor(targets_df.to_numpy(dtype=float), dtype=torch.double)
    d = X.shape[-1]
    rows = []

    def record(surrogate: str, method: str, search: Callable[[], torch.Tensor], fit_s: float) -> None:
        t = time.perf_counter()
        designs = search()
        seconds = time.perf_counter() - t
        mse = resimulation_mse(problem, designs, targets)
        rows.append(
            {"problem": name, "surrogate": surrogate, "method": method}
            | {"mse_T1": float(np.mean(mse[:, 0])), f"mse_T{T}": float(np.mean(np.nanmin(mse, axis=1)))}
            | {"s_per_target": seconds / n_targets, "fit_s": fit_s}
        )

    record("none (training set)", "k-NN lookup", lambda: knn_designs(X, Y, targets, T), 0.0)
    t = time.perf_counter()
    mlp = train_mlp(X, Y, hidden=MLP_HIDDEN, epochs=mlp_epochs, seed=seed)
    mlp_s, mlp_name = time.perf_counter() - t, f"MLP {'x'.join(map(str, MLP_HIDDEN))} (MSE)"
    record(mlp_name, "neural adjoint", lambda: neural_adjoint(mlp, targets, d, T, starts, steps, seed=seed), mlp_s)
    goals = [f"{o}=target:0±{tolerance:g}" for o in problem.outcomes]

    def valley(model: Surrogate, anchor: str | None = "auto") -> torch.Tensor:
        options = InverseOptions(train_X=X, train_Y=Y, anchor=anchor)  # as `valley design` passes the data
        designs_df = inverse_design(model, problem.space, goals, T, starts, seed, problem.outcomes, options, targets_df)
        return _as_tensor(problem.space, designs_df, n_targets, T)

    from surrogates.ensemble import NeuralEnsemble

    t = time.perf_counter()
    ensemble = NeuralEnsemble(seed=seed).fit(X, Y)
    ensemble_s = time.perf_counter() - t
    for surrogate, model, fit_s in ((mlp_name, mlp, mlp_s), ("NeuralEnsemble (defaults)", ensemble, ensemble_s)):
        for method, anchor in VALLEY_METHODS.items():
            record(surrogate, method, partial(valley, model, anchor), fit_s)
    return rows


def _as_tensor(space: SearchSpace, designs_df: pd.DataFrame, B: int, T: int) -> torch.Tensor:
    """`B x T x d` encoded designs from a table with a `target` column (NaN where a target has fewer)."""
    out = torch.full((B, T, space.d), float("nan"), dtype=torch.double)
    for b, group in designs_df.groupby("target"):
        X = space.encode(group[space.names])[:T]
        out[int(b), : len(X)] = X
    return out
