"""Tests for adding measurements: every bad input is refused whole, good tables land whole."""

from __future__ import annotations

import hashlib
import multiprocessing
import sqlite3

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from campaigns import Campaign
from campaigns.cli import app
from design import InputError

CONFIG = {
    "name": "import",
    "seed": 0,
    "parameters": [
        {"name": "x", "type": "continuous", "bounds": [0, 10]},
        {"name": "n", "type": "integer", "bounds": [1, 5]},
        {"name": "c", "type": "categorical", "values": ["a", "b"]},
    ],
    "constraints": ["x + n <= 12"],
    "objectives": [{"name": "y", "goal": "maximize"}],
    "safety": [{"name": "s", "upper": 0.8}],
}


def table(rows: int = 3, start: float = 1.0) -> pd.DataFrame:
    """A valid table; its index is the line in a CSV file (header = line 1)."""
    x = start + np.arange(rows, dtype=float)
    return pd.DataFrame(
        {
            "x": x,
            "n": [1 + i % 5 for i in range(rows)],
            "c": ["a" if i % 2 else "b" for i in range(rows)],
            "y": 0.1 * x,
            "s": 0.05 * x,
        },
        index=range(2, rows + 2),
    )


@pytest.fixture
def camp(tmp_path) -> Campaign:
    camp = Campaign.create(tmp_path / "camp", CONFIG)
    camp.add_measurements(table(2, start=7.0), source="first.csv")
    return camp


def snapshot(camp: Campaign) -> tuple:
    """The database file's bytes (and any WAL) and the rows of the append-only tables."""
    digest = hashlib.sha256()
    for path in sorted(camp.path.glob("campaign.db*")):
        digest.update(path.name.encode() + path.read_bytes())
    conn = sqlite3.connect(camp.path / "campaign.db")
    try:
        tables = tuple(
            tuple(conn.execute(f"SELECT * FROM {name} ORDER BY id"))
            for name in ("measurements", "events", "proposals", "batches")
        )
    finally:
        conn.close()
    return digest.hexdigest(), tables


def assert_refused(camp: Campaign, df: pd.DataFrame, *parts: str) -> str:
    before = snapshot(camp)
    with pytest.raises(InputError) as raised:
        camp.add_measurements(df, source="week1.csv")
    message = str(raised.value)
    assert message.startswith("week1.csv")
    for part in parts:
        assert part in message
    assert snapshot(camp) == before
    assert len(camp.measurements) == 2
    return message


def with_cell(row: int, column: str, value) -> pd.DataFrame:
    df = table().astype({column: object})
    df.loc[row, column] = value
    return df


def test_unknown_column(camp):
    message = assert_refused(camp, table().assign(temperature=20.0), "column 'temperature'")
    assert "neither a parameter nor an outcome" in message


def test_missing_parameter_column(camp):
    assert_refused(camp, table().drop(columns="n"), "column 'n' is missing")


def test_missing_outcome_column(camp):
    assert_refused(camp, table().drop(columns="s"), "column 's' is missing")


def test_text_in_a_parameter_column(camp):
    assert_refused(camp, with_cell(3, "x", "abc"), "row 3", "column 'x'", "'abc' is not a number")


def test_text_in_an_outcome_column(camp):
    assert_refused(camp, with_cell(4, "y", "n/a?"), "row 4", "column 'y'", "'n/a?' is not a number")


def test_infinite_outcome(camp):
    assert_refused(camp, with_cell(3, "s", np.inf), "row 3", "column 's'", "infinite")


def test_value_out_of_bounds(camp):
    assert_refused(camp, with_cell(4, "x", 10.5), "row 4", "column 'x'", "10.5", "[0, 10]")


def test_integer_out_of_bounds(camp):
    assert_refused(camp, with_cell(2, "n", 6), "row 2", "column 'n'", "[1, 5]")


def test_category_not_in_the_list(camp):
    assert_refused(camp, with_cell(3, "c", "A"), "row 3", "column 'c'", "'A' is not one of ['a', 'b']")


