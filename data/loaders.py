"""Read a user's table of designs and measurements from a CSV or Excel file."""

from __future__ import annotations

import csv
import warnings
from collections import Counter
from pathlib import Path

import pandas as pd

SUPPORTED_EXTENSIONS = (".csv", ".xlsx", ".xls")


class DataFileError(ValueError):
    """A data file cannot be read as a table; the message names the file and the fix."""


def read_table(path: str | Path, sheet: str | int = 0) -> pd.DataFrame:
    """Read a table with one row per experiment from a `.csv`, `.xlsx` or `.xls` file.

    The first row holds the column names; whitespace around them is removed.

    Args:
        path: The file to read.
        sheet: For Excel files, the sheet's name or 0-based position.

    Returns:
        A DataFrame with one row per data row of the file.

    Raises:
        DataFileError: If the file is missing, has another extension, holds no rows,
            cannot be parsed, or repeats a column name.

    Example:
        >>> measurements_df = read_table("measurements.csv")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise DataFileError(f"Data file `{path}` {what}. Check the path and try again.")
    extension = path.suffix.lower()
    if extension not in SUPPORTED_EXTENSIONS:
        raise DataFileError(
            f"Data file `{path}` must end in one of {', '.join(SUPPORTED_EXTENSIONS)}. "
            f"Got {path.suffix or 'no extension'!r} instead. Save the table as CSV or Excel."
        )
    if extension == ".csv":
        _check_separator(path)
        table_df, header = _read_csv(path)
        _check_short_rows(path, table_df)
    else:
        table_df, header = _read_excel(path, sheet)
    names = [name.strip() for name in header]
    repeated = sorted(name for name, count in Counter(names).items() if count > 1 and name)
    if repeated:
        raise DataFileError(
            f"Data file `{path}` repeats the column name(s) {repeated}. Give every column its own name."
        )
    if table_df.empty:
        raise DataFileError(f"Data file `{path}` has no data rows. Add at least one row under the header.")
    return table_df.set_axis(names, axis="columns")


def _read_csv(path: Path) -> tuple[pd.DataFrame, list[str]]:
    try:
        with warnings.catch_warnings():
            # Rows longer than the header would silently become an index or be cut.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table_df = pd.read_csv(path, index_col=False)
        header_df = pd.read_csv(path, header=None, nrows=1, dtype=str)
    except pd.errors.EmptyDataError:
        raise DataFileError(f"Data file `{path}` is empty. Write a header row and at least one data row.") from None
    except pd.errors.ParserWarning:
        raise DataFileError(
            f"Data file `{path}` has rows with more fields than the header has names. "
            "Give every row as many comma-separated fields as the header (a decimal comma, as in 1,5, splits a "
            "number in two: write 1.5)."
        ) from None
    except pd.errors.ParserError as error:
        detail = str(error).strip().replace("\n", " ")
        raise DataFileError(
            f"Data file `{path}` is not a well-formed CSV table ({detail}). "
            "Give every row as many comma-separated fields as the header (a decimal comma, as in 1,5, splits a "
            "number in two: write 1.5)."
        ) from None
    except UnicodeDecodeError:
        raise DataFileError(f"Data file `{path}` is not UTF-8 text. Save it as a UTF-8 CSV file.") from None
    return table_df, _header(header_df, table_df)


def _check_separator(path: Path) -> None:
    """A header line without commas but with `;`, a tab or `|`: the file uses another separator."""
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as handle:
            header = handle.readline(100_000).strip()
    except OSError:
        return  # pandas reports it
    if "," in header:
        return
    for separator, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'")):
        if separator in header:
            raise DataFileError(
                f"Data file `{path}` separates its fields with {name}, not commas (its header reads as one column, "
                f"{_cut(header)}). Save it as a comma-separated CSV with decimal points (1.5, not 1,5)."
            )


def _check_short_rows(path: Path, table_df: pd.DataFrame) -> None:
    """Refuse rows with fewer fields than the header, as rows with more are refused.

    pandas fills missing trailing fields with NaN, which would turn a cut-off row into a failed
    run; an empty field (`1,2,,`) is the way to write a missing value.
    """
    if table_df.shape[1] < 2 or not table_df.iloc[:, -1].isna().any():
        return
    width = table_df.shape[1]
    with path.open(newline="", encoding="utf-8-sig") as handle:
        records = (r for r in csv.reader(handle) if r)  # pandas skips blank lines too
        next(records, None)  # the header
        for row, fields in enumerate(records, start=2):
            if len(fields) < width:
                raise DataFileError(
                    f"Data file `{path}`, row {row}: {len(fields)} field(s), but the header has {width} names. Give "
                    "every row as many comma-separated fields as the header; leave a field empty (as in `1,2,,`) "
                    "for a missing value."
                )


def _cut(text: str, limit: int = 60) -> str:
    """`text` quoted for a message, cut to about `limit` characters (`data` does not depend on `design`)."""
    return repr(text) if len(text) <= limit else f"{text[: limit - 4]!r}... ({len(text):,} characters)"


def _read_excel(path: Path, sheet: str | int) -> tuple[pd.DataFrame, list[str]]:
    try:
        table_df = pd.read_excel(path, sheet_name=sheet)
        header_df = pd.read_excel(path, sheet_name=sheet, header=None, nrows=1, dtype=str)
    except ImportError as error:
        raise DataFileError(
            f"Data file `{path}` needs an Excel reader that is not installed ({error}). "
            "Save it as .xlsx or .csv, or install the package named."
        ) from None
    except Exception as error:  # pandas, openpyxl and zipfile each raise their own types
        raise DataFileError(
            f"Data file `{path}` could not be read as an Excel workbook "
            f"({type(error).__name__}: {error}). Check the sheet name, or save the table "
            "again from Excel."
        ) from None
    if header_df.empty:
        raise DataFileError(f"Data file `{path}` is empty. Write a header row and at least one data row.")
    return table_df, _header(header_df, table_df)


def _header(header_df: pd.DataFrame, table_df: pd.DataFrame) -> list[str]:
    """Column names as written in the file (pandas renames repeats to `name.1`)."""
    raw = header_df.iloc[0].tolist() if len(header_df) else []
    if len(raw) != len(table_df.columns):
        return [str(name) for name in table_df.columns]
    return [name if isinstance(name, str) else str(column) for name, column in zip(raw, table_df.columns, strict=True)]
