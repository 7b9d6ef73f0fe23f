"""Tests for reading user tables from CSV and Excel files, and for their error messages."""

from __future__ import annotations

import pandas as pd
import pytest

from data import DataFileError, read_table


def test_csv_is_read_with_stripped_column_names(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text(" dose_ug ,ligand\n1.5,antiCD3\n20,none\n")
    table_df = read_table(path)
    assert list(table_df.columns) == ["dose_ug", "ligand"]
    assert table_df["dose_ug"].tolist() == [1.5, 20.0]
    assert table_df["ligand"].tolist() == ["antiCD3", "none"]


def test_xlsx_is_read(tmp_path):
    path = tmp_path / "runs.xlsx"
    pd.DataFrame({"x1 ": [1.0, 2.0], "f": [0.1, 0.2]}).to_excel(path, index=False)
    table_df = read_table(str(path))
    assert list(table_df.columns) == ["x1", "f"]
    assert table_df["f"].tolist() == [0.1, 0.2]


def test_named_sheet_is_read_and_a_missing_one_is_named(tmp_path):
    path = tmp_path / "runs.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"a": [1]}).to_excel(writer, sheet_name="first", index=False)
        pd.DataFrame({"b": [2]}).to_excel(writer, sheet_name="second", index=False)
    assert list(read_table(path, sheet="second").columns) == ["b"]
    with pytest.raises(DataFileError, match="runs.xlsx.*third"):
        read_table(path, sheet="third")


def test_missing_file(tmp_path):
    with pytest.raises(DataFileError, match="nope.csv` does not exist. Check the path"):
        read_table(tmp_path / "nope.csv")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(DataFileError, match="is a folder"):
        read_table(tmp_path)


def test_unsupported_extension_lists_the_supported_ones(tmp_path):
    path = tmp_path / "runs.json"
    path.write_text("{}")
    with pytest.raises(DataFileError, match=r"runs.json.*\.csv, \.xlsx, \.xls.*'\.json'"):
        read_table(path)


def test_empty_csv(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataFileError, match="empty.csv` is empty"):
        read_table(path)


def test_header_without_rows(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("a,b\n")
    with pytest.raises(DataFileError, match="header.csv` has no data rows"):
        read_table(path)


def test_empty_xlsx(tmp_path):
    path = tmp_path / "empty.xlsx"
    pd.DataFrame().to_excel(path, index=False)
    with pytest.raises(DataFileError, match="empty.xlsx` is empty"):
        read_table(path)


def test_ragged_csv_names_the_line(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(DataFileError, match=r"ragged.csv.*line 3") as raised:
        read_table(path)
    assert "\n" not in str(raised.value)


def test_rows_longer_than_the_header_are_not_silently_an_index(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("a,b\n1,2,3\n4,5,6\n")
    with pytest.raises(DataFileError, match="long.csv` has rows with more fields than the header"):
        read_table(path)


@pytest.mark.parametrize("header", ["a,b,a", "a,b, a "])
def test_duplicate_column_names(tmp_path, header):
    path = tmp_path / "dup.csv"
    path.write_text(f"{header}\n1,2,3\n")
    with pytest.raises(DataFileError, match=r"dup.csv` repeats the column name\(s\) \['a'\]"):
        read_table(path)


def test_duplicate_column_names_in_xlsx(tmp_path):
    path = tmp_path / "dup.xlsx"
    pd.DataFrame([[1, 2]], columns=["a", "a"]).to_excel(path, index=False)
    with pytest.raises(DataFileError, match=r"repeats the column name\(s\) \['a'\]"):
        read_table(path)


def test_not_a_workbook(tmp_path):
    path = tmp_path / "fake.xlsx"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataFileError, match="fake.xlsx` could not be read as an Excel workbook"):
        read_table(path)


def test_non_utf8_csv(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("name,\u00b5g\nb\u00e9b\u00e9,1\n".encode("latin-1"))
    with pytest.raises(DataFileError, match="latin.csv` is not UTF-8"):
        read_table(path)
