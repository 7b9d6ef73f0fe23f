"""The sequence benchmark: every method gets the same oracle calls and the same random start."""

from __future__ import annotations

from benchmarks.sequences import format_table, run_sequence_benchmark, summarize


def test_methods_share_the_budget_and_the_start():
    results = run_sequence_benchmark(
        seeds=(0,), rounds=1, batch=2, n_initial=6, surrogate={"kind": "ensemble", "members": 2, "epochs": 5}
    )
    assert list(results["method"]) == ["valley", "genetic", "random"]
    assert (results["calls"] == 8).all()
    assert results["best_initial"].nunique() == 1  # the same six random sequences first
    assert (results["best"] >= results["best_initial"]).all()
    table = format_table(summarize(results))
    assert "valley" in table and "genetic" in table and "model rounds" in table
