"""Benchmark of gradient-based inverse design on the bearing, the sequence oracle and the robot arm.

For each problem: simulate a training set, fit a surrogate, then ask each method for `n` designs
and re-simulate them. Methods: `gradient` (`design.inverse_design`), `training best` (the `n`
best training rows, by the same merit on their measured outcomes), `random search` (the best of
as many random designs scored by the surrogate as the gradient method made surrogate calls),
`differential evolution` (scipy, on the surrogate; continuous problems) or `GA on surrogate`
(sequences), each once with the gradient method's number of surrogate calls and once with the
reference budget `starts x steps` (what the descent would cost if it never dropped a start), and
for sequences `GA on oracle` (a GA that calls the oracle itself as often as the training set did).
Reported per method: the surrogate calls it made (counted), the share of designs meeting every
goal when re-simulated, the median absolute error of target goals, the best true objective among
designs that meet every goal, how far apart the returned designs are, wall time, and designs per
second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.optimize import differential_evolution

from benchmarks import robot_arm
from benchmarks.genetic import genetic_algorithm
from benchmarks.published import PUBLISHED_PROBLEMS, run_published
from data import bearing, sequences
from design.inverse import InverseOptions, inverse_design
from design.inverse.goals import as_goals
from design.inverse.score import Scorer, outcome_scale
from design.inverse.select import design_distance, select_distinct, verify_designs
from design.parameters import ContinuousParameter, SequenceParameter
from design.space import SearchSpace
from surrogates import fit_outcome_models
from surrogates.networks import NetworkSpec
from surrogates.protocol import Surrogate

SEQUENCE_ROWS_PER_ROW = 10  # sequence training rows per `n_train` (2,000 oracle calls at the default 200)
# The sequence surrogate: pairwise (Potts-like) features beside a small CNN, and a small head (see `NetworkSpec`).
SEQUENCE_NETWORK = NetworkSpec(hidden=(16,), channels=4, pair_channels=4)


@dataclass
class Problem:
    name: str
    space: SearchSpace
    goals: list[str]
    outcomes: list[str]
    simulate: Callable[[pd.DataFrame, np.random.Generator | None], pd.DataFrame]
    train_df: pd.DataFrame
    best: Callable[[pd.DataFrame], float]  # best true objective among re-simulated designs meeting every goal


def make_problems(n_train: int = 200, seed: int = 0) -> list[Problem]:
    """The three benchmark problems with `n_train` simulated training rows (sequences get `SEQUENCE_ROWS_PER_ROW` x).

    The sequence surrogate must learn a contact energy (a quadratic form over pairs of positions
    and pairs of letters) from random sequences: with 500 rows no network we tried ranked held-out
    sequences better than chance (correlation < 0.1); with 2,000 rows (at the default `n_train`)
    the pairwise network reaches about 0.95. The GA on the oracle gets the same number of oracle calls.
    """
    grid = bearing.Grid(48, 24, 2)
    bearing_df = bearing.generate_dataset(n_train, seed, grid=grid, progress=False)
    bearing_df = bearing_df[bearing_df["load_N"] > 0].reset_index(drop=True)  # no dimple in the zone: infinite f
    threshold = float(np.quantile(bearing_df["load_N"], 0.95))
    arm_df = robot_arm.generate_dataset(n_train, seed)
    seq_df = sequences.generate_dataset(SEQUENCE_ROWS_PER_ROW * n_train, seed)
    return [
        Problem(
            "bearing",
            SearchSpace([ContinuousParameter(**_box(p)) for p in bearing.config()["parameters"]]),
            ["friction_coeff=min", f"load_N>={threshold:.4f}"],
            ["friction_coeff", "load_N"],
            lambda df, rng: bearing.simulate(df, rng, grid=grid),
            bearing_df,
            lambda df: float(df["friction_coeff_true"].min()),
        ),
        Problem(
            "sequences",
            SearchSpace([SequenceParameter(name="sequence", alphabet=sequences.ALPHABET, length=sequences.LENGTH)]),
            ["fold_zscore>=3.0", "hydrophobic_fraction=target:0.4167±0.05"],
            ["fold_zscore", "hydrophobic_fraction"],
            sequences.simulate,
            seq_df,
            lambda df: float(df["fold_zscore_true"].max()),
        ),
        Problem(
            "robot_arm",
            SearchSpace([ContinuousParameter(**_box(p)) for p in robot_arm.config()["parameters"]]),
            ["end_x=target:1.2±0.02", "end_y=target:0.9±0.02"],
            ["end_x", "end_y"],
            robot_arm.simulate,
            arm_df,
            lambda df: float(np.hypot(df["end_x_true"] - 1.2, df["end_y_true"] - 0.9).min()),
        ),
    ]


def fit_surrogate(problem: Problem, seed: int = 0) -> tuple[Surrogate, str]:
    """A `NeuralEnsemble` for sequences when `surrogates.ensemble` is available, else a GP per outcome."""
    X = problem.space.encode(problem.train_df)
    Y = torch.tensor(problem.train_df[problem.outcomes].to_numpy(dtype=float), dtype=torch.double)
    torch.manual_seed(seed)
    if problem.space.sequence_blocks:
        try:
            from surrogates.ensemble import NeuralEnsemble

            blocks = problem.space.sequence_blocks
            model = NeuralEnsemble(n_members=5, network=SEQUENCE_NETWORK, sequence_blocks=blocks, seed=seed).fit(X, Y)
            return model, "NeuralEnsemble (pairwise + CNN)"
        except Exception as err:  # noqa: BLE001 - an ensemble still under construction falls back to a GP
            note = f"GP (ensemble unavailable: {type(err).__name__})"
            return fit_outcome_models(X, Y), note
    if problem.name == "bearing":
        return LogOutcomeGP(X, Y, positive=[0]), "GP (log friction)"
    return fit_outcome_models(X, Y), "GP"


class LogOutcomeGP:
    """One GP per outcome, on `log y` for the outcomes in `positive`; a log-normal posterior for those.

    The bearing's friction coefficient `F / W` is positive and spans an order of magnitude (about
    0.02 to 0.23 in the training data, heavy right tail, as `1 / load`); a GP of its logarithm
    models the low-friction region at the same relative precision as the rest. The posterior of
    such an outcome is that of `exp(f)`, `f ~ N(mu, s^2)`: mean `exp(mu + s^2 / 2)`, variance
    `(exp(s^2) - 1) exp(2 mu + s^2)`, differentiable in `X`.
    """

    def __init__(self, X: torch.Tensor, Y: torch.Tensor, positive: list[int]):
        self.positive = torch.zeros(Y.shape[-1], dtype=torch.bool)
        self.positive[positive] = True
        self.gp = fit_outcome_models(X, torch.where(self.positive, Y.clamp(min=1e-300).log(), Y))
        self.num_outputs = Y.shape[-1]

    def posterior(self, X: torch.Tensor, output_indices: list[int] | None = None, *, observation_noise: bool = False):  # noqa: ANN201
        from types import SimpleNamespace

        post = self.gp.posterior(X, observation_noise=observation_noise)
        mu, var = post.mean, post.variance
        log_mean = torch.exp(mu + var / 2)
        log_var = torch.expm1(var) * torch.exp(2 * mu + var)
        mean, variance = torch.where(self.positive, log_mean, mu), torch.where(self.positive, log_var, var)
        if output_indices is not None:
            mean, variance = mean[..., output_indices], variance[..., output_indices]
        return SimpleNamespace(mean=mean, variance=variance)


def run_inverse_benchmark(
    n: int = 8,
    starts: int = 1024,
    steps: int = 150,
    n_train: int = 200,
    seed: int = 0,
    problems: list[str] | None = None,
    n_targets: int = 200,
    published_train: int = 10_000,
    mlp_epochs: int = 300,
) -> pd.DataFrame:
    """Run every method on every problem; one row per (problem, method).

    The problems of the published benchmark (`benchmarks.published.PUBLISHED_PROBLEMS`:
    `robot_arm_ren`, `sine_wave`) run only when named in `problems`; their rows carry
    `mse_T1`, `mse_T10`, `s_per_target` and `fit_s` instead (see `run_published`).

    Args:
        n: Designs asked of every method.
        starts: Gradient starts (`starts x steps` is the reference budget of DE and the GA).
        steps: Gradient steps.
        n_train: Training rows per problem (sequences: `SEQUENCE_ROWS_PER_ROW` x).
        seed: Seed of data, surrogates and methods.
        problems: Subset of `bearing`, `sequences`, `robot_arm` (default these three), and of
            the published problems.
        n_targets: Held-out targets of each published problem.
        published_train: Training rows of each published problem.
        mlp_epochs: Training epochs of the published problems' MLP (neural adjoint's surrogate).

    Returns:
        Columns `problem`, `surrogate`, `method`, `surrogate_calls`, `met_all` (share of designs
        meeting every goal when re-simulated), `median_target_error`, `best_true_objective`,
        `spread` (mean distance between two returned designs, `design_distance`: 0.29 is one
        letter of twelve), `seconds`, `designs_per_s`. `best_true_objective` is the lowest friction coefficient
        (bearing), the highest Z-score (sequences) or the smallest end-point miss in m (arm).
    """
    torch.set_num_threads(1)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # torch.optim's one-time imports, outside the timings
    rows = []
    classic = [p for p in problems or ["bearing", "sequences", "robot_arm"] if p not in PUBLISHED_PROBLEMS]
    if classic:
        for problem in make_problems(n_train, seed):
            if problem.name in classic:
                rows += _run_problem(problem, n, starts, steps, seed)
    for name in [p for p in problems or [] if p in PUBLISHED_PROBLEMS]:
        rows += run_published(name, published_train, n_targets, seed=seed, mlp_epochs=mlp_epochs)
    return pd.DataFrame(rows)


def _run_problem(problem: Problem, n: int, starts: int, steps: int, seed: int) -> list[dict]:
    model, surrogate = fit_surrogate(problem, seed)
    goals = as_goals(problem.goals)
    options = InverseOptions(steps=steps, train_X=problem.space.encode(problem.train_df))
    scale = outcome_scale(model, problem.space.sample(256, seed), len(problem.outcomes))
    reference = starts * steps  # what the descent would cost if it never dropped a start
    runs: dict[str, tuple[pd.DataFrame, float, int]] = {}

    def timed(method: str, search: Callable, budget: int) -> None:
        scorer = Scorer(model, goals, problem.outcomes, scale)
        t = time.perf_counter()
        designs_df = search(problem, scorer, n, budget, seed)
        runs[method] = (designs_df, time.perf_counter() - t, scorer.calls)

    t = time.perf_counter()
    designs_df = inverse_design(model, problem.space, goals, n, starts, seed, problem.outcomes, options)
    calls = designs_df.attrs["surrogate_calls"]
    runs["gradient"] = (designs_df, time.perf_counter() - t, calls)
    t = time.perf_counter()
    runs["training best"] = (_training_best(problem, goals, n), time.perf_counter() - t, 0)
    timed("random search", _random_search, calls)
    sequences = bool(problem.space.sequence_blocks)
    search, name = (_ga_surrogate, "GA on surrogate") if sequences else (_de, "differential evolution")
    timed(name, search, calls)
    timed(f"{name}, {reference:,} calls", search, reference)
    if sequences:
        t = time.perf_counter()
        runs["GA on oracle"] = (_ga_oracle(problem, goals, n, len(problem.train_df), seed), time.perf_counter() - t, 0)
    return [
        {"problem": problem.name, "surrogate": surrogate, "method": method, "surrogate_calls": calls}
        | _score(problem, designs_df, goals)
        | {"seconds": seconds, "designs_per_s": len(designs_df) / seconds}
        for method, (designs_df, seconds, calls) in runs.items()
    ]


def _score(problem: Problem, designs_df: pd.DataFrame, goals) -> dict[str, float]:  # noqa: ANN001
    checked = verify_designs(designs_df[problem.space.names], problem.simulate, goals)
    errors = [np.abs(checked[f"{g.name}_true"] - g.value) for g in goals if g.kind == "target"]
    met = checked[checked["all_met_true"]]
    best = problem.best(met) if len(met) else float("nan")
    X = problem.space.encode(designs_df[problem.space.names])
    pairs = design_distance(problem.space, X, X)[torch.triu_indices(len(X), len(X), 1).unbind()]
    return {
        "met_all": float(checked["all_met_true"].mean()),
        "median_target_error": float(np.median(np.concatenate(errors))) if errors else float("nan"),
        "best_true_objective": best,
        "spread": float(pairs.mean()) if len(pairs) else float("nan"),
    }


def _training_best(problem: Problem, goals, n: int) -> pd.DataFrame:  # noqa: ANN001
    df = problem.train_df
    Y = torch.tensor(df[problem.outcomes].to_numpy(dtype=float), dtype=torch.double)
    exact = Scorer(_Lookup(Y), goals, problem.outcomes, Y.std(0).clamp(min=1e-9), kappa=0.0)
    X = torch.arange(len(df), dtype=torch.double)[:, None]
    order = torch.argsort(exact.merit(X))[:n]
    return df.iloc[order.numpy()].reset_index(drop=True)


def _random_search(problem: Problem, scorer: Scorer, n: int, budget: int, seed: int) -> pd.DataFrame:
    best_X, best_merit = [], []
    chunk = 8192
    for k in range(0, budget, chunk):
        X = _uniform(problem.space, min(chunk, budget - k), seed + 1 + k)
        with torch.no_grad():
            merit = scorer.merit(X)
        keep = torch.argsort(merit)[: 4 * n]
        best_X.append(X[keep])
        best_merit.append(merit[keep])
    X = torch.cat(best_X)[torch.argsort(torch.cat(best_merit))[: 8 * n]]
    return problem.space.decode(select_distinct(X, scorer, problem.space, n, 0.05))


def _de(problem: Problem, scorer: Scorer, n: int, budget: int, seed: int) -> pd.DataFrame:
    """`n` differential-evolution runs (different seeds), sharing the call budget equally."""
    d = problem.space.d
    popsize = 15
    maxiter = max(1, budget // n // (popsize * d) - 1)

    def merit(U: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return scorer.merit(torch.as_tensor(np.atleast_2d(U.T), dtype=torch.double)).numpy()

    found = []
    for k in range(n):
        result = differential_evolution(
            merit,
            [(0.0, 1.0)] * d,
            popsize=popsize,
            maxiter=maxiter,
            seed=seed + k,
            vectorized=True,
            polish=False,
            tol=0,
        )
        found.append(result.x)
    return problem.space.decode(torch.tensor(np.array(found)))


def _ga_surrogate(problem: Problem, scorer: Scorer, n: int, budget: int, seed: int) -> pd.DataFrame:
    def score(strings: list[str]) -> np.ndarray:
        X = problem.space.encode(pd.DataFrame({"sequence": strings}))
        with torch.no_grad():
            return -scorer.merit(X).numpy()

    found = genetic_algorithm(score, budget, seed, population=256)
    X = problem.space.encode(found.head(8 * n)[["sequence"]])
    return problem.space.decode(select_distinct(X, scorer, problem.space, n, 0.05))


def _ga_oracle(problem: Problem, goals, n: int, budget: int, seed: int) -> pd.DataFrame:  # noqa: ANN001
    """A GA on the oracle itself, with as many calls as the training set used; the merit of true values."""
    Y_train = torch.tensor(problem.train_df[problem.outcomes].to_numpy(dtype=float), dtype=torch.double)
    scale = Y_train.std(0).clamp(min=1e-9)

    def score(strings: list[str]) -> np.ndarray:
        Y = torch.tensor(problem.simulate(pd.DataFrame({"sequence": strings}), None)[problem.outcomes].to_numpy())
        exact = Scorer(_Lookup(Y), goals, problem.outcomes, scale, kappa=0.0)
        return -exact.merit(torch.arange(len(Y), dtype=torch.double)[:, None]).numpy()

    found = genetic_algorithm(score, budget, seed)
    return found.head(n)[["sequence"]].reset_index(drop=True)


class _Lookup:
    """A 'surrogate' that returns known outcomes: `X[:, 0]` indexes the rows of `Y` (for exact merits)."""

    def __init__(self, Y: torch.Tensor):
        self.Y, self.num_outputs = Y, Y.shape[-1]

    def posterior(self, X: torch.Tensor, output_indices: list[int] | None = None, *, observation_noise: bool = False):  # noqa: ANN201
        from types import SimpleNamespace

        mean = self.Y[X[..., 0].long()]
        mean = mean if output_indices is None else mean[..., output_indices]
        return SimpleNamespace(mean=mean, variance=torch.zeros_like(mean))


def _uniform(space: SearchSpace, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    k = len(space.scalars)
    U = torch.rand(n, k, generator=g, dtype=torch.double)
    blocks = []
    for _, L, A in space.sequence_blocks:
        letters = torch.randint(A, (n, L), generator=g)
        blocks.append(torch.nn.functional.one_hot(letters, A).double().reshape(n, L * A))
    return torch.cat([U, *blocks], dim=-1)


def _box(p: dict) -> dict:
    return {"name": p["name"], "bounds": tuple(p["bounds"])}
