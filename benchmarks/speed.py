"""Speed benchmark: seconds per proposal for Valley, plain BoTorch and Ax, and Valley's peak memory.

Two parts are measured here (`valley benchmark speed` adds a third, the neural ensemble's
training time, from `benchmarks.ensemble`):

- continuous: one call proposing a batch of `Q = 4` designs on Hartmann-6 (six continuous
  parameters in [0, 1], `f` minimized, measured with noise of sd `NOISE_SD`) from `n` existing
  rows (a scrambled Sobol design with a seed), for Valley (`campaigns.propose.make_proposals`),
  plain BoTorch (`botorch_proposal`, written as a user of BoTorch would) and Ax (its `Client`,
  when installed). Every method sees the same rows.
- nanoparticles: Valley alone on the bundled nanoparticle system at `n` random measured rows,
  each size in a fresh child process (`sys.executable -c`) that reports its peak resident memory
  (`VmHWM`: the whole process, nothing subtracted) and its resident memory after the imports.

Only the proposal is timed (fitting and acquisition), never the data generation nor, for Ax,
attaching the existing rows. Every method runs with torch on `threads` threads (default 1, as
`valley propose` and `valley benchmark safe` run). In the continuous part each method is first
called once untimed on a few rows, so that first-call costs (lazy imports, caches) land on no size;
a nanoparticle child makes its one call only, as `valley propose` does. Once a call takes more than
`budget` seconds, the larger sizes of that method are skipped, with a note: the slow call is
reported as measured, never cut short. This is a benchmark, not a test: a full run takes many minutes.

Example:
    >>> continuous_df = continuous_speed(sizes=(50, 200), seeds=(0,), progress=print)
    >>> print(continuous_table(continuous_df))
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from botorch.acquisition import qLogNoisyExpectedImprovement
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.transforms import Normalize, Standardize
from botorch.optim import optimize_acqf
from botorch.test_functions import Hartmann
from gpytorch.mlls import ExactMarginalLogLikelihood
from torch import Tensor

from benchmarks.baselines import _ax_batch, _ax_parameter, _ax_values, _quiet_ax
from campaigns.campaign import torch_threads
from campaigns.config import CampaignConfig, load_config
from campaigns.propose import Proposal, make_proposals
from data import get_system, sample_designs
from data.core import is_safe

Progress = Callable[[str], None] | None

Q = 4  # designs per proposal
DIM = 6  # Hartmann-6
NOISE_SD = 0.05  # measurement noise on Hartmann-6 (its values span about -3.3 to 0)
BUDGET_SECONDS = 300.0  # after one call this slow, larger sizes of that method are skipped
WARM_UP_ROWS = 2 * DIM + 2
CONTINUOUS_METHODS = ("valley", "botorch", "ax")
NAMES = [f"x{i + 1}" for i in range(DIM)]
PARAMETERS = [{"name": name, "type": "continuous", "bounds": [0.0, 1.0]} for name in NAMES]
AX_MISSING = "Ax is not installed (pip install 'valley[bench]'): its column is skipped."


# -- the continuous problem ----------------------------------------------------------------


def hartmann_rows(n: int, seed: int) -> tuple[Tensor, Tensor]:
    """`n` scrambled-Sobol designs in [0, 1]^6 and their noisy Hartmann-6 values (to minimize), `n x 1`."""
    X = torch.quasirandom.SobolEngine(DIM, scramble=True, seed=seed).draw(n, dtype=torch.double)
    noise = np.random.default_rng([seed, n]).normal(0.0, NOISE_SD, size=n)
    y = Hartmann(dim=DIM).evaluate_true(X) + torch.as_tensor(noise)
    return X, y.unsqueeze(-1)


def hartmann_config(seed: int) -> CampaignConfig:
    """Valley's campaign config for Hartmann-6: six continuous parameters in [0, 1], `y` minimized, defaults else."""
    return load_config(
        {
            "name": "hartmann6",
            "seed": seed,
            "parameters": PARAMETERS,
            "objectives": [{"name": "y", "goal": "minimize"}],
        }
    )


