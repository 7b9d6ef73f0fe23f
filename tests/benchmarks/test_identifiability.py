"""`valley benchmark identifiability` on tiny sizes."""

from __future__ import annotations

from typer.testing import CliRunner

from benchmarks.identifiability import flag_counts, format_table, run_identifiability_benchmark, true_parameters
from campaigns.cli import app


def test_low_doses_flag_ec50_and_emax_and_spanning_doses_do_not():
    results = run_identifiability_benchmark(doses=(8,), seeds=(0,), scenarios=("fixed", "low"))
    flagged = dict(zip(results["scenario"], results["flagged"], strict=True))
    assert flagged["fixed"] == "-"
    assert {"Emax", "EC50"} <= set(flagged["low"].split(", "))
    assert "EC50 profile 95 %" in format_table(results)
    assert list(flag_counts(results).columns) == ["scenario", "doses", "E0", "Emax", "EC50", "Hill"]
    assert true_parameters()["EC50"] == 6.0


def test_the_command_prints_the_table():
    result = CliRunner().invoke(
        app, ["benchmark", "identifiability", "--doses", "8", "--seeds", "1", "--scenarios", "fixed"]
    )
    assert result.exit_code == 0, result.output
    assert "Identifiability of the Emax mean" in result.output and "Seeds that flagged each parameter" in result.output
