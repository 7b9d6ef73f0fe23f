"""The benchmark's shared start: one known-safe design, the same for every method."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.baselines import run_random
from benchmarks.safe import AVAILABLE_METHODS, initial_designs, score, summarize, valley_system
from campaigns.config import load_config
from data import get_system, is_safe, list_systems


@pytest.mark.parametrize("problem", ["spring", "welded_beam"])
def test_initial_design_starts_from_a_safe_design(problem):
    system = get_system(problem)
    initial_df = initial_designs(system, 5, seed=3)
    assert len(initial_df) == 5
    assert is_safe(system.simulate(initial_df.iloc[:1], None), system.config).all()
    pd.testing.assert_frame_equal(initial_df, initial_designs(system, 5, seed=3))
    assert not initial_df.equals(initial_designs(system, 5, seed=4))


def test_bundled_systems_follow_the_scale_advice_valley_init_gives():
    for name in list_systems():
        assert load_config(get_system(name).config).scale_hints() == [], name
    logged = {p["name"] for p in get_system("welded_beam").config["parameters"] if p.get("log")}
    assert logged == {"weld_thickness", "weld_length", "bar_height", "bar_thickness"}
    pressure_vessel = get_system("pressure_vessel").config["parameters"]
    assert {p["name"] for p in pressure_vessel if p.get("log")} == {"radius", "length"}  # thicknesses start at 0


def test_runs_measure_the_given_initial_design_first():
    system = get_system("gardner")
    initial_df = initial_designs(system, 3, seed=0)
    trace_df = run_random(system, rounds=2, batch=2, initial_df=initial_df, seed=0)
    first = trace_df[trace_df["round"] == 0][list(initial_df.columns)].reset_index(drop=True)
    pd.testing.assert_frame_equal(first, initial_df, check_dtype=False)
    assert len(trace_df) == 3 + 2 * 2
    assert score(system, trace_df)["best_safe"] == score(system, trace_df)["best_safe"]  # a safe design: not NaN


def test_benchmark_commands_are_listed_and_check_their_problems():
    from typer.testing import CliRunner

    from campaigns.cli import app

    listed = CliRunner().invoke(app, ["benchmark", "--help"])
    assert listed.exit_code == 0 and "safe" in listed.output and "inverse" in listed.output
    wrong = CliRunner().invoke(app, ["benchmark", "inverse", "--problems", "teapot"])
    assert wrong.exit_code == 1 and "teapot" in wrong.output
    assert "robot_arm_ren" in wrong.output and "sine_wave" in wrong.output  # the published problems are offered
    assert "speed" in listed.output


def test_safe_benchmark_says_how_to_install_ax_when_it_is_missing(monkeypatch):
    from typer.testing import CliRunner

    import benchmarks.safe
    from campaigns.cli import app

    monkeypatch.setattr(benchmarks.safe, "_ax_installed", lambda: False)
    args = ["benchmark", "safe", "--problems", "gardner", "--methods", "random,ax", "--seeds", "1", "--rounds", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "pip install 'valley[bench]'" in result.output  # the extra's brackets are not eaten as markup
    assert "random" in result.output


def test_parallel_runs_score_as_the_serial_ones_in_the_same_order(tmp_path):
    from benchmarks.safe import run_benchmark

    args = (["gardner"], ["random", "valley"], 2, 1, 2)
    serial = run_benchmark(*args, tmp_path / "serial", progress=lambda line: None)
    lines: list[str] = []
    parallel = run_benchmark(*args, tmp_path / "parallel", progress=lines.append, jobs=2)
    columns = ["problem", "method", "seed", "experiments", "best_safe", "unsafe_fraction", "error"]
    pd.testing.assert_frame_equal(serial[columns], parallel[columns])
    assert len(lines) == 4 and list(parallel["method"]) == ["random", "random", "valley", "valley"]
    assert list(parallel["predicted"]) == [0, 0, 2, 2]  # Valley's 2 proposals each came with an interval


def test_a_resumed_benchmark_keeps_the_saved_runs_and_runs_only_the_rest(tmp_path):
    from typer.testing import CliRunner

    from campaigns.cli import app

    csv = tmp_path / "runs.csv"
    args = ["benchmark", "safe", "--problems", "gardner", "--methods", "random", "--rounds", "1", "--batch", "2"]
    first = CliRunner().invoke(app, [*args, "--seeds", "2", "-o", str(csv)])
    assert first.exit_code == 0, first.output
    before = pd.read_csv(csv)
    resumed = CliRunner().invoke(app, [*args, "--seeds", "3", "-o", str(csv), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "2 run(s) kept" in resumed.output
    after = pd.read_csv(csv)
    assert list(after["seed"]) == [0, 1, 2]
    pd.testing.assert_frame_equal(after.iloc[:2], before)  # the same wall time: not run again
    other = CliRunner().invoke(app, [*args, "--rounds", "2", "--seeds", "1", "-o", str(csv), "--resume"])
    assert other.exit_code == 0 and "kept" not in other.output  # other rounds: nothing to reuse
    assert len(pd.read_csv(csv)) == 4  # the 1-round runs are all still there
    csv.write_bytes(b"\xff\xfe\x00broken")
    broken = CliRunner().invoke(app, [*args, "--seeds", "1", "-o", str(csv), "--resume"])
    assert broken.exit_code == 1 and "--resume could not read" in broken.output


def test_score_counts_claimed_safe_proposals_that_broke_a_limit_and_the_best_at_checkpoints():
    system = get_system("gardner")
    initial_df = initial_designs(system, 3, seed=0)
    trace_df = run_random(system, rounds=11, batch=4, initial_df=initial_df, seed=1)  # 44 proposals after init
    safe = is_safe(system.simulate(trace_df, None), system.config)
    later = (trace_df["round"] > 0).to_numpy()
    claims = later & (np.arange(len(trace_df)) % 2 == 0)  # pretend every other proposal claimed p_safe >= c
    measured = system.simulate(trace_df, np.random.default_rng(2))[system.objective].to_numpy()
    offsets = np.where(np.arange(len(trace_df)) % 4 == 1, 3.0, 0.5)  # a quarter lie outside +-1.96 sd
    predicted = np.where(later, measured + offsets, np.nan)
    scored = score(
        system,
        trace_df.assign(
            meets_confidence=claims, predicted_mean=predicted, predicted_sd=1.0, **{system.objective: measured}
        ),
    )
    assert scored["predicted"] == 44 and scored["predicted_covered"] == int((later & (offsets < 1.96)).sum())
    assert scored["claimed_safe"] == int(claims.sum())
    assert scored["claimed_safe_broke"] == int((claims & ~safe).sum())
    values = system.simulate(trace_df, None)[system.objective].to_numpy()
    first_20 = (~later) | (np.cumsum(later) <= 20)
    best_20 = values[safe & first_20].max() if system.maximize else values[safe & first_20].min()
    assert scored["best_safe_at_20"] == best_20 and scored["proposals"] == 44
    summary = summarize(pd.DataFrame([{**scored, "problem": "gardner", "method": "valley", "error": "", "gap": 0.1}]))
    row = summary.iloc[0]
    assert row["claimed_safe"] == scored["claimed_safe"]
    assert row["claimed_broke_low"] <= row["claimed_broke_share"] <= row["claimed_broke_high"]
    assert row["median_best_safe_at_20"] == best_20
    assert row["interval_coverage"] == scored["predicted_covered"] / 44
    saved = pd.DataFrame([{**scored, "problem": "gardner", "method": "valley", "error": np.nan, "gap": 0.1}])
    assert summarize(saved).iloc[0]["runs"] == 1  # as `pd.read_csv` gives back a run without error


def test_valley_method_names_set_the_config_they_name():
    system = get_system("spring")
    configs = {method: valley_system(system, method).config for method in AVAILABLE_METHODS if "valley" in method}
    assert configs["valley"] == system.config
    assert configs["valley-cautious"] == {**system.config, "safety_extrapolation": "cautious"}
    assert configs["valley-explore"] == {**system.config, "safety_explore": 1}
    assert configs["valley-safe-set-cautious"]["safety_mode"] == "safe_set"
    assert configs["valley-safe-set-cautious"]["safety_expander"] == "goose"
    assert configs["valley-safe-set-cautious"]["safety_extrapolation"] == "cautious"
    assert configs["valley-safe-set-ise"]["safety_expander"] == "ise"
    assert "safety_extrapolation" not in configs["valley-safe-set-ise"]
    assert {limit["confidence"] for limit in configs["valley-0.8"]["safety"]} == {0.8}
    assert {limit["confidence"] for limit in configs["valley-0.5"]["safety"]} == {0.5}
    for config in configs.values():
        load_config(config)  # every one is a valid campaign config
