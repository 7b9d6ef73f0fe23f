"""Benchmarks of three optimization-toolkit items: flat-minimum ranking, CMA-ES, stochastic Levenberg-Marquardt.

- `flatness`: on the textured bearing (system 1, a GP of log friction and load from simulated
  runs), the top design of `inverse_design` ranked by its objective (the default) against the top
  design ranked by flatness (`rank_by="flatness"`: the expected objective under the manufacturing
  tolerance, near-ties to the smaller Hessian eigenvalue; and with `flat_tie=0`, the expected
  objective alone). Each top design is perturbed by the tolerance (Gaussian, unit-cube
  coordinates) and every perturbed copy is re-simulated: mean true friction coefficient, share of
  copies that still carry the load, and the 90th percentile of friction.
- `population`: IPOP-CMA-ES (`design.inverse.population.cmaes_design`) against the multi-start
  gradient method and CMA-ES as a first stage before the gradient polish, with counted surrogate
  calls, on the bearing (re-simulated) and on a shifted Rastrigin function through an exact,
  differentiable "surrogate" (the function itself, zero variance).
- `levenberg`: stochastic Levenberg-Marquardt (`surrogates.levenberg.stochastic_lm`) against
  Adam on the same mini-batches and scipy's `least_squares` (trust-region reflective, full batch)
  on a Hill (Emax) dose-response fit to 10,000 noisy points.

`toolkit_rows(seed)` runs one seed of each, about a minute each, for a summary table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
from scipy.optimize import least_squares

from benchmarks.inverse import LogOutcomeGP
from data import bearing
from design.inverse import InverseOptions, inverse_design
from design.inverse.population import cmaes_design
from design.inverse.select import verify_designs
from design.parameters import ContinuousParameter
from design.space import SearchSpace
from surrogates.levenberg import hill_curve, hill_residual, stochastic_lm

GRID = bearing.Grid(48, 24, 2)
OUTCOMES = ["friction_coeff", "load_N"]
TOLERANCE = 0.05  # manufacturing tolerance of the flatness benchmark: sd in unit-cube coordinates
PERTURBATIONS = 24  # re-simulated perturbed copies of each top design


def bearing_problem(n_train: int, seed: int) -> tuple[SearchSpace, LogOutcomeGP, list[str], pd.DataFrame]:
    """The bearing: space, a GP of log friction and load on `n_train` simulated textures, goals, training rows.

    The load limit is the 95th percentile of the training loads, so the best designs sit where the
    load constraint bites.
    """
    train_df = bearing.generate_dataset(n_train, seed, grid=GRID, progress=False)
    train_df = train_df[train_df["load_N"] > 0].reset_index(drop=True)  # no dimple in the zone: infinite friction
    space = SearchSpace(
        [ContinuousParameter(name=p["name"], bounds=tuple(p["bounds"])) for p in bearing.config()["parameters"]]
    )
    X = space.encode(train_df)
    Y = torch.tensor(train_df[OUTCOMES].to_numpy(dtype=float), dtype=torch.double)
    threshold = float(np.quantile(train_df["load_N"], 0.95))
    return space, LogOutcomeGP(X, Y, positive=[0]), ["friction_coeff=min", f"load_N>={threshold:.4f}"], train_df


def _simulate(df: pd.DataFrame, rng: np.random.Generator | None = None) -> pd.DataFrame:
    return bearing.simulate(df, rng, grid=GRID)


def perturbed_designs(space: SearchSpace, design_df: pd.DataFrame, tolerance: float, seed: int) -> pd.DataFrame:
    """`PERTURBATIONS` copies of one design, each coordinate jittered by `N(0, tolerance^2)` in the unit cube."""
    X = space.encode(design_df[space.names].iloc[:1])
    g = torch.Generator().manual_seed(seed)
    jittered = (X + tolerance * torch.randn(PERTURBATIONS, X.shape[-1], generator=g, dtype=torch.double)).clamp(0, 1)
    return space.decode(jittered)


def run_flatness(seeds: tuple[int, ...] = (0, 1, 2), n_train: int = 150, starts: int = 256) -> pd.DataFrame:
    """One row per problem, seed and ranking: the top design's true objective, nominal and perturbed.

    Problems: the bearing (objective: friction coefficient; goal: the load limit) and `two_wells`
    (exact; no constraint). `perturbed_goals_met` is the share of perturbed copies that meet
    every goal.
    """
    rows = []
    for seed in seeds:
        space, model, goals, train_df = bearing_problem(n_train, seed)
        threshold = float(goals[1].split(">=")[1])

        def bearing_truth(df: pd.DataFrame, threshold: float = threshold) -> tuple[np.ndarray, np.ndarray]:
            simulated = _simulate(df)
            return simulated["friction_coeff"].to_numpy(), (simulated["load_N"] >= threshold).to_numpy()

        base = InverseOptions(steps=100, tolerance=TOLERANCE, train_X=space.encode(train_df))
        rows += _flatness_rows("bearing (S1), GP", space, model, goals, OUTCOMES, base, starts, seed, bearing_truth)
        w_space, w_model = two_wells_problem()

        wells_options = InverseOptions(steps=100, tolerance=TOLERANCE)
        rows += _flatness_rows(
            "two wells 2-D, exact", w_space, w_model, ["y=min"], ["y"], wells_options, starts, seed, _wells_truth
        )
    return pd.DataFrame(rows)


def _flatness_rows(problem, space, model, goals, outcomes, base, starts, seed, truth) -> list[dict]:  # noqa: ANN001
    rankings = {
        "objective (default)": base,
        "flatness": replace(base, rank_by="flatness"),
        "flatness, flat_tie=0": replace(base, rank_by="flatness", flat_tie=0.0),
    }
    rows = []
    for name, options in rankings.items():
        t = time.perf_counter()
        designs_df = inverse_design(
            model, space, goals, n=4, starts=starts, seed=seed, outcomes=outcomes, options=options
        )
        seconds = time.perf_counter() - t
        top = designs_df.iloc[:1]
        nominal, _ = truth(top[space.names])
        perturbed, met = truth(perturbed_designs(space, top, TOLERANCE, seed))
        rows.append(
            {
                "problem": problem,
                "seed": seed,
                "ranking": name,
                "nominal_objective": float(nominal[0]),
                "perturbed_objective_mean": float(np.mean(perturbed)),
                "perturbed_objective_p90": float(np.quantile(perturbed, 0.9)),
                "perturbed_goals_met": float(np.mean(met)),
                "hessian_max_eig": float(top["hessian_max_eig"].iloc[0]),
                "seconds": seconds,
            }
        )
    return rows


def _wells_truth(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return two_wells(torch.tensor(df.to_numpy(dtype=float), dtype=torch.double)).numpy(), np.ones(len(df), dtype=bool)


def two_wells(x: torch.Tensor) -> torch.Tensor:
    """A deep, sharp well at 0.25 (sd 0.03) and a broad one at 0.7 (sd 0.2), 0.9 as deep: `... x d` -> `...`."""
    sharp = torch.exp(-((x - 0.25) ** 2).sum(-1) / (2 * 0.03**2))
    broad = 0.9 * torch.exp(-((x - 0.7) ** 2).sum(-1) / (2 * 0.2**2))
    return -(sharp + broad)


def two_wells_problem(d: int = 2) -> tuple[SearchSpace, ExactFunction]:
    space = SearchSpace([ContinuousParameter(name=f"x{i}", bounds=(0.0, 1.0)) for i in range(d)])
    return space, ExactFunction(two_wells, 0.0, 1.0)


class ExactFunction:
    """A 'surrogate' that is the function itself: mean `f(x)` in user units, zero variance, differentiable.

    Args:
        f: Maps a `... x d` tensor in user units to `...` values.
        lower: Lower bounds of the box (user units), `d` values.
        upper: Upper bounds.
    """

    num_outputs = 1

    def __init__(self, f: Callable[[torch.Tensor], torch.Tensor], lower: float, upper: float):
        self.f, self.lower, self.upper = f, lower, upper

    def posterior(self, X: torch.Tensor, output_indices: list[int] | None = None, *, observation_noise: bool = False):  # noqa: ANN201
        mean = self.f(self.lower + (self.upper - self.lower) * X)[..., None]
        return SimpleNamespace(mean=mean, variance=torch.zeros_like(mean))


RASTRIGIN_DIM = 6
RASTRIGIN_SHIFT = torch.tensor([1.3, -2.1, 0.7, 2.9, -0.4, 1.8], dtype=torch.double)  # the minimum, off the centre


def rastrigin(x: torch.Tensor) -> torch.Tensor:
    """Shifted Rastrigin function: `10 d + sum(z^2 - 10 cos(2 pi z))`, `z = x - shift`; minimum 0 at the shift."""
    z = x - RASTRIGIN_SHIFT[: x.shape[-1]]
    return 10 * x.shape[-1] + (z**2 - 10 * torch.cos(2 * torch.pi * z)).sum(-1)


def rastrigin_problem() -> tuple[SearchSpace, ExactFunction]:
    space = SearchSpace([ContinuousParameter(name=f"x{i}", bounds=(-5.12, 5.12)) for i in range(RASTRIGIN_DIM)])
    return space, ExactFunction(rastrigin, -5.12, 5.12)


def run_population(seeds: tuple[int, ...] = (0, 1, 2), n_train: int = 150) -> pd.DataFrame:
    """Multi-start gradient, CMA-ES alone and CMA-ES + gradient polish on the bearing and on Rastrigin."""
    rows = []
    for seed in seeds:
        space, model, goals, train_df = bearing_problem(n_train, seed)
        rows += _population_rows("bearing (S1), GP", space, model, goals, seed, _bearing_score(space, goals))
        r_space, r_model = rastrigin_problem()
        rows += _population_rows(
            f"Rastrigin {RASTRIGIN_DIM}-D, exact", r_space, r_model, ["y=min"], seed, _rastrigin_score
        )
    return pd.DataFrame(rows)


def _population_rows(problem, space, model, goals, seed, score) -> list[dict]:  # noqa: ANN001
    outcomes = OUTCOMES if "bearing" in problem else ["y"]
    options = InverseOptions(steps=100)
    rows = []

    def record(method: str, run: Callable[[], pd.DataFrame]) -> int:
        t = time.perf_counter()
        designs_df = run()
        seconds = time.perf_counter() - t
        calls = int(designs_df.attrs["surrogate_calls"])
        rows.append(
            {"problem": problem, "seed": seed, "method": method, "surrogate_calls": calls}
            | score(designs_df)
            | {"seconds": seconds}
        )
        return calls

    calls = record(
        "multi-start gradient (256 starts)",
        lambda: inverse_design(model, space, goals, n=8, starts=256, seed=seed, outcomes=outcomes, options=options),
    )
    record(
        "CMA-ES (same calls)",
        lambda: cmaes_design(model, space, goals, n=8, budget=calls, seed=seed, outcomes=outcomes),
    )
    polish = replace(options, first_stage="cmaes")
    record(
        "CMA-ES + gradient polish (256 starts)",
        lambda: inverse_design(model, space, goals, n=8, starts=256, seed=seed, outcomes=outcomes, options=polish),
    )
    return rows


def _bearing_score(space: SearchSpace, goals: list[str]) -> Callable[[pd.DataFrame], dict]:
    def score(designs_df: pd.DataFrame) -> dict:
        checked = verify_designs(designs_df[space.names], _simulate, goals)
        met = checked[checked["all_met_true"]]
        best = float(met["friction_coeff_true"].min()) if len(met) else float("nan")
        return {"best_true_objective": best, "met_all": float(checked["all_met_true"].mean())}

    return score


def _rastrigin_score(designs_df: pd.DataFrame) -> dict:
    X = torch.tensor(designs_df[[f"x{i}" for i in range(RASTRIGIN_DIM)]].to_numpy(), dtype=torch.double)
    values = rastrigin(X)
    return {"best_true_objective": float(values.min()), "met_all": float("nan")}


HILL_TRUTH = {"E0": 0.2, "Emax": 1.5, "EC50": 4.0, "hill": 1.8}  # the dose-response curve the points come from
HILL_NOISE_SD = 0.1
HILL_START = (0.0, 1.0, 0.0, 0.0)  # E0, Emax, log EC50 (EC50 = 1), log Hill (h = 1): the same for every method


def hill_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` doses log-uniform on [0.1, 100] and noisy responses of the `HILL_TRUTH` curve."""
    g = torch.Generator().manual_seed(seed)
    dose = 10 ** (-1 + 3 * torch.rand(n, generator=g, dtype=torch.double))
    truth = torch.tensor([HILL_TRUTH["E0"], HILL_TRUTH["Emax"], np.log(HILL_TRUTH["EC50"]), np.log(HILL_TRUTH["hill"])])
    response = hill_curve(truth.double(), dose) + HILL_NOISE_SD * torch.randn(n, generator=g, dtype=torch.double)
    return dose, response


