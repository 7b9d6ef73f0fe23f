"""The few-data part of the surrogate benchmark: every model scored on the same held-out designs."""

from __future__ import annotations

import numpy as np

from benchmarks.surrogates import bench_prior_knowledge, format_benchmark


def test_prior_knowledge_scores_every_variant_and_prints():
    table = bench_prior_knowledge(seed=0, sizes=(8,), n_test=50)
    assert len(table) == 5 and np.isfinite(table["rmse"]).all() and (table["rmse"] > 0).all()
    by_model = table.set_index("model")["rmse"]
    assert by_model["constant mean"] == by_model["own rows only"]  # the same fit, by construction
    assert by_model["+ legacy rows, weight 1"] != by_model["+ legacy rows, weight 0.1"]  # weights change the fit
    assert "Emax mean in dose" in format_benchmark({"prior": table})
