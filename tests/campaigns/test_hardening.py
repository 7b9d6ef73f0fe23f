"""Issue 19: bad input and unexpected failures end in one clear line, exit code 1, the campaign unchanged."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

import campaigns.storage
from campaigns import Campaign
from campaigns.config import load_config
from campaigns.export import spreadsheet_safe
from data import DataFileError, read_table
from design import InputError
from tests.campaigns.test_cli import CONFIG, fingerprint, invoke, lab

TWO_D = pd.DataFrame({"x1": [0.1, 0.5, 0.9], "x2": [0.2, 0.8, 0.5]})


def one_error_line(result, *fragments: str) -> str:
    """The command failed with exit code 1 and exactly one `error:` line on stderr holding `fragments`."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# -- item 11: no raw traceback from any command ------------------------------------------------------------


@pytest.mark.parametrize("command", ["status", "export", "propose", "report", "design"])
def test_an_unexpected_error_is_one_line_with_a_hint_to_use_debug(camp_dir, monkeypatch, command):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(Campaign, "open", broken)
    line = one_error_line(invoke(command, camp_dir), "unexpected RuntimeError: disk on fire second line")
    assert f"valley --debug {command}" in line

    result = invoke("--debug", command, camp_dir)
    assert result.exit_code == 1 and isinstance(result.exception, RuntimeError)


def test_design_honours_debug_for_bad_input(camp_dir):
    assert "at least" in one_error_line(invoke("design", camp_dir))  # too few measurements
    result = invoke("--debug", "design", camp_dir)
    assert isinstance(result.exception, InputError)


# -- item 2: a damaged database -------------------------------------------------------------------------------


def _foreign_database(path):
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        (lambda p: p.write_bytes(b""), "empty (0 bytes)"),
        (lambda p: p.write_bytes(b"this is not SQLite" * 100), "file is not a database"),
        (lambda p: (p.unlink(), _foreign_database(p)), "not a Valley campaign database"),
    ],
    ids=["zero-byte", "garbage", "foreign-sqlite"],
)
@pytest.mark.parametrize("command", ["status", "add", "propose", "export", "report", "design"])
def test_a_damaged_database_is_one_line_naming_the_file(camp_dir, tmp_path, damage, fragment, command):
    damage(camp_dir / "campaign.db")
    before = fingerprint(camp_dir)
    table = tmp_path / "week1.csv"
    lab(TWO_D).to_csv(table, index=False)
    args = [command, camp_dir] + ([table] if command == "add" else [])
    line = one_error_line(invoke(*args), fragment, "campaign.db")
    assert "Restore campaign.db from a backup" in line
    assert fingerprint(camp_dir) == before


def test_a_page_damaged_after_the_header_is_one_line(camp_dir, tmp_path):
    table = tmp_path / "week1.csv"
    lab(pd.concat([TWO_D] * 50, ignore_index=True).assign(x1=np.linspace(0, 1, 150))).to_csv(table, index=False)
    assert invoke("add", camp_dir, table).exit_code == 0
    db = camp_dir / "campaign.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(db.read_bytes())
    data[4096 + 100 : len(data)] = b"\xff" * (len(data) - 4196)  # everything after the first page
    db.write_bytes(bytes(data))
    one_error_line(invoke("status", camp_dir), "campaign.db", "damaged")


# -- item 3: init on a path that is a file ------------------------------------------------------------------


def test_init_on_a_file_or_under_a_file_is_one_line(tmp_path, config_file):
    path = tmp_path / "results.txt"
    path.write_text("keep me")
    one_error_line(invoke("init", path, "--config", config_file), "is a file, not a directory")
    one_error_line(invoke("init", path / "camp", "--config", config_file), "cannot create the campaign there")
    assert path.read_text() == "keep me"


# -- item 1: another process holds the write lock -----------------------------------------------------------