def run_levenberg(seeds: tuple[int, ...] = (0, 1, 2), n: int = 10_000, batch_size: int = 256) -> pd.DataFrame:
    """Stochastic LM vs Adam (same batches; 1, 5 and 50 epochs) vs scipy `least_squares` on a Hill fit.

    Scored against the full-batch least-squares optimum (scipy's answer): the mean squared
    residual above its, and the largest parameter difference (E0, Emax, log EC50, log Hill);
    and against the true curve: the largest relative error of E0, Emax, EC50 and Hill.
    """
    warm = hill_data(16, 0)  # torch.func's one-time set-up is not the method's time
    stochastic_lm(hill_residual, torch.tensor(HILL_START, dtype=torch.double), *warm, batch_size=8, epochs=1)
    return pd.DataFrame([row for seed in seeds for row in _levenberg_rows(seed, n, batch_size)])


def _levenberg_rows(seed: int, n: int, batch_size: int) -> list[dict]:
    dose, response = hill_data(n, seed)
    start = torch.tensor(HILL_START, dtype=torch.double)

    def lm(epochs: int) -> Callable[[], torch.Tensor]:
        return lambda: stochastic_lm(hill_residual, start, dose, response, batch_size, epochs, seed=seed).params

    def adam(epochs: int) -> Callable[[], torch.Tensor]:
        return lambda: _adam(start, dose, response, batch_size, epochs, seed)

    def scipy_fit() -> torch.Tensor:
        residual = lambda t: hill_residual(torch.tensor(t), dose, response).numpy()  # noqa: E731
        return torch.tensor(least_squares(residual, start.numpy()).x)

    fits = {"stochastic LM, 1 epoch": lm(1), "stochastic LM, 5 epochs": lm(5)}
    fits |= {"Adam (lr 0.05), 1 epoch": adam(1), "Adam, 5 epochs": adam(5), "Adam, 50 epochs": adam(50)}
    fits |= {"scipy least_squares (full batch)": scipy_fit}
    timed = {}
    for method, fit in fits.items():
        t = time.perf_counter()
        timed[method] = (fit(), time.perf_counter() - t)
    optimum = timed["scipy least_squares (full batch)"][0]
    return [
        {"seed": seed, "method": method} | _hill_errors(theta, optimum, dose, response) | {"seconds": seconds}
        for method, (theta, seconds) in timed.items()
    ]