def time_valley(X: Tensor, y: Tensor, seed: int) -> tuple[float, str]:
    """Seconds of one `make_proposals` call for `Q` designs from the rows `(X, y)`, and its method."""
    config = hartmann_config(seed)
    measured_df = pd.DataFrame(X.numpy(), columns=NAMES).assign(y=y.squeeze(-1).numpy())
    return time_proposal(config, measured_df, seed)


def time_proposal(config: CampaignConfig, measured_df: pd.DataFrame, seed: int) -> tuple[float, str]:
    """Seconds of one `make_proposals` call for `Q` designs with `seed`, and its method.

    The method is `qLogNEI` (or with a suffix) when the model was fitted and the acquisition
    optimized; anything else (a space-filling fallback) means the timing measured something else.
    """
    seconds, proposal = timed_proposal(config, measured_df, seed)
    return seconds, proposal.method


def timed_proposal(
    config: CampaignConfig, measured_df: pd.DataFrame, seed: int, designs: int = Q
) -> tuple[float, Proposal]:
    """Seconds of one `make_proposals` call for `designs` designs with `seed`, and the proposal."""
    pending_df = pd.DataFrame(columns=config.parameter_names)
    start = time.perf_counter()
    proposal = make_proposals(config, measured_df, pending_df, n=designs, seed=seed)  # it seeds torch itself
    return time.perf_counter() - start, proposal


