"""Tests for the speed benchmark (`benchmarks.speed`, `valley benchmark speed`): tiny, seeded, no timing bounds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from benchmarks.speed import (
    continuous_speed,
    continuous_table,
    hartmann_rows,
    nanoparticle_speed,
    nanoparticle_table,
    time_ax,
)
from campaigns.cli import app

QUICK = {"num_restarts": 2, "raw_samples": 32, "mc_samples": 32}  # the nanoparticle proposal in seconds, not minutes
COLUMNS = ["part", "method", "n", "seed", "seconds", "how", "note"]


def test_hartmann_rows_are_seeded_and_in_the_box():
    X, y = hartmann_rows(12, seed=3)
    X2, y2 = hartmann_rows(12, seed=3)
    assert X.shape == (12, 6) and y.shape == (12, 1)
    assert torch.equal(X, X2) and torch.equal(y, y2)
    assert 0 <= X.min() and X.max() <= 1
    assert not torch.equal(hartmann_rows(12, seed=4)[0], X)


def test_a_method_over_budget_skips_its_larger_sizes_with_a_note():
    results_df = continuous_speed(sizes=(12, 20), seeds=(0,), methods=("botorch",), budget=0.0)
    assert results_df["seconds"].iloc[0] > 0
    assert np.isnan(results_df["seconds"].iloc[1])
    assert results_df["note"].iloc[1].startswith("skipped: n=12 took")
    assert continuous_table(results_df)["BoTorch s"].iloc[1] == "skipped"


def test_ax_proposes_from_the_attached_rows():
    pytest.importorskip("ax")
    seconds, how = time_ax(*hartmann_rows(12, seed=0), seed=0)
    assert seconds > 0
    assert how  # Ax's generation node, e.g. MBM


def test_nanoparticle_speed_reports_time_and_peak_memory_of_a_fresh_process():
    lines = []
    # one design instead of 4: the child's process, memory and report are what is checked here
    results_df = nanoparticle_speed(sizes=(20,), seeds=(0,), acquisition=QUICK, designs=1, progress=lines.append)
    row = results_df.iloc[0]
    assert row["note"] == "", row["note"]
    assert row["seconds"] > 0
    assert row["how"].startswith("qLogNEI")
    assert row["after_imports_mib"] > 0
    assert row["peak_mib"] > row["after_imports_mib"]  # the whole process's peak, above its size after the imports
    assert "peak" in lines[0]

    table = nanoparticle_table(results_df)
    assert list(table.columns) == [
        "n",
        "Valley s",
        "peak MiB",
        "after imports MiB",
        "increment MiB",
        "meets confidence",
        "mean p_safe",
        "truly safe",
    ]
    assert table["increment MiB"].iloc[0] == pytest.approx(row["peak_mib"] - row["after_imports_mib"])
    for share in ("claimed_safe", "mean_p_safe", "truly_safe"):  # shares of the 4 proposals, judged by the simulator
        assert 0.0 <= row[share] <= 1.0


def test_cli_benchmark_speed_prints_the_table_and_writes_the_rows(tmp_path):
    path = tmp_path / "speed.csv"
    args = ["benchmark", "speed", "--sizes", "12", "--parts", "continuous", "--skip-ax", "-o", str(path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Hartmann-6: seconds per proposal of q = 4" in result.output
    assert "Valley/BoTorch" in result.output
    written = pd.read_csv(path)
    assert list(written.columns) == COLUMNS
    assert list(written["method"]) == ["valley", "botorch"]
    assert (written["seconds"] > 0).all()
    assert set(written["how"]) == {"qLogNEI"}  # fitted and optimized: no space-filling fallback
    table = continuous_table(written)
    assert list(table.columns) == ["n", "Valley s", "BoTorch s", "Valley/BoTorch"]
    ratio = written.set_index("method")["seconds"]
    assert table["Valley/BoTorch"].iloc[0] == pytest.approx(ratio["valley"] / ratio["botorch"])


@pytest.mark.parametrize(
    "args",
    [["--parts", "continuous,speedy"], ["--sizes", "12,abc"], ["--nano-sizes", "0"]],
)
def test_cli_benchmark_speed_refuses_bad_options(args):
    result = CliRunner().invoke(app, ["benchmark", "speed", *args])
    assert result.exit_code == 1
    assert "error:" in result.stderr