def test_a_held_lock_is_waited_for_then_one_line_names_the_holder(camp_dir, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(campaigns.storage, "LOCK_TIMEOUT", 1.0)
    monkeypatch.setattr(campaigns.storage, "LOCK_NOTICE", 0.1)
    table = tmp_path / "week1.csv"
    lab(TWO_D).to_csv(table, index=False)
    store = Campaign.open(camp_dir).store
    with store._transaction():  # as a long `valley add` would: holds the lock, names itself
        assert store.holder_file.exists()
        result = invoke("add", camp_dir, table)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "trying again for up to 1 s" in caplog.text  # the wait was announced (on stderr, outside pytest)
    error = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "still locked after 1 s" in error[0] and f"process {os.getpid()}" in error[0]
    assert not store.holder_file.exists()
    assert Campaign.open(camp_dir).measurements.empty
    assert invoke("add", camp_dir, table).exit_code == 0  # once released, it goes through


# -- items 4, 5, 6: configs that passed init and failed later ----------------------------------------------


def _with(**changes):
    config = {**CONFIG, **changes}
    return config


def _x1(**changes):
    return [{**CONFIG["parameters"][0], **changes}, CONFIG["parameters"][1]]


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        (_with(parameters=_x1(bounds=[0, 10**400])), "with low < high, two finite numbers"),
        (_with(parameters=_x1(type="integer", bounds=[0, 10**400])), "with low < high, two finite numbers"),
        (_with(parameters=_x1(type="integer", bounds=[0, 10**12])), "at most 1,000,000 values"),
        (_with(parameters=_x1(bounds=[0, 5e-324])), "at least 1e-9 of their size"),
        (_with(parameters=_x1(bounds=[1, 1 + 1e-14])), "at least 1e-9 of their size"),
        (_with(parameters=_x1(bounds=[-1.7e308, 1.7e308])), "at least 1e-9 of their size"),
        (_with(parameters=_x1(bounds=[True, 2])), "with low < high, two finite numbers"),
        (_with(constraints=["x1 + x2 >= 3"]), "constraints[0] 'x1 + x2 >= 3' cannot hold for any design"),
        (_with(constraints=["x1 + x2 >= 1.5", "x1 - x2 >= 0.9"]), "no design satisfies all 2 constraints"),
        (_with(constraints=["x1 + x2 == 3"]), "cannot hold for any design"),
        (_with(parameters=_x1(bounds=[0, 1e15]), constraints=["x1 + x2 <= 1"]), "sliver"),
        (_with(constraints=["x1 <= 0"]), "sliver"),
        (_with(constraints=["1e400 * x1 <= 1"]), "too large"),
        (_with(constraints=[f"{10**400} * x1 <= 1"]), "too large"),
        (_with(constraints=["(" * 5000 + "x1" + ")" * 5000 + " <= 1"]), "constraints[0]"),
        (_with(constraints=["x1 + " * 30_000 + "x2 <= 1"]), "longer than 100,000 characters"),
        (_with(constraints=[3]), "constraints[0]"),
        (_with(seed=2**70), "seed"),
        (_with(seed=-1), "seed"),
        (_with(safety=[{"name": "s", "upper": float("nan")}]), "safety[0].upper"),
        (_with(safety=[{"name": "s", "lower": float("-inf")}]), "safety[0].lower"),
        (_with(objectives=[{"name": "y", "goal": "target", "target": float("-inf")}]), "objectives[0].target"),
        (_with(objectives=[{"name": "y", "goal": "maximize", "reference": float("inf")}]), "reference"),
        (_with(objectives=[{"name": "y", "noise_sd": float("inf")}]), "noise_sd"),
    ],
)
def test_configs_that_would_fail_later_are_refused_at_load(config, fragment):
    with pytest.raises(InputError, match="^config: ") as caught:
        load_config(config)
    message = str(caught.value)
    assert fragment in message and "\n" not in message and len(message) < 600


def test_long_sums_are_fine_constraints():
    terms = " + ".join(["x1", "x2"] * 600)
    config = load_config(_with(constraints=[f"{terms} <= 700"]))
    constraint = config.space().constraints[0]
    assert constraint.coefficients == {"x1": 600.0, "x2": 600.0} and constraint.rhs == 700.0
    assert config.space().room() > 0.1


@pytest.mark.parametrize("source", [None, [], 3, b"name: x"])
def test_load_config_of_a_wrong_type_is_an_input_error(source):
    with pytest.raises(InputError, match="path of a campaign YAML file or a dict"):
        load_config(source)


def test_init_refuses_an_infeasible_config_and_creates_nothing(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(_with(constraints=["x1 + x2 >= 3"])))
    one_error_line(invoke("init", tmp_path / "camp", "--config", config), "c.yaml: constraints[0]")
    assert not (tmp_path / "camp").exists()


