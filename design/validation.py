"""Checks a table of designs against a search space, with messages that name row and column."""

from __future__ import annotations

import numpy as np
import pandas as pd

from design.errors import InputError, shown
from design.parameters import CategoricalParameter, IntegerParameter, SequenceParameter
from design.space import SearchSpace


def validate_designs(space: SearchSpace, df: pd.DataFrame, source: str) -> tuple[pd.DataFrame, list[str]]:
    """Check and type the parameter columns of `df`.

    Rows are named by the DataFrame's index label (the campaign sets it to the line number
    in the file, the header being line 1).

    Returns:
        The parameter columns with clean dtypes, and warnings about rows that break a linear
        constraint (such rows were measured, so they are kept).

    Raises:
        InputError: on a missing column, an empty cell, text in a number column, a value out of
            bounds, a non-integer in an integer column, an unknown category, or a sequence of the
            wrong length or with a letter outside its alphabet.
    """
    missing = [n for n in space.names if n not in df.columns]
    if missing:
        raise InputError(
            f"{source}: column {missing[0]!r} is missing. Add a column for every parameter ({', '.join(space.names)})."
        )
    out = {}
    for p in space.parameters:
        col = df[p.name]
        empty = col.isna() | (col.astype(str).str.strip() == "")
        if empty.any():
            _fail(source, col.index[empty.argmax()], p.name, "is empty", "Fill in the value or drop the row.")
        if isinstance(p, CategoricalParameter):
            values = col.astype(str).str.strip()
            bad = ~values.isin(p.values)
            if bad.any():
                row = values.index[bad.argmax()]
                _fail(
                    source,
                    row,
                    p.name,
                    f"{shown(values[row])} is not one of {shown(list(p.values), 200)}",
                    "Fix the spelling or add the value to the parameter's list in the config.",
                )
            out[p.name] = values
            continue
        if isinstance(p, SequenceParameter):
            out[p.name] = _sequences(col, p, source)
            continue
        numbers, text = to_numbers(col)
        bad = text | ~np.isfinite(numbers)
        if bad.any():
            row = col.index[bad.argmax()]
            _fail(source, row, p.name, not_a_number(col[row]), "Enter a number.")
        low, high = p.bounds
        bad = (numbers < low) | (numbers > high)
        if bad.any():
            row = numbers.index[bad.argmax()]
            _fail(
                source,
                row,
                p.name,
                f"{numbers[row]:g} is outside the bounds [{low:g}, {high:g}]",
                "Fix the value, or widen the bounds in the config if it is right.",
            )
        if isinstance(p, IntegerParameter):
            bad = numbers != np.round(numbers)
            if bad.any():
                row = numbers.index[bad.argmax()]
                _fail(source, row, p.name, f"{numbers[row]:g} is not a whole number", "Enter an integer.")
            numbers = numbers.astype(int)
        out[p.name] = numbers.astype(float) if not isinstance(p, IntegerParameter) else numbers
    clean = pd.DataFrame(out, index=df.index)
    warnings = []
    for c in space.constraints:
        broken = c.residual(clean) > c.tolerance()
        for row in clean.index[broken]:
            warnings.append(f"{source}, row {row}: breaks the constraint {c.text!r}; kept, since it was measured.")
    return clean, warnings


def _sequences(col: pd.Series, p: SequenceParameter, source: str) -> pd.Series:
    """The cells of a sequence column as strings, each of `p.length` letters of `p.alphabet`."""
    values = col.astype(str).str.strip()
    letters = set(p.alphabet)
    for row, s in values.items():
        unknown = [c for c in s if c not in letters]
        if not unknown and len(s) == p.length:
            continue
        fix = "Fix the sequence, or the parameter's alphabet and length in the config."
        if s.upper() != s and all(c in letters for c in s.upper()):
            fix = f"Letters are case-sensitive: write {shown(s.upper())}."
        problem = (
            f"{shown(s, 60)} has the letter {shown(unknown[0])}, which is not in the alphabet {shown(p.alphabet)}"
            if unknown
            else f"{shown(s, 60)} has {len(s)} letters; {p.name} has length {p.length}"
        )
        _fail(source, row, p.name, problem, fix)
    return values


def to_numbers(col: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """The cells of `col` as floats (empty cells NaN), and the mask of non-empty cells that are not numbers.

    A number is an int or float, or text that reads as one (` 2.5 `, `1e-3`); booleans, dates and
    other objects are not numbers. Too large a number reads as +-inf.
    """
    dtype = col.dtype
    numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    if numeric and not pd.api.types.is_complex_dtype(dtype):
        return col.astype(float), np.zeros(len(col), dtype=bool)
    values = [_number(v) for v in col.astype(object)]
    numbers = pd.Series([np.nan if v is None else v for v in values], index=col.index, dtype=float)
    return numbers, np.array([v is None for v in values], dtype=bool)


def not_a_number(value: object) -> str:
    """Why a cell is not a usable number, for a message."""
    if isinstance(value, bool | np.bool_):
        return f"{value} is a yes/no value, not a number"
    number = _number(value)
    if number is not None and number == number:
        return f"{shown(value)} is infinite or too large (beyond +-1.8e308)"
    return f"{shown(value)} is not a number"


def _number(value: object) -> float | None:
    """A cell as a float (NaN if empty), or None if it is not a number."""
    if value is None or value is pd.NA or value is pd.NaT:
        return np.nan
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | np.integer):
        try:
            return float(value)
        except OverflowError:
            return float("inf") if value > 0 else float("-inf")
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return np.nan
        try:
            return float(text)
        except ValueError:
            return None
    return None


def _fail(source: str, row: object, column: str, problem: str, fix: str) -> None:
    raise InputError(f"{source}, row {row}, column {shown(column)}: {problem}. {fix}")
