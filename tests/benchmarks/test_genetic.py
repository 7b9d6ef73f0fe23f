"""The genetic-algorithm baseline on the sequence oracle: within its budget, seeded, better than random."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.genetic import genetic_algorithm
from data.sequences import generate_dataset, simulate


def test_ga_respects_its_budget_and_beats_random_sampling():
    score = lambda s: simulate(pd.DataFrame({"sequence": s}))["fold_zscore"].to_numpy()  # noqa: E731
    result = genetic_algorithm(score, budget=600, seed=0)
    assert result.attrs["calls"] == 600 and len(result) <= 600
    assert result["score"].iloc[0] > generate_dataset(600, seed=0)["fold_zscore"].max()
    again = genetic_algorithm(score, budget=600, seed=0)
    assert again["sequence"].iloc[0] == result["sequence"].iloc[0]
    assert np.isfinite(result["score"]).all()