def test_a_deeply_nested_yaml_file_is_one_line(tmp_path):
    config = tmp_path / "deep.yaml"
    config.write_text("name: " + "[" * 50_000 + "]" * 50_000)
    with pytest.raises(InputError, match="deep.yaml: "):
        load_config(config)


# -- item 8: the Python API ---------------------------------------------------------------------------------


@pytest.fixture
def camp(tmp_path):
    return Campaign.create(tmp_path / "api", {**CONFIG, "constraints": []})


def _refused(camp, df, *fragments):
    before = camp.store.path.read_bytes()
    with pytest.raises(InputError) as caught:
        camp.add_measurements(df)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message and "np." not in message and len(message) < 600
    assert camp.measurements.empty and camp.store.path.read_bytes() == before
    return message


def test_duplicate_column_names_and_row_labels_are_refused(camp):
    df = lab(TWO_D)
    _refused(camp, pd.concat([df, df[["y"]]], axis=1), "column 'y' appears more than once")
    _refused(camp, df.set_axis([0, 1, 0]), "row label 0 appears more than once", "reset_index")
    _refused(camp, df.to_dict("list"), "must be a pandas DataFrame")
    _refused(camp, df.set_axis([0, 1, 2, 3], axis=1), "column 0 is neither")


@pytest.mark.parametrize("column", ["x1", "y", "weight"])
def test_booleans_are_not_numbers(camp, column):
    df = lab(TWO_D).assign(weight=1.0)
    df[column] = df[column].astype(object)
    df.loc[1, column] = True
    _refused(camp, df, f"row 1, column '{column}': True is a yes/no value, not a number")
    _refused(camp, df.assign(**{column: [True, False, True]}), "True is a yes/no value")


def test_messages_cut_long_values_and_show_plain_numbers(camp):
    df = lab(TWO_D)
    message = _refused(camp, df.assign(**{"z" * 100_000: 1}), "zzzz", "100,000 characters")
    assert len(message) < 600
    huge = "1" * 100_000
    message = _refused(camp, df.assign(y=df["y"].astype(object)).assign(y=[huge, 1.0, 2.0]), "infinite or too large")
    assert "100,000 characters" in message
    _refused(camp, df.assign(y=[np.inf, 1.0, 2.0]), "row 0, column 'y': inf is infinite or too large")
    _refused(camp, df.assign(x1=[np.float64(2.5), 0.1, 0.2]), "2.5 is outside the bounds")
    _refused(camp, df.assign(y=["abc" * 300_000, "1", "2"]), "'abcabc", "900,000 characters")


def test_a_long_category_cell_is_cut(tmp_path):
    config = {
        **CONFIG,
        "parameters": [*CONFIG["parameters"], {"name": "c", "type": "categorical", "values": ["a", "b"]}],
    }
    camp = Campaign.create(tmp_path / "cat", config)
    _refused(camp, lab(TWO_D).assign(c=["a", "x" * 1_000_000, "b"]), "row 1, column 'c'", "1,000,000 characters")


# -- item 9: CSV files that are not what they seem ---------------------------------------------------------


