"""`valley benchmark bilevel` on tiny sizes."""

from __future__ import annotations

import functools

from typer.testing import CliRunner

import benchmarks.bilevel as bilevel
from campaigns.cli import app

TINY = {"n": 8, "n_val": 6, "grid": (0.0, 1.0, 10.0), "outer_steps": 1, "inner_steps": 2, "epochs": 2}


def test_one_row_per_method_with_a_weight_in_the_grid_range():
    results = bilevel.bench_bilevel(0, **TINY, solvers=("cg",))
    assert list(results["method"]) == ["grid (3 fits)", "IFT cg (1 x 2 steps)"]
    assert results["weight"].iloc[0] in TINY["grid"] and 1.0 <= results["weight"].iloc[1] <= 10.0
    assert results[["val_nll", "rel_l2_error", "seconds"]].notna().all().all()
    assert "grid (3 fits)" in bilevel.format_bilevel(results)


def test_the_command_prints_the_table(monkeypatch):
    monkeypatch.setattr(bilevel, "bench_bilevel", functools.partial(bilevel.bench_bilevel, **TINY))
    result = CliRunner().invoke(app, ["benchmark", "bilevel", "--seeds", "1"])
    assert result.exit_code == 0, result.output
    assert "DEM weight chosen by validation NLL" in result.output and "IFT neumann" in result.output
