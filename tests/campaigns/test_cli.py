"""Tests for the `valley` command line, run in-process with typer's CliRunner."""

from __future__ import annotations

import hashlib
import re

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from campaigns.campaign import Campaign
from campaigns.cli import app

CONFIG = {
    "name": "cli-demo",
    "seed": 1,
    "parameters": [
        {"name": "x1", "type": "continuous", "bounds": [0, 1]},
        {"name": "x2", "type": "continuous", "bounds": [0, 1]},
    ],
    "objectives": [{"name": "y", "goal": "maximize"}],
    "safety": [{"name": "s", "upper": 0.9}],
    "acquisition": {"num_restarts": 2, "raw_samples": 32, "mc_samples": 32},
}
COMMANDS = ["init", "add", "propose", "status", "export", "demo"]


def lab(designs: pd.DataFrame) -> pd.DataFrame:
    """Measure designs with a formula: `y` peaks at (0.7, 0.4), `s = x1`."""
    designs = designs[["x1", "x2"]]
    return designs.assign(y=1 - (designs["x1"] - 0.7) ** 2 - (designs["x2"] - 0.4) ** 2, s=designs["x1"])


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def fingerprint(directory) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def test_end_to_end_init_add_propose_add_status_export(tmp_path, config_file):
    directory = tmp_path / "camp"
    result = invoke("init", directory, "--config", config_file)
    assert result.exit_code == 0
    assert "Created campaign cli-demo" in result.stdout

    first = tmp_path / "week1.csv"
    lab(pd.DataFrame({"x1": [0.1, 0.5, 0.9, 0.3], "x2": [0.2, 0.8, 0.5, 0.4]})).to_csv(first, index=False)
    result = invoke("add", directory, first)
    assert result.exit_code == 0
    assert "Added 4 measurement(s); skipped 0 duplicate(s)." in result.stdout

    proposals_csv = tmp_path / "next.csv"
    result = invoke("propose", directory, "-n", 3, "-o", proposals_csv)
    assert result.exit_code == 0, result.output
    assert "Batch 1 (qLogNEI)" in result.stdout
    proposals = pd.read_csv(proposals_csv)
    assert len(proposals) == 3
    assert {"x1", "x2", "y_mean", "y_sd", "s_mean", "s_sd", "p_safe"} <= set(proposals.columns)

    result = invoke("status", directory)
    assert "4 measurement(s), 0 failed; 3 open proposal(s)" in result.stdout

    measured = tmp_path / "week2.csv"
    lab(proposals).to_csv(measured, index=False)
    result = invoke("add", directory, measured)
    assert result.exit_code == 0
    assert "Added 3 measurement(s)" in result.stdout

    result = invoke("status", directory)
    assert result.exit_code == 0
    assert "cli-demo: 7 measurement(s), 0 failed; 0 open proposal(s)." in result.stdout
    assert "Best safe result so far" in result.stdout
    every = pd.concat([pd.read_csv(first), pd.read_csv(measured)])
    safe = every[every["s"] <= 0.9]
    assert f"{safe['y'].max():.4g}" in result.stdout

    exported = tmp_path / "everything.csv"
    result = invoke("export", directory, "-o", exported)
    assert result.exit_code == 0
    assert "Wrote 10 rows" in result.stdout
    table = pd.read_csv(exported)
    assert table.columns[0] == "record"
    assert table["record"].value_counts().to_dict() == {"measurement": 7, "proposal": 3}
    assert set(table.loc[table["record"] == "proposal", "status"]) == {"measured"}
    assert table.loc[table["record"] == "proposal", "method"].eq("qLogNEI").all()


def test_export_to_standard_output(camp_dir, tmp_path):
    path = tmp_path / "week1.csv"
    lab(pd.DataFrame({"x1": [0.1], "x2": [0.2]})).to_csv(path, index=False)
    assert invoke("add", camp_dir, path).exit_code == 0
    result = invoke("export", camp_dir)
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("record,x1,x2,y,s")
    assert len(lines) == 2 and lines[1].startswith("measurement,0.1,0.2,")


def test_status_of_a_new_campaign(camp_dir):
    result = invoke("status", camp_dir)
    assert result.exit_code == 0
    assert "0 measurement(s), 0 failed; 0 open proposal(s)" in result.stdout
    assert "No safe measurement yet." in result.stdout


def test_status_counts_failed_runs(camp_dir, tmp_path):
    path = tmp_path / "week1.csv"
    path.write_text("x1,x2,y,s\n0.1,0.2,0.5,0.1\n0.3,0.4,,0.3\n")
    result = invoke("add", camp_dir, path)
    assert "1 failed run(s)" in result.stdout
    result = invoke("status", camp_dir)
    assert result.exit_code == 0
    assert "2 measurement(s), 1 failed" in result.stdout


def test_status_after_every_run_failed(camp_dir, tmp_path):
    path = tmp_path / "week1.csv"
    path.write_text("x1,x2,y,s\n0.1,0.2,,\n0.3,0.4,,\n")
    assert invoke("add", camp_dir, path).exit_code == 0
    result = invoke("status", camp_dir)
    assert result.exit_code == 0
    assert "No safe measurement yet." in result.stdout


def test_propose_with_too_few_data_notes_it_on_stderr(camp_dir):
    result = invoke("propose", camp_dir, "-n", 2)
    assert result.exit_code == 0
    assert "Batch 1 (space-filling)" in result.stdout
    assert re.search(r"note: 0 distinct design\(s\) successfully measured for 'y'", result.stderr)


