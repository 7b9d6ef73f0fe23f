"""Simulated sequence campaigns: Valley against a genetic algorithm and random sequences, same oracle calls.

The lab is the bundled, SYNTHETIC sequence oracle (`data.sequences`: the fold Z-score of a
12-residue sequence over 20 amino acids, measured with noise). Each method gets the same
number of oracle calls, `n_initial + rounds * batch`, and is scored by the best noise-free
Z-score among the sequences it had measured:

- `valley`: a campaign (`campaigns.simulate.run_simulated_campaign`) started from `n_initial`
  random sequences, then `rounds` proposals of `batch` sequences (the neural ensemble and the
  sequence acquisition optimizer, `design.sequence_acq`);
- `genetic`: the genetic algorithm of `benchmarks.genetic` calling the oracle itself, with a
  population of `n_initial` (its first generation is as random as Valley's start);
- `random`: uniformly random sequences.

All three start from the same `n_initial` random sequences (the GA's first generation too).

Example:
    >>> results = run_sequence_benchmark(seeds=(0,), rounds=2, batch=4, n_initial=16)
    >>> format_table(summarize(results))
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.genetic import genetic_algorithm
from campaigns.simulate import run_simulated_campaign
from data import sequences
from data.core import System

METHODS = ("valley", "genetic", "random")


def sequence_system(surrogate: dict[str, Any] | None = None) -> System:
    """The sequence oracle as a `System`: maximize `fold_zscore`, no safety limit.

    Args:
        surrogate: The campaign's `surrogate` section; default `{"kind": "ensemble"}`
            (5 members, 300 epochs).
    """
    config = {**sequences.config(), "surrogate": surrogate or {"kind": "ensemble"}}
    return System(
        name="sequences",
        description="SYNTHETIC fold Z-score of 12-residue sequences (data.sequences).",
        config=config,
        simulate=_fold_zscore,
        best_safe_value=float("nan"),  # the optimum over 20^12 sequences is not known
    )


def run_sequence_benchmark(
    seeds: tuple[int, ...] = (0, 1, 2),
    rounds: int = 4,
    batch: int = 8,
    n_initial: int = 24,
    methods: tuple[str, ...] = METHODS,
    surrogate: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Every method on every seed; one row per run.

    Returns:
        Columns `method`, `seed`, `calls`, `best` (best noise-free Z-score measured), `best_sequence`,
        `best_initial` (best after the first `n_initial` calls), `model_rounds` (Valley's batches
        proposed by the model rather than space-filling; NaN for the others) and `seconds`.
    """
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"methods must be among {list(METHODS)}. Got {unknown} instead.")
    budget = n_initial + rounds * batch
    rows = []
    for seed in seeds:
        for method in methods:
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                measured, model_rounds = _run(method, seed, rounds, batch, n_initial, surrogate)
            true = sequences.simulate(pd.DataFrame({"sequence": measured}))["fold_zscore"].to_numpy()
            best = int(np.argmax(true))
            rows.append(
                {
                    "method": method,
                    "seed": seed,
                    "calls": len(measured),
                    "best": float(true[best]),
                    "best_sequence": measured[best],
                    "best_initial": float(true[:n_initial].max()),
                    "model_rounds": model_rounds,
                    "seconds": time.perf_counter() - start,
                }
            )
            if progress is not None:
                progress(f"{method} seed {seed}: best {true[best]:.3f} ({measured[best]}) of {len(measured)}/{budget}")
    return pd.DataFrame(rows)


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Per method: median, mean and worst best Z-score over the seeds, the per-seed values, the median
    best of the initial sequences, the fewest rounds Valley proposed with its model, and seconds."""
    grouped = results.groupby("method", sort=False)
    return pd.DataFrame(
        {
            "calls": grouped["calls"].max(),
            "median best": grouped["best"].median(),
            "mean best": grouped["best"].mean(),
            "worst best": grouped["best"].min(),
            "per seed": grouped["best"].agg(lambda v: " ".join(f"{x:.2f}" for x in v)),
            "initial best": grouped["best_initial"].median(),
            "model rounds": grouped["model_rounds"].min(),
            "seconds per run": grouped["seconds"].mean(),
        }
    ).reset_index()


def format_table(summary: pd.DataFrame) -> str:
    """The summary as aligned text."""
    return summary.to_string(index=False, float_format=lambda x: f"{x:.3f}")


def _run(
    method: str, seed: int, rounds: int, batch: int, n_initial: int, surrogate: dict[str, Any] | None
) -> tuple[list[str], float]:
    """The sequences a method had measured, in order, and Valley's rounds proposed by the model."""
    budget = n_initial + rounds * batch
    rng = np.random.default_rng(seed)
    if method == "random":
        return _random_sequences(budget, rng), float("nan")
    if method == "genetic":
        noise = np.random.default_rng(10_000 + seed)

        def score(strings: list[str]) -> np.ndarray:
            return sequences.simulate(pd.DataFrame({"sequence": strings}), noise)["fold_zscore"].to_numpy()

        calls: list[str] = []

        def counted(strings: list[str]) -> np.ndarray:
            calls.extend(strings)
            return score(strings)

        genetic_algorithm(counted, budget, seed=seed, population=n_initial)
        return calls, float("nan")
    initial_df = pd.DataFrame({"sequence": _random_sequences(n_initial, rng)})
    with tempfile.TemporaryDirectory() as scratch:
        history = run_simulated_campaign(
            sequence_system(surrogate),
            Path(scratch) / "campaign",
            rounds=rounds,
            batch=batch,
            seed=seed,
            initial_df=initial_df,
        )
    proposed = history[history["round"] > 0].groupby("round")["method"].first()
    return history["sequence"].tolist(), float((proposed != "space-filling").sum())


def _fold_zscore(designs_df: pd.DataFrame, rng: np.random.Generator | None) -> pd.DataFrame:
    """The oracle's outcome this campaign declares (the lab reports no other column)."""
    return sequences.simulate(designs_df, rng)[["fold_zscore"]]


def _random_sequences(n: int, rng: np.random.Generator) -> list[str]:
    letters = np.asarray(list(sequences.ALPHABET))[rng.integers(0, len(sequences.ALPHABET), (n, sequences.LENGTH))]
    return ["".join(row) for row in letters]
