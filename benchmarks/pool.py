"""Pool benchmark: how many experiments until a top-1 % row of a lab's candidate list is measured.

A lab often chooses from a list of designs it can make rather than from the whole space. Each
pool here is `size` random designs of a bundled system (`data.sample_designs`); the benchmark
knows their noise-free outcomes, the methods do not. Its *targets* are the best 1 % of the pool's
rows (at least one) among those whose noise-free outcomes meet every safety limit, ranked by the
first objective.

Every method starts from the same `d + 1` rows of the pool (`d` parameters): one safe row, as a
lab knows one safe design, and `d` random ones. It then picks `batch` rows it has not measured
yet, which are measured with the simulator's noise, until it has measured a target or spent
`budget` experiments. The methods:

- `valley`: a campaign given the whole pool every round (`Campaign.propose(batch, candidates=pool)`,
  as a lab passes its list to `valley propose --candidates`; the campaign skips the rows it
  measured), with the system's config as it is (safety limits and confidence included);
- `valley-0.8`: the same with every limit's confidence 0.8 instead of 0.95: what the confidence costs;
- `valley-explore`: the same with `safety_explore: 1`: one row of each batch held to P(safe) >= 0.5 only;
- `botorch`: plain BoTorch as a user of it would write it, one `SingleTaskGP` per outcome and
  constrained qLogNEI (`benchmarks.baselines.botorch_acquisition`), the batch chosen from the
  rows not measured by `optimize_acqf_discrete` (greedy, each pick pending for the next);
- `baybe`: a BayBE campaign as its documentation writes one (`pip install -e '.[bench]'`): the
  pool as a discrete search space (`SubspaceDiscrete.from_dataframe`), the first objective as its
  single target, its default recommender (a GP and qLogEI over the rows, rows measured already
  excluded). BayBE takes no limits on outcomes, so its picks ignore the safety limits; the
  targets are still the best *safe* rows. Without BayBE installed it is skipped, with a line said;
- `random`: `batch` rows drawn at random from the rows not measured.

Reported per pool and method (`summarize`): the median over seeds of the experiments to a target
(the initial rows included; a run that found none counts as `budget + 1` and shows as `> budget`
when the median is one), the share of seeds that found one, the share of rows picked after the
initial ones that broke a safety limit, and the seconds per proposal.

Example:
    >>> results_df = run_pool_benchmark(["gardner"], ["valley", "random"], seeds=2, workdir=Path("pool-runs"))
    >>> print(summarize(results_df).to_string(index=False))
"""

from __future__ import annotations

import importlib.util
import math
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import torch
from botorch.optim import optimize_acqf_discrete

from benchmarks.baselines import _box, _numbers, botorch_acquisition
from campaigns import Campaign
from campaigns.config import load_config
from data import System, get_system, is_safe, sample_designs
from design.bo import rows_of

POOLS = ("nanoparticles", "gardner", "spring", "pressure_vessel")
POOL_SIZE = 1000
BUDGET = 30
BATCH = 4
TOP = 0.01  # the targets: this share of the pool (at least one row), among its safe rows

Progress = Callable[[str], None] | None