def test_a_semicolon_or_tab_separated_file_is_named_as_such(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("x1;x2;y;s\n0,1;0,2;1;0,1\n")
    with pytest.raises(DataFileError, match="separates its fields with semicolons"):
        read_table(path)
    path.write_text("x1\tx2\ty\ts\n0.1\t0.2\t1\t0.1\n")
    with pytest.raises(DataFileError, match="separates its fields with tabs"):
        read_table(path)


def test_rows_with_too_few_or_too_many_fields_are_both_refused(camp_dir, tmp_path):
    before = fingerprint(camp_dir)
    short = tmp_path / "short.csv"
    short.write_text("x1,x2,y,s\n0.1,0.2,1,0.1\n0.3,0.4,1\n")
    one_error_line(invoke("add", camp_dir, short), "short.csv`, row 3: 3 field(s), but the header has 4 names")
    long = tmp_path / "long.csv"
    long.write_text("x1,x2,y,s\n0.1,0.2,1,0.1\n0,3,0.4,1,0.2\n")
    one_error_line(invoke("add", camp_dir, long), "long.csv", "fields", "decimal comma")
    assert fingerprint(camp_dir) == before
    empty_outcome = tmp_path / "failed.csv"
    empty_outcome.write_text("x1,x2,y,s\n0.1,0.2,1,0.1\n0.3,0.4,,\n")  # empty fields: a failed run, as before
    result = invoke("add", camp_dir, empty_outcome)
    assert result.exit_code == 0 and "1 failed run(s)" in result.stdout


# -- item 10: exports a spreadsheet would run as formulas -------------------------------------------------


def test_export_escapes_cells_that_start_like_formulas(tmp_path):
    values = ["=HYPERLINK(1)", "+1+1", "-cmd", "@SUM(A1)", "plain", "-2"]
    config = {**CONFIG, "parameters": [*CONFIG["parameters"], {"name": "c", "type": "categorical", "values": values}]}
    config_path = tmp_path / "c.yaml"
    config_path.write_text(yaml.safe_dump(config))
    directory = tmp_path / "camp"
    assert invoke("init", directory, "--config", config_path).exit_code == 0
    table = tmp_path / "=cmd.csv"  # the file name becomes the `source` column
    lab(pd.concat([TWO_D] * 2, ignore_index=True)).assign(c=values, x1=np.linspace(0, 1, 6)).assign(
        y=lambda d: -d["x1"]
    ).to_csv(table, index=False)
    assert invoke("add", directory, table).exit_code == 0
    for name in ["all.csv", "all.xlsx"]:
        assert invoke("export", directory, "-o", tmp_path / name).exit_code == 0
        read = pd.read_csv if name.endswith(".csv") else pd.read_excel
        exported = read(tmp_path / name, dtype={"c": str})
        assert exported["c"].tolist() == ["'=HYPERLINK(1)", "'+1+1", "'-cmd", "'@SUM(A1)", "plain", "-2"]
        assert set(exported["source"]) == {"'=cmd.csv"}
        assert (exported["y"] <= 0).all()  # negative numbers stay numbers


def test_spreadsheet_safe_leaves_numbers_and_plain_text():
    df = pd.DataFrame({"a": [-1.5, 2.0], "b": ["-1e3", "\t=1"], "=c": ["x", None]})
    safe = spreadsheet_safe(df)
    assert safe["a"].tolist() == [-1.5, 2.0]
    assert safe["b"].tolist() == ["-1e3", "'\t=1"]
    assert list(safe.columns) == ["a", "b", "'=c"] and safe["'=c"][0] == "x" and pd.isna(safe["'=c"][1])


# -- item 7: concurrent proposals --------------------------------------------------------------------------


def test_two_concurrent_proposes_get_distinct_batches(camp_dir, tmp_path):
    table = tmp_path / "week1.csv"
    lab(pd.DataFrame({"x1": [0.1, 0.5, 0.9, 0.3, 0.7], "x2": [0.2, 0.8, 0.5, 0.4, 0.1]})).to_csv(table, index=False)
    assert invoke("add", camp_dir, table).exit_code == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    outputs = [tmp_path / f"batch{i}.csv" for i in range(2)]
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "campaigns.cli", "propose", str(camp_dir), "-n", "3", "-o", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for path in outputs
    ]
    for run in runs:
        output, _ = run.communicate(timeout=600)
        assert run.returncode == 0, output
    batches = [pd.read_csv(path)[["x1", "x2"]].round(6) for path in outputs]
    both = pd.concat(batches, ignore_index=True)
    assert len(both) == 6 and not both.duplicated().any()
    camp = Campaign.open(camp_dir)
    assert sorted(camp.proposals["batch_id"].unique()) == [1, 2]
    assert len(camp.open_proposals) == 6


def test_a_failed_create_in_an_existing_empty_folder_leaves_it_empty(tmp_path, monkeypatch):
    import campaigns.campaign as campaign_module

    folder = tmp_path / "empty"
    folder.mkdir()

    def broken(path):
        path.write_bytes(b"half a database")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(campaign_module.Store, "create", staticmethod(broken))
    with pytest.raises(InputError, match="cannot create the campaign there"):
        Campaign.create(folder, CONFIG)
    assert folder.is_dir() and list(folder.iterdir()) == []