def test_non_integer_in_an_integer_column(camp):
    assert_refused(camp, with_cell(4, "n", 2.5), "row 4", "column 'n'", "2.5 is not a whole number")


def test_empty_parameter_cell(camp):
    assert_refused(camp, with_cell(3, "x", np.nan), "row 3", "column 'x'", "is empty")
    assert_refused(camp, with_cell(2, "c", "  "), "row 2", "column 'c'", "is empty")


def test_a_bad_last_row_keeps_the_good_rows_out(camp):
    df = table(6)
    df.loc[7, "x"] = -1.0
    assert_refused(camp, df, "row 7", "column 'x'")


def test_valid_table_is_recorded_with_clean_types(camp):
    report = camp.add_measurements(table(3), source="week1.csv")
    assert report.added == 3 and report.failed == 0 and not report.duplicates and not report.warnings
    measured = camp.measurements
    assert len(measured) == 5
    new = measured[measured["source"] == "week1.csv"].reset_index(drop=True)
    pd.testing.assert_frame_equal(new[["x", "n", "c", "y", "s"]], table(3).reset_index(drop=True), check_dtype=False)
    assert new["n"].tolist() == [1, 2, 3] and all(isinstance(v, (int, np.integer)) for v in new["n"])


def test_row_breaking_the_linear_constraint_is_kept_with_a_warning(camp):
    df = table(3)
    df.loc[3, ["x", "n"]] = [9.5, 4]  # 9.5 + 4 > 12
    report = camp.add_measurements(df, source="week1.csv")
    assert report.added == 3
    assert len(report.warnings) == 1
    assert "row 3" in report.warnings[0] and "'x + n <= 12'" in report.warnings[0]
    assert 9.5 in camp.measurements["x"].tolist()


def test_duplicate_of_a_recorded_row_is_skipped_and_reported(camp):
    camp.add_measurements(table(3), source="week1.csv")
    again = pd.concat([table(3).loc[[3]], table(1, start=5.0).set_axis([9])])
    report = camp.add_measurements(again, source="week2.csv")
    assert report.added == 1
    assert report.duplicates == ["week2.csv, row 3: already recorded, skipped."]
    assert len(camp.measurements) == 6


def test_duplicate_within_one_table_is_recorded_once(camp):
    df = pd.concat([table(2), table(2).set_axis([8, 9])])
    report = camp.add_measurements(df, source="week1.csv")
    assert report.added == 2
    assert [d.split(":")[0] for d in report.duplicates] == ["week1.csv, row 8", "week1.csv, row 9"]


def test_nan_outcome_is_kept_and_counted_as_failed(camp):
    df = table(3)
    df.loc[3, "y"] = np.nan
    df = df.astype({"s": object})
    df.loc[4, "s"] = " "  # an empty cell as a spreadsheet may write it
    report = camp.add_measurements(df, source="week1.csv")
    assert report.added == 3 and report.failed == 2
    new = camp.measurements[lambda m: m["source"] == "week1.csv"].reset_index(drop=True)
    assert np.isnan(float(new.loc[1, "y"])) and np.isnan(float(new.loc[2, "s"]))


def test_failed_count_ignores_skipped_duplicates(camp):
    df = table(2)
    df.loc[3, "y"] = np.nan
    camp.add_measurements(df, source="week1.csv")
    report = camp.add_measurements(df, source="week1.csv")
    assert report.added == 0 and len(report.duplicates) == 2
    assert report.failed == 0


def test_replicates_with_different_outcomes_are_both_kept(camp):
    first = table(1)
    second = first.assign(y=first["y"] + 0.01).set_axis([3])
    report = camp.add_measurements(pd.concat([first, second]), source="week1.csv")
    assert report.added == 2 and not report.duplicates
    measured = camp.measurements
    assert (measured["x"] == 1.0).sum() == 2