def make_pool(system: System, size: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """`size` random designs of `system`, which of them are targets, and which are safe (noise-free).

    Returns:
        The pool (one row per design, index 0 .. size - 1), a boolean `size` array of targets
        (the best `ceil(TOP * size)` safe rows by the first objective) and one of safe rows.
    """
    pool_df = sample_designs(system.config, size, np.random.default_rng([seed, 7]))
    true_df = system.simulate(pool_df, None)
    safe = is_safe(true_df, system.config)
    objective = load_config(system.config).objectives[0]
    score = true_df[objective.name].astype(float).map(objective.score).where(safe, -np.inf).to_numpy()
    targets = np.zeros(size, dtype=bool)
    top = min(math.ceil(TOP * size), int(safe.sum()))
    targets[np.argsort(-score, kind="stable")[:top]] = True
    return pool_df, targets, safe


def initial_rows(safe: np.ndarray, d: int, seed: int) -> list[int]:
    """The rows every method measures first: one random safe row, then `d` random others."""
    rng = np.random.default_rng([seed, 11])
    first = int(rng.choice(np.flatnonzero(safe)))
    others = rng.choice(np.setdiff1d(np.arange(len(safe)), [first]), size=d, replace=False)
    return [first, *(int(i) for i in others)]


def _rows_of(pool_df: pd.DataFrame, chosen_df: pd.DataFrame, names: list[str]) -> list[int]:
    """The pool index of each chosen row (matched on the parameter values, which the methods return as given)."""
    where = {tuple(row): i for i, row in zip(pool_df.index, pool_df[names].itertuples(index=False), strict=True)}
    return [where[tuple(row)] for row in chosen_df[names].itertuples(index=False)]


class _Valley:
    """A Valley campaign given the whole pool every round, as a lab passes its list (`valley propose --candidates`).

    `confidence` (None: the system's) replaces every safety limit's confidence; `explore` sets
    the config's `safety_explore` (designs per batch held to P(safe) >= 0.5 only).
    """

    def __init__(
        self,
        system: System,
        pool_df: pd.DataFrame,
        directory: Path,
        seed: int,
        confidence: float | None = None,
        explore: int = 0,
    ) -> None:
        if confidence is not None:
            system = system.at_confidence(confidence)
        self.camp = Campaign.create(directory, {**system.config, "seed": seed, "safety_explore": explore})
        self.pool_df, self.names = pool_df, self.camp.config.parameter_names

    def measured(self, rows: list[int], outcomes_df: pd.DataFrame) -> None:
        self.camp.add_measurements(self.pool_df.loc[rows].join(outcomes_df))

    def pick(self, rest: list[int], n: int) -> list[int]:
        table = self.camp.propose(n, candidates=self.pool_df)  # the campaign skips what it measured
        return _rows_of(self.pool_df, table, self.names)


class _BoTorch:
    """Plain BoTorch: GPs on the designs' numbers, constrained qLogNEI over the rows not measured yet."""

    def __init__(self, system: System, pool_df: pd.DataFrame, directory: Path, seed: int) -> None:
        self.system, self.seed, self.round = system, seed, 0
        params = system.config["parameters"]
        self.X_pool = _numbers(pool_df, params)
        self.bounds = torch.tensor([_box(p) for p in params], dtype=torch.double).T
        self.outcomes = [system.objective] + [limit["name"] for limit in system.config["safety"]]
        self.rows: list[int] = []
        self.Y = torch.empty(0, len(self.outcomes), dtype=torch.double)

    def measured(self, rows: list[int], outcomes_df: pd.DataFrame) -> None:
        self.rows += rows
        self.Y = torch.cat([self.Y, torch.tensor(outcomes_df[self.outcomes].to_numpy(dtype=float))])

    def pick(self, rest: list[int], n: int) -> list[int]:
        self.round += 1
        with torch.random.fork_rng(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fit notices
            torch.manual_seed(1000 * self.seed + self.round)
            acqf = botorch_acquisition(self.system, self.X_pool[self.rows], self.Y, self.bounds, self.seed)
            X, _ = optimize_acqf_discrete(acqf, q=n, choices=self.X_pool[rest], unique=True)
        return [rest[i] for i in rows_of(self.X_pool[rest], X)]


class _Random:
    """Rows drawn at random from those not measured yet."""

    def __init__(self, system: System, pool_df: pd.DataFrame, directory: Path, seed: int) -> None:
        self.rng = np.random.default_rng([seed, 13])

    def measured(self, rows: list[int], outcomes_df: pd.DataFrame) -> None:
        pass

    def pick(self, rest: list[int], n: int) -> list[int]:
        return [int(i) for i in self.rng.choice(rest, size=n, replace=False)]


class _BayBE:
    """A BayBE campaign over the pool's rows: one target (the objective), its default recommender."""

    def __init__(self, system: System, pool_df: pd.DataFrame, directory: Path, seed: int) -> None:
        from baybe import Campaign as BayBECampaign
        from baybe.objectives import SingleTargetObjective
        from baybe.parameters import CategoricalParameter
        from baybe.searchspace import SearchSpace, SubspaceDiscrete
        from baybe.targets import NumericalTarget

        params = system.config["parameters"]
        categorical = [
            CategoricalParameter(name=p["name"], values=tuple(p["values"]))
            for p in params
            if p["type"] == "categorical"
        ]
        target = NumericalTarget(system.objective, minimize=not system.maximize)
        self.camp = BayBECampaign(
            SearchSpace(discrete=SubspaceDiscrete.from_dataframe(pool_df, parameters=categorical)),
            SingleTargetObjective(target),
            allow_recommending_already_measured=False,
        )
        self.pool_df, self.names, self.seed, self.round = pool_df, [p["name"] for p in params], seed, 0

    def measured(self, rows: list[int], outcomes_df: pd.DataFrame) -> None:
        self.camp.add_measurements(self.pool_df.loc[rows].join(outcomes_df[[self.camp.targets[0].name]]))

    def pick(self, rest: list[int], n: int) -> list[int]:
        from baybe.utils.random import temporary_seed

        self.round += 1
        with temporary_seed(1000 * self.seed + self.round), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fit and deprecation notices
            table = self.camp.recommend(n)
        return _rows_of(self.pool_df, table, self.names)


class _Runner(Protocol):
    def measured(self, rows: list[int], outcomes_df: pd.DataFrame) -> None: ...

    def pick(self, rest: list[int], n: int) -> list[int]: ...


RUNNERS: dict[str, Callable[[System, pd.DataFrame, Path, int], _Runner]] = {
    "valley": _Valley,
    "valley-0.8": partial(_Valley, confidence=0.8),  # the price of the confidence: the same campaign at 0.8
    "valley-explore": partial(_Valley, explore=1),  # one row per batch held to P(safe) >= 0.5 only
    "botorch": _BoTorch,
    "random": _Random,
}
HAS_BAYBE = importlib.util.find_spec("baybe") is not None  # an optional benchmark dependency (`.[bench]`)
if HAS_BAYBE:
    RUNNERS["baybe"] = _BayBE


def run_pool(
    problem: str,
    method: str,
    seed: int,
    workdir: Path,
    size: int = POOL_SIZE,
    budget: int = BUDGET,
    batch: int = BATCH,
) -> dict:
    """One method on one pool and seed: experiments to a target, unsafe picks, seconds per proposal.

    Returns:
        `problem`, `method`, `seed`, `experiments` (to the first target measured; NaN if none
        within `budget`), `measured` (experiments spent), `unsafe_after_initial` (share of the
        picks after the initial rows whose noise-free outcomes broke a limit), `seconds_per_proposal`.
    """
    system = get_system(problem)
    pool_df, targets, safe = make_pool(system, size, seed)
    rng = np.random.default_rng([seed, 17])  # measurement noise: the same draws for every method
    runner = RUNNERS[method](system, pool_df, Path(workdir) / f"{problem}-{method}-seed{seed}", seed)
    rows = initial_rows(safe, len(system.config["parameters"]), seed)
    runner.measured(rows, system.simulate(pool_df.loc[rows], rng))
    n_initial, seconds = len(rows), 0.0
    while not targets[rows].any() and len(rows) < budget:
        taken = set(rows)
        rest = [i for i in range(size) if i not in taken]
        start = time.perf_counter()
        picked = runner.pick(rest, min(batch, budget - len(rows)))
        seconds += time.perf_counter() - start
        if not picked:  # nothing left that the method would propose
            break
        rows += picked
        runner.measured(picked, system.simulate(pool_df.loc[picked], rng))
    hits = np.flatnonzero(targets[rows])
    picks = len(rows) - n_initial
    return {
        "problem": problem,
        "method": method,
        "seed": seed,
        "experiments": float(hits[0] + 1) if len(hits) else np.nan,
        "measured": len(rows),
        "unsafe_after_initial": float((~safe[rows[n_initial:]]).mean()) if picks else np.nan,
        "seconds_per_proposal": seconds / max(picks, 1),
    }


def run_pool_benchmark(
    problems: list[str],
    methods: list[str],
    seeds: int,
    workdir: Path,
    size: int = POOL_SIZE,
    budget: int = BUDGET,
    batch: int = BATCH,
    progress: Progress = None,
) -> pd.DataFrame:
    """`run_pool` for every problem, method and seed `0 .. seeds - 1`, one row each (`baybe`: when installed)."""
    if "baybe" in methods and not HAS_BAYBE:
        methods = [m for m in methods if m != "baybe"]
        if progress is not None:
            progress("BayBE is not installed (pip install -e '.[bench]'), so it has no row.")
    unknown = [m for m in methods if m not in RUNNERS]
    if unknown:
        raise ValueError(
            f"`methods` must be among {sorted(RUNNERS)}. Got {unknown!r} instead. Drop or fix those names."
        )
    rows = []
    for problem in problems:
        for seed in range(seeds):
            for method in methods:
                row = run_pool(problem, method, seed, workdir, size, budget, batch)
                rows.append(row)
                if progress is not None:
                    found = (
                        f"{row['experiments']:.0f}" if np.isfinite(row["experiments"]) else f"none in {row['measured']}"
                    )
                    per_pick = f"{row['seconds_per_proposal']:.2f} s per pick"
                    progress(f"{problem} {method} seed {seed}: experiments to a target: {found}, {per_pick}")
    return pd.DataFrame(rows)


def summarize(results_df: pd.DataFrame, budget: int = BUDGET) -> pd.DataFrame:
    """Per pool and method: median experiments to a target (`> budget`: none), found share, unsafe share, time."""
    rows = []
    for (problem, method), group in results_df.groupby(["problem", "method"], sort=False):
        median = float(group["experiments"].fillna(budget + 1).median())
        rows.append(
            {
                "pool": problem,
                "method": method,
                "seeds": len(group),
                "experiments to top 1 % (median)": f"> {budget}" if median > budget else f"{median:g}",
                "found": f"{group['experiments'].notna().mean():.0%}",
                "unsafe picks": f"{group['unsafe_after_initial'].mean():.0%}",
                "s / pick": round(float(group["seconds_per_proposal"].mean()), 2),
            }
        )
    return pd.DataFrame(rows)