def botorch_proposal(X: Tensor, y: Tensor, seed: int) -> Tensor:
    """`Q` designs from plain BoTorch, as its tutorials write it, maximizing `y` over [0, 1]^6.

    A `SingleTaskGP` (inputs normalized, outcome standardized) fitted by `fit_gpytorch_mll`,
    `qLogNoisyExpectedImprovement` with its default sampler, and `optimize_acqf` with the usual
    `num_restarts=10, raw_samples=512`.
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = SingleTaskGP(X, y, input_transform=Normalize(d=X.shape[-1]), outcome_transform=Standardize(m=1))
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        acqf = qLogNoisyExpectedImprovement(model=model, X_baseline=X)
        bounds = torch.stack([torch.zeros(X.shape[-1]), torch.ones(X.shape[-1])]).to(X)
        candidates, _ = optimize_acqf(acqf, bounds=bounds, q=Q, num_restarts=10, raw_samples=512)
    return candidates.detach()


def time_botorch(X: Tensor, y: Tensor, seed: int) -> tuple[float, str]:
    """Seconds of one `botorch_proposal` call (BoTorch maximizes, so it gets `-y`)."""
    start = time.perf_counter()
    botorch_proposal(X, -y, seed)
    return time.perf_counter() - start, "qLogNEI"


def time_ax(X: Tensor, y: Tensor, seed: int) -> tuple[float, str]:
    """Seconds of one `get_next_trials` round of `Q` designs from an Ax `Client` holding the rows `(X, y)`.

    The rows are attached as completed trials (untimed) and count as Ax's initialization, so Ax
    goes straight to its BoTorch model (default "fast" generation strategy). Ax may hand out fewer
    trials than asked for, so the batch is topped up as `benchmarks.baselines.run_ax` does; all of
    it is timed. The method is the generation node that made the last trial.
    """
    from ax import Client

    with _quiet_ax():
        client = Client(random_seed=seed)
        client.configure_experiment(parameters=[_ax_parameter(p) for p in PARAMETERS])
        client.configure_optimization(objective="-y")
        client.configure_generation_strategy(initialization_budget=len(X), initialization_random_seed=seed)
        for x, value in zip(X.tolist(), y.squeeze(-1).tolist(), strict=True):
            index = client.attach_trial(_ax_values(dict(zip(NAMES, x, strict=True))))
            client.complete_trial(index, raw_data={"y": value})
        start = time.perf_counter()
        trials = _ax_batch(client, Q)
        seconds = time.perf_counter() - start
    return seconds, _ax_node(client, max(trials, default=None))


def _ax_node(client, index: int | None) -> str:
    """Name of the generation node (e.g. `MBM` or `Sobol`) behind trial `index`, or `?` when Ax does not say."""
    try:
        run = client._experiment.trials[index].generator_runs[0]
        return str(run._generation_node_name or run._model_key or "?")
    except (AttributeError, IndexError, KeyError, TypeError):
        return "?"


TIMERS: dict[str, Callable[[Tensor, Tensor, int], tuple[float, str]]] = {
    "valley": time_valley,
    "botorch": time_botorch,
    "ax": time_ax,
}


def ax_installed() -> bool:
    """Whether Ax can be imported."""
    try:
        import ax  # noqa: F401
    except ImportError:
        return False
    return True


def continuous_speed(
    sizes: Sequence[int] = (50, 200, 800, 2000),
    seeds: Sequence[int] = (0,),
    methods: Sequence[str] = CONTINUOUS_METHODS,
    budget: float = BUDGET_SECONDS,
    threads: int = 1,
    progress: Progress = None,
) -> pd.DataFrame:
    """Seconds per proposal on Hartmann-6 for each method, size and seed.

    Args:
        sizes: Existing rows before the proposal (run in increasing order).
        seeds: Seeds of the rows, the noise and each method's randomness.
        methods: Among `CONTINUOUS_METHODS`; `ax` is dropped, with a line said through `progress`,
            when Ax is not installed.
        budget: After a call takes longer than this (seconds), larger sizes of that method are skipped.
        threads: Torch threads for every method.
        progress: Optional callback for one line per measurement (e.g. `print`).

    Returns:
        One row per (n, seed, method): `part` ("continuous"), `method`, `n`, `seed`, `seconds`
        (NaN when skipped), `how` (what the method ran: `qLogNEI`, Ax's generation node, ...) and `note`.
    """
    say = progress or (lambda line: None)
    methods = list(methods)
    if "ax" in methods and not ax_installed():
        say(AX_MISSING)
        methods.remove("ax")
    rows: list[dict] = []
    over: dict[str, str] = {}  # method -> why its larger sizes are skipped
    with torch_threads(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # botorch's and gpytorch's numerical notices would bury the lines
        for method in methods:  # untimed first call: lazy imports and caches land on no size
            TIMERS[method](*hartmann_rows(WARM_UP_ROWS, seed=12345), 0)
        for n in sorted(sizes):
            for seed in seeds:
                X, y = hartmann_rows(n, seed)
                for method in methods:
                    row = {"part": "continuous", "method": method, "n": n, "seed": seed}
                    if method in over:
                        rows.append(row | {"seconds": np.nan, "how": "", "note": over[method]})
                        continue
                    seconds, how = TIMERS[method](X, y, seed)
                    rows.append(row | {"seconds": seconds, "how": how, "note": _unmodelled(method, n, how)})
                    say(f"continuous n={n} seed {seed}: {method} {seconds:.2f} s per proposal of {Q} ({how})")
                    if seconds > budget and method not in over:
                        over[method] = f"skipped: n={n} took {seconds:.0f} s (> {budget:.0f} s)"
                        if n < max(sizes):
                            say(f"{method}: larger sizes skipped ({over[method].removeprefix('skipped: ')})")
    return pd.DataFrame(rows)


def _unmodelled(method: str, n: int, how: str) -> str:
    """A note when a method proposed without its model (Valley's space-filling fallback, Ax's Sobol step)."""
    if (method == "valley" and not how.startswith("qLogNE")) or (method == "ax" and how != "MBM"):
        return f"{method} at n={n} proposed by {how!r}, not by its model: its seconds measure that."
    return ""


# -- the nanoparticle system, one child process per size -------------------------------------


def nanoparticle_speed(
    sizes: Sequence[int] = (20, 200, 1000, 10000),
    seeds: Sequence[int] = (0,),
    budget: float = BUDGET_SECONDS,
    threads: int = 1,
    progress: Progress = None,
    acquisition: dict | None = None,
    designs: int = Q,
) -> pd.DataFrame:
    """Valley's seconds per proposal and peak memory on the nanoparticle system, each size in a fresh process.

    Args:
        sizes: Measured rows (random designs from `data.sample_designs`, noisy simulated outcomes).
        seeds: Seeds of the rows, the noise and the proposal.
        budget: After a call takes longer than this (seconds), larger sizes are skipped.
        threads: Torch threads in the child.
        progress: Optional callback for one line per measurement.
        acquisition: Replaces the config's `acquisition` settings (quick runs, e.g. tests); None
            (the benchmark) keeps the system's config as it is.
        designs: Designs per proposal (the benchmark: `Q`; fewer for quick runs).

    Returns:
        One row per (n, seed): `part` ("nanoparticles"), `method` ("valley"), `n`, `seed`,
        `seconds`, `how`, `peak_mib` (the child's peak resident memory: the whole process, nothing
        subtracted), `after_imports_mib` (its resident memory once torch, botorch and Valley were
        imported, before the data were made) and `note` (why a size is missing).
    """
    say = progress or (lambda line: None)
    rows: list[dict] = []
    over = ""
    for n in sorted(sizes):
        for seed in seeds:
            row: dict[str, Any] = {"part": "nanoparticles", "method": "valley", "n": n, "seed": seed}
            if over:
                rows.append(row | {"seconds": np.nan, "how": "", "note": over})
                continue
            arguments = {"n": n, "seed": seed, "threads": threads, "acquisition": acquisition, "designs": designs}
            row |= in_fresh_process(arguments)
            rows.append(row)
            if not row["how"]:  # the child failed
                over = f"skipped: n={n} failed"
                say(f"nanoparticles n={n} seed {seed}: {row['note']}; larger sizes skipped")
                continue
            say(
                f"nanoparticles n={n} seed {seed}: valley {row['seconds']:.2f} s per proposal of {designs} "
                f"({row['how']}), peak {row['peak_mib']:.0f} MiB (after imports {row['after_imports_mib']:.0f} MiB)"
            )
            if row["seconds"] > budget and not over:
                over = f"skipped: n={n} took {row['seconds']:.0f} s (> {budget:.0f} s)"
                if n < max(sizes):
                    say(f"nanoparticles: larger sizes skipped ({over.removeprefix('skipped: ')})")
    return pd.DataFrame(rows)


def in_fresh_process(arguments: dict) -> dict:
    """`nanoparticle_child(**arguments)` in a new Python process (`sys.executable -c`); its result.

    A failed or killed child (out of memory, say) gives NaN numbers and the reason in `note`.
    """
    code = (
        "import json, sys; from benchmarks.speed import nanoparticle_child; "
        "print(json.dumps(nanoparticle_child(**json.loads(sys.argv[1]))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(arguments)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [""])[-1]
        why = f"signal {-done.returncode}" if done.returncode < 0 else f"exit {done.returncode}"
        return {
            "seconds": np.nan,
            "how": "",
            "peak_mib": np.nan,
            "after_imports_mib": np.nan,
            "note": f"child process failed ({why}): {last}",
        }
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result | {"note": _unmodelled("valley", arguments["n"], result["how"])}


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, in MiB (`VmHWM` of /proc/self/status).

    Not `ru_maxrss`: Linux carries it across `exec`, so a child started by a large parent
    reports the parent's peak (seen: 1,335 MiB for a child whose own peak was 519 MiB).
    """
    return _proc_status_mib("VmHWM:")


def rss_mib() -> float:
    """This process's resident memory now, in MiB (`VmRSS` of /proc/self/status)."""
    return _proc_status_mib("VmRSS:")


def _proc_status_mib(field: str) -> float:
    """A memory line of /proc/self/status in MiB (Linux); `ru_maxrss` where there is none."""
    try:
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith(field))
        return int(line.split()[1]) / 1024  # kB
    except (OSError, StopIteration, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def nanoparticle_child(n: int, seed: int, threads: int = 1, acquisition: dict | None = None, designs: int = Q) -> dict:
    """Run in a fresh process: `n` measured nanoparticle rows, one timed proposal of `designs`, its memory (MiB).

    Returns `seconds`, `how` (as `time_proposal`), `after_imports_mib` (resident memory when
    called: this module's imports, torch, botorch and Valley, are done) and `peak_mib` (the peak
    resident memory of the whole process, imports, data and proposal, at the end).
    """
    after_imports = rss_mib()
    torch.set_num_threads(threads)
    system = get_system("nanoparticles")
    config = system.config if acquisition is None else {**system.config, "acquisition": acquisition}
    rng = np.random.default_rng(seed)
    designs_df = sample_designs(system.config, n, rng)
    measured_df = designs_df.join(system.simulate(designs_df, rng))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seconds, proposal = timed_proposal(load_config(config), measured_df, seed, designs)
    table = proposal.table
    truly_safe = is_safe(system.simulate(table[designs_df.columns], None), system.config)  # noise-free outcomes
    return {
        "seconds": seconds,
        "how": proposal.method,
        "peak_mib": peak_rss_mib(),
        "after_imports_mib": after_imports,
        "claimed_safe": float(table["meets_confidence"].mean()),
        "mean_p_safe": float(table["p_safe"].mean()),
        "truly_safe": float(np.mean(truly_safe)),
    }


# -- tables --------------------------------------------------------------------------------


def continuous_table(results_df: pd.DataFrame) -> pd.DataFrame:
    """Mean seconds per proposal by size (rows) and method, then Valley's ratio to each other method.

    A skipped measurement shows as "skipped"; a ratio needs both seconds.
    """
    seconds = results_df.pivot_table(index="n", columns="method", values="seconds", aggfunc="mean", dropna=False)
    methods = [m for m in CONTINUOUS_METHODS if m in set(results_df["method"])]
    table = pd.DataFrame({"n": seconds.index})
    labels = {"valley": "Valley s", "botorch": "BoTorch s", "ax": "Ax s"}
    for method in methods:
        table[labels[method]] = [_cell(v) for v in seconds[method]]
    for method in methods:
        if method != "valley" and "valley" in methods:
            ratio = seconds["valley"] / seconds[method]
            table[f"Valley/{labels[method][:-2]}"] = [_cell(v, "") for v in ratio]
    return table


def nanoparticle_table(results_df: pd.DataFrame) -> pd.DataFrame:
    """Mean seconds per proposal and memory (MiB) by size: whole-process peak, peak after imports, increment."""
    grouped = results_df.groupby("n", sort=True)
    means = grouped[["seconds", "peak_mib", "after_imports_mib"]].mean()
    means["increment_mib"] = means["peak_mib"] - means["after_imports_mib"]
    table = pd.DataFrame({"n": means.index})
    table["Valley s"] = [_cell(v) for v in means["seconds"]]
    table["peak MiB"] = [_cell(v, "") for v in means["peak_mib"]]
    table["after imports MiB"] = [_cell(v, "") for v in means["after_imports_mib"]]
    table["increment MiB"] = [_cell(v, "") for v in means["increment_mib"]]
    if "mean_p_safe" in results_df:  # honesty: what the proposals claimed against the noise-free simulator
        safety = grouped[["claimed_safe", "mean_p_safe", "truly_safe"]].mean()
        table["meets confidence"] = [_cell(v, "") for v in safety["claimed_safe"]]
        table["mean p_safe"] = [_cell(v, "") for v in safety["mean_p_safe"]]
        table["truly safe"] = [_cell(v, "") for v in safety["truly_safe"]]
    return table


def _cell(value: float, missing: str = "skipped") -> float | str:
    return missing if pd.isna(value) else float(value)