def test_adding_records_an_event(camp):
    events = camp.store.events()
    camp.add_measurements(table(2), source="week1.csv")
    after = camp.store.events()
    assert len(after) == len(events) + 1
    last = after.iloc[-1]
    assert last["kind"] == "add" and last["source"] == "week1.csv" and last["added"] == 2


def test_a_parameter_named_like_a_bookkeeping_column(tmp_path):
    config = {
        **CONFIG,
        "parameters": [CONFIG["parameters"][0], {"name": "source", "type": "categorical", "values": ["a", "b"]}],
        "constraints": [],
    }
    try:
        camp = Campaign.create(tmp_path / "camp", config)
    except InputError as err:  # refusing the name up front is a fine fix too
        assert "'source'" in str(err)
        return
    df = table(4).drop(columns=["n", "c"]).assign(source=["a", "b", "a", "b"])
    camp.add_measurements(df, source="week1.csv")
    measured = camp.measurements
    assert measured.columns.is_unique
    assert len(camp.propose(2)) == 2


# -- through the command line ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("csv", "parts"),
    [
        ("x,n,c,y,s\n1,1,a,0.1,0.1\n2,oops,b,0.2,0.1\n", ["row 3", "column 'n'", "'oops'"]),
        ("x,n,c,y,s\n1,1,a,0.1,0.1\n2,1,b,0.2,0.1\n12,1,a,0.3,0.1\n", ["row 4", "column 'x'", "outside the bounds"]),
        ("x,n,c,y,s\n1,1,a,0.1,0.1\n2,1,z,0.2,0.1\n", ["row 3", "column 'c'", "'z'"]),
        ("x,n,c,y,s,extra\n1,1,a,0.1,0.1,0\n", ["column 'extra'"]),
    ],
    ids=["text in integer column", "out of bounds", "unknown category", "unknown column"],
)
def test_bad_csv_via_the_cli_changes_nothing(camp, tmp_path, csv, parts):
    path = tmp_path / "week1.csv"
    path.write_text(csv)
    before = snapshot(camp)
    result = CliRunner().invoke(app, ["add", str(camp.path), str(path)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: week1.csv")
    for part in parts:
        assert part in lines[0]
    assert snapshot(camp) == before


def test_csv_row_labels_are_file_lines_via_the_cli(camp, tmp_path):
    path = tmp_path / "week1.csv"
    path.write_text("x,n,c,y,s\n1,1,a,0.1,0.1\n1,1,a,0.1,0.1\n2,2,b,,0.1\n")
    result = CliRunner().invoke(app, ["add", str(camp.path), str(path)])
    assert result.exit_code == 0
    assert "week1.csv, row 3: already recorded" in result.stderr
    assert "Added 2 measurement(s), 1 failed run(s)" in result.stdout


# -- storage contract --------------------------------------------------------------------------


def _add_chunks(directory: str, start: float, chunks: int, rows: int, barrier) -> None:
    camp = Campaign.open(directory)
    barrier.wait()
    for k in range(chunks):
        camp.add_measurements(table(rows, start=start + k * 0.005), source=f"process {start}")


def test_two_processes_adding_at_once_lose_nothing(camp):
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    chunks, rows = 6, 5
    workers = [
        ctx.Process(target=_add_chunks, args=(str(camp.path), start, chunks, rows, barrier)) for start in (0.1, 0.2)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    measured = camp.measurements
    assert len(measured) == 2 + 2 * chunks * rows
    assert measured["id"].is_unique
    events = camp.store.events()
    assert (events["kind"] == "add").sum() == 1 + 2 * chunks


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE measurements SET source = 'edited'",
        "DELETE FROM measurements",
        "UPDATE events SET kind = 'edited'",
        "DELETE FROM events WHERE id = 1",
    ],
)
def test_measurements_and_events_are_append_only(camp, sql):
    before = snapshot(camp)
    conn = sqlite3.connect(camp.path / "campaign.db")
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(sql)
        conn.commit()
    finally:
        conn.close()
    assert snapshot(camp)[1] == before[1]
