"""Tables written for spreadsheets: CSV or Excel, with text cells that a spreadsheet would run as formulas escaped."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import pandas as pd

from design.errors import InputError

# A cell starting with one of these may be read as a formula by Excel, LibreOffice or Google Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with every text cell that starts like a formula prefixed by `'` (as OWASP advises).

    Numbers (including negative ones) and text that reads as a plain number (`-1.5`) stay as they are.

    Example:
        >>> spreadsheet_safe(pd.DataFrame({"a": ["=1+2", "-3", "x"]}))["a"].tolist()
        ["'=1+2", '-3', 'x']
    """
    out = df.copy()
    for column in out.columns[[not pd.api.types.is_numeric_dtype(t) for t in out.dtypes]]:
        out[column] = out[column].map(_escaped)
    out.columns = [_escaped(c) for c in out.columns]
    return out


def check_output(target: Path | None) -> None:
    """Refuse, before any work is done, an output file whose folder does not exist or that is a folder."""
    if target is None:
        return
    if target.is_dir():
        raise InputError(f"{target}: is a folder. Give a file name to write, e.g. {target / 'out.csv'}.")
    if not target.parent.is_dir():
        raise InputError(f"{target}: the folder {target.parent} does not exist. Create it first, or write elsewhere.")


def write_table(df: pd.DataFrame, target: Path | IO[str]) -> None:
    """Write `df` without its index as CSV, or as an Excel workbook if `target` ends in `.xlsx`."""
    safe = spreadsheet_safe(df)
    if isinstance(target, Path) and target.suffix.lower() == ".xlsx":
        safe.to_excel(target, index=False)
    else:
        safe.to_csv(target, index=False)


def _escaped(value: object) -> object:
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value