def _adam(
    start: torch.Tensor, dose: torch.Tensor, response: torch.Tensor, batch_size: int, epochs: int, seed: int
) -> torch.Tensor:
    theta = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([theta], lr=0.05)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(dose), generator=generator).split(batch_size):
            optimizer.zero_grad()
            (hill_residual(theta, dose[batch], response[batch]) ** 2).mean().backward()
            optimizer.step()
    return theta.detach()


def _hill_errors(theta: torch.Tensor, optimum: torch.Tensor, dose: torch.Tensor, response: torch.Tensor) -> dict:
    fitted = {"E0": theta[0], "Emax": theta[1], "EC50": torch.exp(theta[2]), "hill": torch.exp(theta[3])}
    relative = [abs(float(fitted[k]) - v) / abs(v) for k, v in HILL_TRUTH.items()]
    with torch.no_grad():
        mse = float((hill_residual(theta, dose, response) ** 2).mean())
        best = float((hill_residual(optimum, dose, response) ** 2).mean())
    return {
        "excess_mse": mse - best,
        "distance_to_optimum": float((theta - optimum).abs().max()),
        "max_relative_error_to_truth": max(relative),
    }


def summarize(results: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Means over seeds of every numeric column, grouped by `by` (first-appearance order), with the seeds counted."""
    numeric = [c for c in results.columns if c not in by and c != "seed" and results[c].dtype != object]
    means = results.groupby(by, sort=False)[numeric].mean().reset_index()
    return means.assign(seeds=results.groupby(by, sort=False)["seed"].nunique().to_numpy())


def toolkit_rows(seed: int = 0) -> list[dict]:
    """One row per item for a summary table: the plain alternative's figure beside Valley's, one seed each.

    Keys: `item`, `plain` (the plain alternative), `plain_figure`, `valley_figure` and `seconds`.
    """
    rows = []
    t = time.perf_counter()
    flat = run_flatness((seed,)).set_index(["problem", "ranking"])
    rows.append(
        {
            "item": "7 flat minima",
            "plain": "rank by objective",
            "plain_figure": _flat_figure(flat, "objective (default)"),
            "valley_figure": _flat_figure(flat, "flatness"),
            "seconds": time.perf_counter() - t,
        }
    )
    t = time.perf_counter()
    population = run_population((seed,)).set_index(["problem", "method"])
    gradient, cma = "multi-start gradient (256 starts)", "CMA-ES (same calls)"
    rows.append(
        {
            "item": "6 CMA-ES",
            "plain": "multi-start gradient",
            "plain_figure": _population_figure(population, gradient),
            "valley_figure": _population_figure(population, cma),
            "seconds": time.perf_counter() - t,
        }
    )
    t = time.perf_counter()
    fits = run_levenberg((seed,)).set_index("method")
    rows.append(
        {
            "item": "5 stochastic LM",
            "plain": "Adam, same batches (1 epoch); scipy least_squares",
            "plain_figure": f"Adam excess MSE {fits.loc['Adam (lr 0.05), 1 epoch', 'excess_mse']:.1e}; "
            f"scipy {fits.loc['scipy least_squares (full batch)', 'seconds']:.2f} s",
            "valley_figure": f"excess MSE {fits.loc['stochastic LM, 1 epoch', 'excess_mse']:.1e} in "
            f"{fits.loc['stochastic LM, 1 epoch', 'seconds']:.2f} s",
            "seconds": time.perf_counter() - t,
        }
    )
    return rows


def _flat_figure(results: pd.DataFrame, ranking: str) -> str:
    bearing_row = results.loc[("bearing (S1), GP", ranking)]
    wells_row = results.loc[("two wells 2-D, exact", ranking)]
    return (
        f"bearing perturbed friction {bearing_row['perturbed_objective_mean']:.4f} "
        f"(load met {bearing_row['perturbed_goals_met']:.0%}); two wells {wells_row['perturbed_objective_mean']:.3f}"
    )


def _population_figure(results: pd.DataFrame, method: str) -> str:
    bearing_row = results.loc[("bearing (S1), GP", method)]
    rastrigin_row = results.loc[(f"Rastrigin {RASTRIGIN_DIM}-D, exact", method)]
    return (
        f"bearing friction {bearing_row['best_true_objective']:.4f} (met {bearing_row['met_all']:.0%}); "
        f"Rastrigin {rastrigin_row['best_true_objective']:.2f}"
    )
