"""One table for the optimization toolkit of the source documents (issue 21): each piece against its plain choice.

Every row comes from the benchmark of that piece, run here for one seed at a size that takes
about a minute at most, and says what the plain alternative scored and what Valley's piece
scored on the same data, with the seconds the row took. The full benchmarks (`valley benchmark
bilevel`, `identifiability`, `step-control`, ...) run more seeds and print more columns; this
table is the overview. A row whose piece did not beat its plain alternative says so in its
figures: the table is not a list of wins.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd

Progress = Callable[[str], None] | None
COLUMNS = ["item", "plain", "plain_figure", "valley_figure", "seconds"]


def bilevel_row(seed: int = 0) -> dict:
    """Item 2: the physics weight of the hyperelastic bar by IFT hypergradients against a grid of fits."""
    from benchmarks.bilevel import run_bilevel_benchmark

    start = time.perf_counter()
    results = run_bilevel_benchmark(seeds=(seed,), solvers=("cg",))
    grid, ift = results.iloc[0], results.iloc[1]
    return {
        "item": "2 bilevel (IFT)",
        "plain": grid["method"],
        "plain_figure": f"val NLL {grid['val_nll']:.3f} in {grid['seconds']:.0f} s",
        "valley_figure": f"val NLL {ift['val_nll']:.3f} in {ift['seconds']:.0f} s",
        "seconds": time.perf_counter() - start,
    }


def identifiability_row(seed: int = 0) -> dict:
    """Item 3: which Emax-mean parameters 8 doses pin down, below EC50 and across the range (a fit cannot tell)."""
    from benchmarks.identifiability import SCENARIOS, run_identifiability_benchmark

    start = time.perf_counter()
    results = run_identifiability_benchmark(doses=(8,), seeds=(seed,), scenarios=("low", "fixed"))
    ranges = {name: f"{low:g}-{high:g} ug" for name, (low, high) in SCENARIOS.items()}
    flagged = "; ".join(f"{r.doses} doses in {ranges[r.scenario]}: {r.flagged}" for r in results.itertuples())
    return {
        "item": "3 identifiability",
        "plain": "a point fit",
        "plain_figure": "no parameter flagged (it cannot tell)",
        "valley_figure": f"flagged {flagged}",
        "seconds": time.perf_counter() - start,
    }


def step_control_row(seed: int = 0) -> dict:
    """Item 4: step control against Adam's defaults, in inverse design (robot arm, held-out targets: the
    curvature-safe step) and in training (8 ensemble members on the sine wave: the PI controller)."""
    from benchmarks.step_control import run_step_control_benchmark
    from benchmarks.training_step_control import run_training_benchmark

    start = time.perf_counter()
    results = run_step_control_benchmark(["robot_arm"], (seed,), targets=2, starts=8, steps=150).set_index("method")
    training = run_training_benchmark((seed,), members=8, step_budget=1500, methods=("adam", "pi")).set_index("method")

    def figure(method: str) -> str:
        row = results.loc[method]
        return f"{row['steps']:.0f} steps, {100 * row['targets met']:.0f} % met, {100 * row['diverged']:.0f} % diverged"

    def trained(method: str) -> str:
        row = training.loc[method]
        return (
            f"{row['epochs']:.0f} epochs to CRPS 0.05, {100 * row['reached']:.0f} % of members, {row['seconds']:.0f} s"
        )

    return {
        "item": "4 step control",
        "plain": "Adam (lr 0.05); AdamW (lr 0.01, cosine)",
        "plain_figure": f"design: {figure('adam')}; training: {trained('adam')}",
        "valley_figure": f"curvature: {figure('curvature')}; PI: {trained('pi')}",
        "seconds": time.perf_counter() - start,
    }


def toolkit_rows() -> list[Callable[[int], dict | list[dict]]]:
    """The row makers of every item (each benchmark module's `toolkit_row` or `toolkit_rows`)."""
    from benchmarks import ensemble, learned_optimizer, toolkit_extra

    return [
        learned_optimizer.toolkit_row,
        bilevel_row,
        identifiability_row,
        step_control_row,
        toolkit_extra.toolkit_rows,
        ensemble.toolkit_row,
    ]


def run_toolkit_benchmark(seed: int = 0, progress: Progress = None) -> pd.DataFrame:
    """Every row of the toolkit table for one seed (a few minutes in all)."""
    rows: list[dict] = []
    for make in toolkit_rows():
        if progress is not None:
            name = make.__name__.removesuffix("_rows").removesuffix("_row")
            progress(f"{make.__module__.rsplit('.', 1)[-1] if name == 'toolkit' else name} ...")
        made = make(seed)
        rows.extend(made if isinstance(made, list) else [made])
    order = sorted(range(len(rows)), key=lambda i: int(rows[i]["item"].split()[0]))  # the item numbers
    return pd.DataFrame([rows[i] for i in order], columns=COLUMNS)


def format_toolkit(results: pd.DataFrame) -> str:
    """The table as text, one line per item."""
    shown = results.assign(seconds=results["seconds"].map(lambda v: f"{v:.0f}"))
    return shown.to_string(index=False)
