"""`valley design` through a local typer app: a table, a CSV, and one error line for bad goals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import typer
from typer.testing import CliRunner

from campaigns import Campaign
from campaigns.design_cli import design

torch.set_num_threads(1)
CONFIG = {
    "name": "quad",
    "parameters": [
        {"name": "x1", "type": "continuous", "bounds": [0, 1]},
        {"name": "x2", "type": "continuous", "bounds": [0, 1]},
    ],
    "objectives": [{"name": "f", "goal": "minimize"}],
    "safety": [{"name": "c", "upper": 1.2}],
}


@pytest.fixture(scope="module")
def campaign_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("design") / "camp"
    camp = Campaign.create(path, CONFIG)
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x1": rng.uniform(size=20), "x2": rng.uniform(size=20)})
    df["f"] = (df["x1"] - 0.3) ** 2 + (df["x2"] - 0.6) ** 2
    df["c"] = df["x1"] + df["x2"]
    camp.add_measurements(df)
    return path


def app() -> typer.Typer:
    local = typer.Typer()
    local.command()(design)
    local.command("noop")(lambda: None)  # two commands, so `design` is a subcommand as under `valley`
    return local


def test_design_writes_a_ranked_csv(campaign_dir, tmp_path):
    out = tmp_path / "designs.csv"
    args = ["design", str(campaign_dir), "-n", "3", "--starts", "64", "--constraint", "c<=0.8", "-o", str(out)]
    result = CliRunner().invoke(app(), args)
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out)
    assert len(df) == 3 and list(df["rank"]) == [1, 2, 3]
    assert {"f_mean", "f_sd", "c_mean", "met: c<=0.8", "distance_to_data", "hessian_max_eig"} <= set(df.columns)
    assert df["all_met"].iloc[0] and (df["x1"] + df["x2"]).iloc[0] <= 0.85


def test_bad_goal_is_one_error_line(campaign_dir):
    result = CliRunner().invoke(app(), ["design", str(campaign_dir), "--goal", "f=lowest"])
    assert result.exit_code == 1 and "error:" in result.output and "not understood" in result.output
    result = CliRunner().invoke(app(), ["design", str(campaign_dir), "--goal", "g=min"])
    assert result.exit_code == 1 and "outcomes of the campaign" in result.output


def test_design_works_through_the_categorical_kernel(tmp_path):
    """The mixed GP's categorical kernel has no second derivative: robustness falls back to differences."""
    config = {
        **CONFIG,
        "name": "mixed",
        "parameters": [*CONFIG["parameters"], {"name": "kind", "type": "categorical", "values": ["a", "b"]}],
    }
    camp = Campaign.create(tmp_path / "camp", config)
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"x1": rng.uniform(size=12), "x2": rng.uniform(size=12), "kind": ["a", "b"] * 6})
    df["f"] = (df["x1"] - 0.3) ** 2 + (df["x2"] - 0.6) ** 2 + (df["kind"] == "b") * 0.5
    df["c"] = df["x1"] + df["x2"]
    camp.add_measurements(df)
    out = tmp_path / "designs.csv"
    result = CliRunner().invoke(app(), ["design", str(tmp_path / "camp"), "-n", "2", "--starts", "16", "-o", str(out)])
    assert result.exit_code == 0, result.output
    designs = pd.read_csv(out)
    assert set(designs["kind"]) <= {"a", "b"} and np.isfinite(designs["hessian_max_eig"]).all()


def test_design_uses_the_campaigns_ensemble_and_refuses_a_binary_goal(tmp_path):
    config = {
        **CONFIG,
        "objectives": [{"name": "works", "goal": "maximize", "type": "binary"}],
        "surrogate": {"kind": "ensemble", "members": 2, "epochs": 60},
    }
    camp = Campaign.create(tmp_path / "camp", config)
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"x1": rng.uniform(size=30), "x2": rng.uniform(size=30)})
    df["c"] = df["x1"] + df["x2"]
    df["works"] = (df["x1"] > 0.5).astype(int)
    camp.add_measurements(df)
    from campaigns.design_cli import run_design

    designs_df = run_design(tmp_path / "camp", 2, ["c<=1.0"], 64, 0)
    assert designs_df.attrs["surrogate"] == "neural ensemble" and len(designs_df) == 2
    assert any("neural ensemble of 2 network(s)" in note for note in designs_df.attrs["notes"])
    assert "c_mean" in designs_df.columns and "works_mean" not in designs_df.columns
    result = CliRunner().invoke(app(), ["design", str(tmp_path / "camp"), "--starts", "32"])
    assert result.exit_code == 1 and "binary outcome 'works'" in result.output


