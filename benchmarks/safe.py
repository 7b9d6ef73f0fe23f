"""Benchmark Valley against random designs, plain BoTorch and Ax on the bundled simulated systems.

Every method gets the same budget on a problem and seed: the same initial design of `d + 1`
points (`d` parameters; see `initial_designs`), then `rounds` batches of `batch`, each batch
measured with noise by the system's simulator before the next is proposed. As in the safe-BO
literature (SafeOpt assumes a non-empty safe seed set), the initial design holds one design known
to be safe; the other `d` are uniformly random, so some of them break limits. Scores use the noise-free outcomes
(`system.simulate(designs_df, None)`), never the noisy measurements the methods saw:

- best safe value: the best true objective among the experiments whose true outcomes meet every
  safety limit (NaN when none does);
- gap: how far that is from the system's `best_safe_value`, relative to its size, signed so that
  0 is optimal and larger is worse (infinite when no experiment was safe);
- unsafe fraction: the fraction of the proposals after the initial design whose true outcomes
  break a safety limit (the initial design is the same for every method);
- seconds per proposal: wall time spent proposing (fitting and optimizing included, simulating
  not), divided by the number of designs proposed, initial design included;
- best safe @20 and @40: the best safe value after the initial design and the first 20 (40)
  proposals ("-" when a run was shorter);
- claimed safe, broke: among Valley's proposals after the initial design that claimed
  `p_safe >= confidence` (`meets_confidence`), pooled over seeds, the share whose true outcomes
  broke a limit, with its exact (Clopper-Pearson) 95 % interval. An honest claim keeps this at
  most `1 - confidence` up to that interval. The baselines claim nothing ("-");
- 95 % interval covers: among Valley's proposals after the initial design, pooled over seeds,
  the share whose noisy measured objective fell inside the predicted `mean +- 1.96 sd` (the sd
  includes measurement noise), as proposed.

`summarize` takes medians over seeds for the values and gaps, and means for the unsafe fraction
and the time. This is a benchmark, not a test: a run takes minutes.

Example:
    >>> results_df = run_benchmark(["gardner"], ["valley", "random"], seeds=3, rounds=5,
    ...     batch=4, workdir=Path("bench-runs"))
    >>> Console().print(format_table(summarize(results_df)))
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from rich.table import Table
from scipy.stats import binomtest

from benchmarks.baselines import run_ax, run_botorch, run_random
from campaigns.claims_report import Z95
from campaigns.simulate import run_simulated_campaign
from data import System, get_system, is_safe, list_systems, sample_designs

AT_CONFIDENCE = {"valley-0.8": 0.8, "valley-0.5": 0.5}  # every limit at this confidence instead of the config's
AVAILABLE_METHODS = [
    "valley",
    *AT_CONFIDENCE,
    "valley-cautious",
    "valley-explore",
    "valley-safe-set",
    "valley-safe-set-ise",
    "valley-safe-set-cautious",
    "random",
    "botorch",
    "ax",
]
DEFAULT_PROBLEMS = ["nanoparticles", "gardner", "spring"]
DEFAULT_SEEDS = 3
AX_MISSING = "ax not installed: pip install 'valley[bench]'"
CHECKPOINTS = (20, 40)  # best safe value after this many proposals (the initial design not counted)

Progress = Callable[[str], None]


def run_benchmark(
    problems: list[str],
    methods: list[str],
    seeds: int,
    rounds: int,
    batch: int,
    workdir: Path,
    progress: Progress | None = None,
    jobs: int = 1,
    done: pd.DataFrame | None = None,
    on_row: Callable[[dict], None] | None = None,
    ray: str | None = None,
    ray_workers: int | None = None,
) -> pd.DataFrame:
    """Run every method on every problem with seeds `0 .. seeds - 1` and score each run.

    Args:
        problems: Names of bundled systems (`data.list_systems()`).
        methods: Names from `AVAILABLE_METHODS`. `"ax"` is skipped, with a line said
            through `progress`, when Ax is not installed.
        seeds: Number of seeds per problem and method.
        rounds: Batches after the initial design.
        batch: Designs per batch.
        workdir: A new or empty directory; Valley's campaigns are created under it.
        progress: Called with one line after each run (default: `print`).
        jobs: Runs at a time, each in its own process on one thread (seconds per proposal are
            then measured side by side, so compare methods within one run).
        done: Rows of an earlier, interrupted call (this function's output): runs found there
            without error, with the same `rounds` and `batch`, are kept instead of run again.
        on_row: Called with each new run's row as it finishes (to save it at once).
        ray: Run each run as a Ray task instead (`benchmarks.ray_fanout.ray_map`): `"auto"` for a
            local Ray cluster, or a cluster's address (`"head:6379"`, `"ray://head:10001"`). The
            rows are the same as local runs give; `jobs` must then stay 1.
        ray_workers: With `ray`: CPUs of the local cluster `"auto"` starts (default: this
            machine's cores); on a running cluster, the most runs at a time.

    Returns:
        One row per (problem, method, seed): `problem`, `method`, `seed`, `rounds`, `batch`, `experiments`,
        `best_safe`, `gap`, `unsafe_fraction`, `seconds_per_proposal`, `wall_seconds` (the whole
        run, simulation included) and `error` (empty, or why the run failed; its scores are NaN).

    Raises:
        ValueError: If a problem or method is unknown, or `workdir` holds files. With `ray`: also
            `ray_fanout.RayUnavailable` (a ValueError) if Ray is missing or its cluster unreachable.
    """
    say = progress or print
    _check(problems, methods, workdir)
    if ray is not None and jobs > 1:
        raise ValueError(f"Give either --jobs or --ray, not both. Got --jobs {jobs} and --ray {ray}.")
    if "ax" in methods and not _ax_installed():
        say(AX_MISSING)
        methods = [m for m in methods if m != "ax"]
    tasks = [(p, m, seed, rounds, batch, workdir) for p in problems for m in methods for seed in range(seeds)]
    rows = _reusable(done, rounds, batch)  # (problem, method, seed) -> row
    if rows:
        say(f"{sum(task[:3] in rows for task in tasks)} run(s) kept from the earlier results.")
    todo = [task for task in tasks if task[:3] not in rows]

    def finish(row: dict) -> None:
        rows[(row["problem"], row["method"], row["seed"])] = row
        say(_describe(row))
        if on_row is not None:
            on_row(row)

    if ray is not None:  # Ray tasks, each on one thread; a task Ray lost is a failed run
        from benchmarks.ray_fanout import ray_map

        for index, row, error in ray_map(_run_one, todo, ray, ray_workers, say):
            finish(row if not error else _lost(todo[index], error))
    elif jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            for future in as_completed([pool.submit(_run_one, *task) for task in todo]):  # said as they finish
                finish(future.result())
    else:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # small GP problems run several times faster on one thread
        try:
            for task in todo:
                finish(_run_one(*task))
        finally:
            torch.set_num_threads(threads)
    return pd.DataFrame([rows[task[:3]] for task in tasks])  # in task order


def _lost(task: tuple, error: str) -> dict:
    """The row of a run that never returned (its Ray task or worker failed): NaN scores and why."""
    problem, method, seed, rounds, batch, _ = task
    row: dict = {"problem": problem, "method": method, "seed": seed, "rounds": rounds, "batch": batch}
    row.update(experiments=0, best_safe=np.nan, gap=np.nan, unsafe_fraction=np.nan, seconds_per_proposal=np.nan)
    return {**row, "error": error, "wall_seconds": np.nan}


def _reusable(done: pd.DataFrame | None, rounds: int, batch: int) -> dict[tuple, dict]:
    """The error-free rows of `done` that ran with `rounds` and `batch`, by (problem, method, seed)."""
    if done is None or done.empty or not {"problem", "method", "seed", "rounds", "batch", "error"} <= set(done.columns):
        return {}
    ok = done[(done["error"].fillna("") == "") & (done["rounds"] == rounds) & (done["batch"] == batch)]
    records = ok.assign(error="").to_dict("records")
    return {(r["problem"], r["method"], int(r["seed"])): {**r, "seed": int(r["seed"])} for r in records}


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Aggregate `run_benchmark`'s rows over seeds, one row per (problem, method).

    Failed runs (non-empty `error`) are left out. A run with no safe experiment counts as the
    worst in the medians, so `median_best_safe` is NaN and `median_gap` infinite when at least
    half the runs found nothing safe.

    Args:
        results: The output of `run_benchmark`.

    Returns:
        Columns `problem`, `method`, `runs` (runs without error), `safe_found` (fraction of runs
        with at least one safe experiment), `median_best_safe`, `median_gap`,
        `mean_unsafe_fraction`, `mean_seconds_per_proposal`, and `gap_vs_random`,
        `gap_vs_botorch`: this method's median gap divided by that method's on the same problem
        (below 1 is better; NaN where that method did not run or either gap is 0 or infinite).
        The `valley` row's ratios are Valley's median gap against random and against BoTorch.
    """
    if results.empty:
        return pd.DataFrame()
    ok = results[results["error"].fillna("") == ""]  # a CSV read back holds NaN for an empty error
    rows = []
    for (problem, method), group in ok.groupby(["problem", "method"], sort=False):
        maximize = get_system(problem).maximize
        rows.append(
            {
                "problem": problem,
                "method": method,
                "runs": len(group),
                "safe_found": float(group["best_safe"].notna().mean()),
                "median_best_safe": _median_worst_missing(group["best_safe"], maximize),
                "median_gap": float(np.median(group["gap"])),
                "mean_unsafe_fraction": float(group["unsafe_fraction"].mean()),
                "mean_seconds_per_proposal": float(group["seconds_per_proposal"].mean()),
                **{
                    f"median_best_safe_at_{k}": _median_worst_missing(group[f"best_safe_at_{k}"], maximize)
                    if "proposals" in group and group["proposals"].min() >= k
                    else np.nan  # some run was shorter than k proposals
                    for k in CHECKPOINTS
                },
                **_claims(group),
                "interval_coverage": _pooled_share(group, "predicted_covered", "predicted"),
            }
        )
    summary = pd.DataFrame(rows)
    if summary.empty:
        return summary
    for reference in ("random", "botorch"):
        gaps = summary[summary["method"] == reference].set_index("problem")["median_gap"]
        denominator = summary["problem"].map(gaps).replace(0.0, np.nan)
        ratio = summary["median_gap"] / denominator
        summary[f"gap_vs_{reference}"] = ratio.where(np.isfinite(ratio))
    return summary


def _claims(group: pd.DataFrame) -> dict[str, float]:
    """Pooled over seeds: proposals claimed safe (p_safe >= confidence), the share that broke a limit, its 95 % CI."""
    if "claimed_safe" not in group or int(group["claimed_safe"].sum()) == 0:
        return {
            "claimed_safe": 0,
            "claimed_broke_share": np.nan,
            "claimed_broke_low": np.nan,
            "claimed_broke_high": np.nan,
        }
    n, broke = int(group["claimed_safe"].sum()), int(group["claimed_safe_broke"].sum())
    interval = binomtest(broke, n).proportion_ci(0.95)
    return {
        "claimed_safe": n,
        "claimed_broke_share": broke / n,
        "claimed_broke_low": interval.low,
        "claimed_broke_high": interval.high,
    }


def _pooled_share(group: pd.DataFrame, hits: str, total: str) -> float:
    """`sum(hits) / sum(total)` over the runs of `group` (NaN without any, or without the columns)."""
    if total not in group or group[total].fillna(0).sum() == 0:
        return np.nan
    return float(group[hits].fillna(0).sum() / group[total].fillna(0).sum())


def format_table(summary: pd.DataFrame) -> Table:
    """A rich table of `summarize`'s output: one line per problem and method ("-": no value)."""
    table = Table(title="Simulated campaigns (true outcomes; medians over seeds)")
    headers = ["problem", "method", "runs", "safe found", "best safe", "gap", "unsafe after init"]
    headers += [f"best safe @{k}" for k in CHECKPOINTS] + ["claimed safe: broke (95% CI)", "95% interval covers"]
    headers += ["s / proposal", "gap vs random", "gap vs botorch"]
    for header in headers:
        table.add_column(header, justify="left" if header in ("problem", "method") else "right")
    for row in summary.itertuples(index=False):
        table.add_row(
            row.problem,
            row.method,
            str(row.runs),
            f"{row.safe_found:.0%}",
            _number(row.median_best_safe),
            "inf" if np.isinf(row.median_gap) else f"{row.median_gap:.1%}",
            f"{row.mean_unsafe_fraction:.0%}",
            *[_number(getattr(row, f"median_best_safe_at_{k}", np.nan)) for k in CHECKPOINTS],
            _claimed(row),
            "-" if row.interval_coverage != row.interval_coverage else f"{row.interval_coverage:.0%}",
            f"{row.mean_seconds_per_proposal:.2f}",
            _ratio(row.gap_vs_random),
            _ratio(row.gap_vs_botorch),
        )
    return table


def score(system: System, trace_df: pd.DataFrame) -> dict[str, float]:
    """Score one run's designs on the noise-free outcomes (see the module docstring).

    Args:
        system: The system the run was on.
        trace_df: One row per proposed design: `round` (0 for the initial design), `seconds`
            (proposing time of its batch per design) and one column per parameter.

    Returns:
        `experiments`, `best_safe`, `gap`, `unsafe_fraction` and `seconds_per_proposal`.
    """
    true_df = system.simulate(trace_df, None)
    safe = is_safe(true_df, system.config)
    values = true_df[system.objective].to_numpy(dtype=float)[safe]
    best = float(values.max() if system.maximize else values.min()) if len(values) else np.nan
    optimum = system.best_safe_value
    shortfall = (optimum - best) if system.maximize else (best - optimum)
    after_initial = trace_df["round"].to_numpy() > 0
    claimed = after_initial & trace_df.get("meets_confidence", pd.Series(False, index=trace_df.index)).to_numpy(bool)
    return {
        "experiments": len(trace_df),
        "best_safe": best,
        "gap": float(shortfall / abs(optimum)) if len(values) else np.inf,
        "unsafe_fraction": float((~safe[after_initial]).mean()) if after_initial.any() else np.nan,
        "seconds_per_proposal": float(trace_df["seconds"].sum() / max(len(trace_df), 1)),
        "proposals": int(after_initial.sum()),
        "claimed_safe": int(claimed.sum()),
        "claimed_safe_broke": int((claimed & ~safe).sum()),
        **_interval_hits(trace_df, system.objective, after_initial),
        **{f"best_safe_at_{k}": _best_within(system, true_df, safe, after_initial, k) for k in CHECKPOINTS},
    }


def _interval_hits(trace_df: pd.DataFrame, objective: str, after_initial: np.ndarray) -> dict[str, int]:
    """Proposals with a predicted objective (Valley's) and how many measurements fell in its 95 % interval."""
    if "predicted_mean" not in trace_df:
        return {"predicted": 0, "predicted_covered": 0}
    mean, sd = trace_df["predicted_mean"].to_numpy(float), trace_df["predicted_sd"].to_numpy(float)
    measured = trace_df[objective].to_numpy(float)
    known = after_initial & np.isfinite(mean) & np.isfinite(sd) & np.isfinite(measured)
    inside = np.abs(measured - mean) <= Z95 * sd
    return {"predicted": int(known.sum()), "predicted_covered": int((known & inside).sum())}


def _best_within(system: System, true_df: pd.DataFrame, safe: np.ndarray, after_initial: np.ndarray, k: int) -> float:
    """The best true safe objective among the initial design and the first `k` proposals after it (NaN: none)."""
    keep = ~after_initial | (np.cumsum(after_initial) <= k)
    values = true_df[system.objective].to_numpy(dtype=float)[safe & keep]
    return float(values.max() if system.maximize else values.min()) if len(values) else np.nan


def initial_designs(system: System, n: int, seed: int) -> pd.DataFrame:
    """The initial design every method starts from: one safe design, then `n - 1` random ones.

    The safe one is the first of up to 100,000 uniformly random designs (`data.sample_designs`)
    whose noise-free outcomes meet every safety limit: a random safe design, not a good one.

    Raises:
        ValueError: If none of those designs is safe.

    Example:
        >>> initial_df = initial_designs(get_system("spring"), 5, seed=0)
    """
    rng = np.random.default_rng([seed, 2024])
    for _ in range(100):
        candidates_df = sample_designs(system.config, 1000, rng)
        safe = is_safe(system.simulate(candidates_df, None), system.config)
        if safe.any():
            seed_df = candidates_df[safe].iloc[:1]
            return pd.concat([seed_df, sample_designs(system.config, n - 1, rng)], ignore_index=True)
    raise ValueError(f"No safe design among 100,000 random ones of {system.name!r}; the benchmark needs one.")


def _run_one(problem: str, method: str, seed: int, rounds: int, batch: int, workdir: Path) -> dict:
    system = get_system(problem)
    initial_df = initial_designs(system, len(system.config["parameters"]) + 1, seed)
    row: dict = {"problem": problem, "method": method, "seed": seed, "rounds": rounds, "batch": batch}
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # botorch's fit and optimizer warnings would bury the table
            if method.startswith("valley"):
                system = valley_system(system, method)
                directory = workdir / f"{problem}-{method}-seed{seed}"
                trace_df = run_simulated_campaign(system, directory, rounds, batch, initial_df=initial_df, seed=seed)
            else:
                runner = {"random": run_random, "botorch": run_botorch, "ax": run_ax}[method]
                trace_df = runner(system, rounds, batch, initial_df, seed)
        row.update(score(system, trace_df), error="")
    except Exception as err:  # noqa: BLE001 - one failed run is reported, the others still count
        nan = np.nan
        row.update(experiments=0, best_safe=nan, gap=nan, unsafe_fraction=nan, seconds_per_proposal=nan)
        row["error"] = f"{type(err).__name__}: {err}".splitlines()[0]
    row["wall_seconds"] = time.perf_counter() - start
    return row


def valley_system(system: System, method: str) -> System:
    """`system` with the config a Valley method name asks for (see `AVAILABLE_METHODS`)."""
    if method.startswith("valley-safe-set"):  # -ise: expanders by information (design.ise)
        system = system.with_config(
            safety_mode="safe_set", safety_expander="ise" if method.endswith("-ise") else "goose"
        )
    if method.endswith("-cautious"):  # the shortest plausible lengthscales for safety GPs (surrogates.extrapolation)
        system = system.with_config(safety_extrapolation="cautious")
    if method == "valley-explore":  # one design per batch held to P(safe) >= 0.5 only (design.batch_policy)
        system = system.with_config(safety_explore=1)
    confidence = AT_CONFIDENCE.get(method)  # what the confidence costs
    return system.at_confidence(confidence) if confidence is not None else system


def _check(problems: list[str], methods: list[str], workdir: Path) -> None:
    for name, given, known in (("problems", problems, list_systems()), ("methods", methods, AVAILABLE_METHODS)):
        unknown = [x for x in given if x not in known]
        if unknown:
            raise ValueError(f"`{name}` must be among {known}. Got {unknown!r} instead. Drop or fix those names.")
    if Path(workdir).exists() and any(Path(workdir).iterdir()):
        raise ValueError(
            f"`workdir` must be a new or empty directory. Got {str(workdir)!r}, which holds files, instead. "
            "Choose another directory."
        )


def _ax_installed() -> bool:
    try:
        import ax  # noqa: F401
    except ImportError:
        return False
    return True


def _describe(row: dict) -> str:
    where = f"{row['problem']} {row['method']} seed {row['seed']}"
    if row["error"]:
        return f"{where}: failed ({row['error']})"
    return (
        f"{where}: best safe {_number(row['best_safe'])}, gap {row['gap']:.1%}, "
        f"unsafe {row['unsafe_fraction']:.0%}, {row['wall_seconds']:.1f} s"
    )


def _median_worst_missing(values: pd.Series, maximize: bool) -> float:
    """Median over runs, a run with no safe experiment counting as the worst value."""
    worst = -np.inf if maximize else np.inf
    median = float(np.median(values.fillna(worst)))
    return median if np.isfinite(median) else np.nan


def _claimed(row) -> str:  # noqa: ANN001 - a row of `summarize`
    n = int(getattr(row, "claimed_safe", 0) or 0)
    if n == 0:
        return "-"
    return f"{row.claimed_broke_share:.0%} of {n} ({row.claimed_broke_low:.0%}-{row.claimed_broke_high:.0%})"


def _number(value: float) -> str:
    return "-" if value != value else f"{value:.4g}"


def _ratio(value: float) -> str:
    return "-" if value != value else f"{value:.2f}"