def test_propose_from_a_candidates_file(camp_dir, tmp_path):
    pool = tmp_path / "pool.csv"
    pd.DataFrame({"x1": [0.1, 0.2, 0.3, 0.4], "x2": [0.5, 0.6, 0.7, 0.8]}).to_csv(pool, index=False)
    out = tmp_path / "next.csv"
    result = invoke("propose", camp_dir, "-n", 2, "--candidates", pool, "-o", out)
    assert result.exit_code == 0
    chosen = pd.read_csv(out)
    assert len(chosen) == 2
    assert set(chosen["x1"].round(12)) <= {0.1, 0.2, 0.3, 0.4}


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_every_command_has_an_example(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout


def test_bad_csv_is_one_error_line_and_changes_nothing(camp_dir, tmp_path):
    good = tmp_path / "good.csv"
    lab(pd.DataFrame({"x1": [0.1, 0.5], "x2": [0.2, 0.8]})).to_csv(good, index=False)
    assert invoke("add", camp_dir, good).exit_code == 0
    before = fingerprint(camp_dir)
    bad = tmp_path / "bad.csv"
    bad.write_text("x1,x2,y,s\n0.2,0.3,1.0,0.1\n0.3,abc,1.0,0.2\n")
    result = invoke("add", camp_dir, bad)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: bad.csv, row 3, column 'x2': 'abc' is not a number")
    assert "Traceback" not in result.output
    assert fingerprint(camp_dir) == before
    assert "2 measurement(s)" in invoke("status", camp_dir).stdout


def test_names_with_brackets_are_printed_as_written(camp_dir, tmp_path):
    for unknown in ["temp[c]", "note[/b]"]:  # rich would read these as markup: drop one, crash on the other
        bad = tmp_path / "units.csv"
        bad.write_text(f"x1,x2,y,s,{unknown}\n0.2,0.3,1.0,0.1,20\n")
        result = invoke("add", camp_dir, bad)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert f"column '{unknown}'" in result.stderr
    units = {**CONFIG, "name": "units[mm]", "parameters": [{**CONFIG["parameters"][0], "name": "conc[mm]"}]}
    config_file = tmp_path / "units.yaml"
    config_file.write_text(yaml.safe_dump(units))
    created = invoke("init", tmp_path / "units", "--config", config_file)
    assert created.exit_code == 0 and "units[mm]" in created.stdout
    batch_file = tmp_path / "batch[a].csv"
    proposed = invoke("propose", tmp_path / "units", "-n", "2", "-o", batch_file)
    assert proposed.exit_code == 0 and "conc[mm]" in proposed.stdout
    assert "batch[a].csv" in proposed.stdout.replace("\n", "") and batch_file.exists()


def test_debug_shows_the_exception(camp_dir, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("x1,x2,y,s\n0.2,3,1.0,0.1\n")
    result = invoke("--debug", "add", camp_dir, bad)
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "InputError"
    assert "row 2, column 'x2'" in str(result.exception)


def test_init_refuses_an_existing_campaign(camp_dir, config_file):
    before = fingerprint(camp_dir)
    result = invoke("init", camp_dir, "--config", config_file)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "a campaign already exists there" in result.stderr
    assert fingerprint(camp_dir) == before


def test_init_hints_at_a_log_scale_for_a_wide_positive_range(tmp_path):
    wide = [{"name": "x1", "type": "continuous", "bounds": [0.05, 2.0]}, CONFIG["parameters"][1]]
    config = tmp_path / "wide.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "parameters": wide}))
    result = invoke("init", tmp_path / "camp", "--config", config)
    assert result.exit_code == 0 and "hint: x1 spans 40x" in result.stderr and "log: true" in result.stderr
    narrow = tmp_path / "narrow.yaml"
    narrow.write_text(yaml.safe_dump(CONFIG))
    assert "hint" not in invoke("init", tmp_path / "plain", "--config", narrow).stderr


def test_init_with_a_broken_config_creates_nothing(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "objectives": [{"name": "y", "goal": "target"}]}))
    result = invoke("init", tmp_path / "camp", "--config", config)
    assert result.exit_code == 1
    assert "objectives[0]" in result.stderr
    assert not (tmp_path / "camp").exists()


def test_missing_files_are_one_error_line(camp_dir, tmp_path):
    result = invoke("add", camp_dir, tmp_path / "nope.csv")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "error: " in result.stderr and "nope.csv` does not exist" in result.stderr

    result = invoke("init", tmp_path / "new", "--config", tmp_path / "nope.yaml")
    assert result.exit_code == 1
    assert "nope.yaml: no such file" in result.stderr

    result = invoke("status", tmp_path / "nowhere")
    assert result.exit_code == 1
    assert "not a Valley campaign" in result.stderr


@pytest.mark.parametrize("command", ["export", "propose"])
def test_an_output_in_a_missing_folder_is_refused_before_anything_is_recorded(camp_dir, tmp_path, command):
    before = (camp_dir / "campaign.db").read_bytes()
    result = invoke(command, camp_dir, "-o", tmp_path / "missing" / "out.csv")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "does not exist. Create it first" in result.stderr
    assert (camp_dir / "campaign.db").read_bytes() == before  # no batch recorded


def test_demo_can_run_its_campaign_with_cautious_extrapolation(tmp_path):
    result = invoke("demo", "--rounds", "0", "--out", tmp_path, "--cautious")
    assert result.exit_code == 0, result.output
    assert Campaign.open(tmp_path / "campaign").config.safety_extrapolation == "cautious"
    assert invoke("demo", "--rounds", "0", "--out", tmp_path).exit_code == 0  # the default run replaces it
    assert Campaign.open(tmp_path / "campaign").config.safety_extrapolation == "fitted"


def test_demo_can_run_its_campaign_with_exploring_designs(tmp_path):
    result = invoke("demo", "--rounds", "0", "--out", tmp_path, "--explore", "1")
    assert result.exit_code == 0, result.output
    assert Campaign.open(tmp_path / "campaign").config.safety_explore == 1