def test_design_re_simulates_with_a_bundled_system(tmp_path, campaign_dir):
    from campaigns.design_cli import run_design
    from data import get_system

    system = get_system("gardner")
    camp = Campaign.create(tmp_path / "gardner", system.config)
    rng = np.random.default_rng(0)
    designs = pd.DataFrame({"x1": rng.uniform(0, 6, 25), "x2": rng.uniform(0, 6, 25)})
    camp.add_measurements(designs.join(system.simulate(designs, rng)))

    designs_df = run_design(tmp_path / "gardner", 3, [], 64, 0, simulator="gardner")
    x1, x2 = designs_df["x1"], designs_df["x2"]
    assert np.allclose(designs_df["c_true"], np.cos(x1 + x2)) and np.allclose(
        designs_df["c_error"], np.cos(x1 + x2) - designs_df["c_mean"]
    )
    assert designs_df["all_met_true"].dtype == bool and "true met: c<=0.5" in designs_df.columns

    result = CliRunner().invoke(app(), ["design", str(campaign_dir), "--starts", "32", "--simulator", "spring"])
    assert result.exit_code == 1 and "the spring simulator takes the parameters" in result.output


def test_design_anchored_on_data_meets_a_target_from_the_measured_designs(campaign_dir, tmp_path):
    out = tmp_path / "anchored.csv"
    args = ["design", str(campaign_dir), "-n", "2", "--goal", "c=target:0.9±0.01", "--anchor", "data", "-o", str(out)]
    result = CliRunner().invoke(app(), args)
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out)
    assert len(df) == 2 and "anchor_row" in df.columns
    assert ((df["x1"] + df["x2"]) - 0.9).abs().max() < 0.01  # c = x1 + x2 exactly
    result = CliRunner().invoke(app(), ["design", str(campaign_dir), "--goal", "f=min", "--anchor", "data"])
    assert result.exit_code == 1 and "target goals only" in result.output


def test_design_holds_constraints_at_the_confidence_asked(campaign_dir, tmp_path):
    bounds = {}
    for confidence in ("0.5", "0.99"):
        out = tmp_path / f"c{confidence}.csv"
        args = ["design", str(campaign_dir), "-n", "1", "--starts", "64", "--goal", "f=min", "--constraint", "c<=0.8"]
        result = CliRunner().invoke(app(), [*args, "--confidence", confidence, "-o", str(out)])
        assert result.exit_code == 0, result.output
        bounds[confidence] = pd.read_csv(out).iloc[0]
    # f is smallest at (0.3, 0.6), where c = 0.9 breaks the limit: the designs lean on it
    assert bounds["0.5"]["c_mean"] == pytest.approx(0.8, abs=0.01)
    assert bounds["0.99"]["c_mean"] + 2.326 * bounds["0.99"]["c_sd"] <= 0.8 + 0.01  # the 99 % bound holds
    assert bounds["0.99"]["c_mean"] < bounds["0.5"]["c_mean"] - 0.5 * 2.326 * bounds["0.99"]["c_sd"]
    result = CliRunner().invoke(app(), ["design", str(campaign_dir), "--constraint", "c<=0.8", "--confidence", "1.5"])
    assert result.exit_code == 1 and "confidence must be" in result.output


def test_design_nudges_from_a_measured_design_and_takes_the_robust_settings(campaign_dir, tmp_path):
    start = Campaign.open(campaign_dir).measurements.iloc[4]
    out = tmp_path / "nudged.csv"
    args = ["design", str(campaign_dir), "-n", "2", "--starts", "64", "--goal", "f=min", "--nudge-from"]
    result = CliRunner().invoke(app(), [*args, str(int(start["id"])), "--radius", "0.05", "--robust", "-o", str(out)])
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out)
    moved = np.hypot(df["x1"] - start["x1"], df["x2"] - start["x2"])  # unit cube = user units here
    assert (moved <= 0.05 + 1e-6).all()
    result = CliRunner().invoke(app(), [*args, "999"])
    assert result.exit_code == 1 and "no measurement has id 999" in result.output


def test_design_ranks_by_flatness_and_refuses_unknown_settings_in_one_line(campaign_dir, tmp_path):
    out = tmp_path / "flat.csv"
    args = ["design", str(campaign_dir), "-n", "2", "--starts", "16", "--rank-by", "flatness", "-o", str(out)]
    result = CliRunner().invoke(app(), args)
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out)
    assert len(df) == 2 and list(df["rank"]) == [1, 2] and df["expected_objective"].notna().all()
    for option, value in (("--rank-by", "sharpness"), ("--optimizer", "sgd")):
        result = CliRunner().invoke(app(), ["design", str(campaign_dir), option, value])
        assert result.exit_code == 1 and "error:" in result.output and value in result.output, result.output
        assert "Traceback" not in result.output
