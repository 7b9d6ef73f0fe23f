"""`valley benchmark safe --ray`: the benchmark's runs as Ray tasks on a real local Ray cluster.

They run on the session's local Ray cluster of 2 CPUs (`cluster`, tests/ray_support.py).
"""

from __future__ import annotations

import os
import sys

import pandas as pd
from typer.testing import CliRunner

from benchmarks.safe import run_benchmark
from campaigns import Campaign
from campaigns.cli import app
from tests.campaigns.test_hardening import one_error_line
from tests.ray_support import import_ray

TINY = (["gardner"], ["valley", "random"], 1, 2, 2)  # problems, methods, seeds, rounds, batch
SCORES = ["problem", "method", "seed", "experiments", "best_safe", "gap", "unsafe_fraction", "proposals"]
SCORES += ["claimed_safe", "claimed_safe_broke", "best_safe_at_20", "error"]
CLI_ARGS = ["benchmark", "safe", "--problems", "gardner", "--methods", "random", "--rounds", "1", "--batch", "2"]


def test_ray_runs_score_and_propose_exactly_as_the_local_runs(cluster, tmp_path):
    local = run_benchmark(*TINY, tmp_path / "local", progress=lambda line: None)
    lines: list[str] = []
    remote = run_benchmark(*TINY, tmp_path / "ray", progress=lines.append, ray="auto")
    pd.testing.assert_frame_equal(local[SCORES], remote[SCORES])  # same order, bit for bit
    assert (remote["error"] == "").all() and remote["best_safe"].notna().all()
    assert len(lines) == 2 and all(" seed " in line and "best safe" in line for line in lines)  # one per run
    here = Campaign.open(tmp_path / "local" / "gardner-valley-seed0")  # Valley's designs and claims, not only scores
    there = Campaign.open(tmp_path / "ray" / "gardner-valley-seed0")
    columns = [*here.config.parameter_names, "p_safe"]
    assert len(here.proposals) == 4  # 2 rounds of 2
    pd.testing.assert_frame_equal(here.proposals[columns], there.proposals[columns])


def test_ray_cli_prints_each_run_the_table_and_resumes_from_its_csv(cluster, tmp_path):
    csv = tmp_path / "runs.csv"
    first = CliRunner().invoke(app, [*CLI_ARGS, "--seeds", "2", "-o", str(csv), "--ray", "auto"])
    assert first.exit_code == 0, first.output
    assert "gardner random seed 0: best safe" in first.output and "gardner random seed 1" in first.output
    assert "Simulated campaigns" in first.output and f"Wrote {csv}" in first.output
    before = pd.read_csv(csv)
    resumed = CliRunner().invoke(app, [*CLI_ARGS, "--seeds", "3", "-o", str(csv), "--resume", "--ray", "auto"])
    assert resumed.exit_code == 0, resumed.output
    assert "2 run(s) kept" in resumed.output and "gardner random seed 2: best safe" in resumed.output
    after = pd.read_csv(csv)
    assert list(after["seed"]) == [0, 1, 2]
    pd.testing.assert_frame_equal(after.iloc[:2], before)  # kept, not run again
    both = CliRunner().invoke(app, [*CLI_ARGS, "--seeds", "1", "--ray", "auto", "--jobs", "2"])
    one_error_line(both, "--jobs", "--ray")


def test_a_run_ray_loses_is_reported_and_the_others_still_count(cluster, tmp_path, monkeypatch):
    import benchmarks.safe

    def crash_seed_1(problem, method, seed, *rest):  # a worker process that dies mid-run
        if seed == 1:
            os._exit(1)
        return run_one(problem, method, seed, *rest)

    run_one = benchmarks.safe._run_one
    monkeypatch.setattr(benchmarks.safe, "_run_one", crash_seed_1)
    results = run_benchmark(["gardner"], ["random"], 3, 1, 2, tmp_path / "runs", progress=lambda line: None, ray="auto")
    assert list(results["seed"]) == [0, 1, 2]
    assert results.loc[1, "error"] != "" and results["best_safe"].isna().tolist() == [False, True, False]
    assert results.loc[[0, 2], "error"].tolist() == ["", ""]


def test_ray_missing_is_one_line_saying_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    result = CliRunner().invoke(app, [*CLI_ARGS, "--seeds", "1", "--ray", "auto"])
    one_error_line(result, "ray not installed", "pip install 'valley[ray]'")


def test_a_bad_ray_address_is_one_line_at_once(monkeypatch):
    ray = import_ray()
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as a fresh process would be, even beside `cluster`
    malformed = CliRunner().invoke(app, [*CLI_ARGS, "--seeds", "1", "--ray", "head-without-port"])
    one_error_line(malformed, "--ray must be", "head-without-port")
    nobody = CliRunner().invoke(app, [*CLI_ARGS, "--seeds", "1", "--ray", "127.0.0.1:1"])
    one_error_line(nobody, "no Ray cluster answers at 127.0.0.1:1", "ray start --head")


def test_ray_inverse_benchmark_gives_the_local_seeds_tables(cluster):
    args = ["benchmark", "inverse", "--problems", "bearing", "-n", "2", "--starts", "4", "--steps", "3"]
    args += ["--n-train", "20", "--seed", "1"]
    local, remote = CliRunner().invoke(app, args), CliRunner().invoke(app, [*args, "--ray", "auto"])
    assert local.exit_code == 0 and remote.exit_code == 0, remote.output
    assert "seed 1: done" in remote.stderr

    def scores(output: str) -> list[list[str]]:  # the table's cells up to `spread`, timings left out
        return [line.split("│")[1:8] for line in output.splitlines() if line.count("│") > 8]

    assert len(scores(remote.stdout)) >= 4 and scores(remote.stdout) == scores(local.stdout)


def test_auto_joins_the_cluster_running_here_and_ignores_one_that_is_gone(cluster, monkeypatch):
    from benchmarks.ray_fanout import _running_here

    gcs = cluster.get_runtime_context().gcs_address
    monkeypatch.setenv("RAY_ADDRESS", gcs)  # where `ray start --head` records its cluster
    assert _running_here() == gcs
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")  # a head that stopped without `ray stop`
    assert _running_here() is None  # so `--ray auto` starts a new cluster instead of retrying for minutes
