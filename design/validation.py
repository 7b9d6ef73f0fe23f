"""Checks a table of designs against a search space, with messages that name row and column."""

from __future__ import annotations

import numpy as np
import pandas as pd

from design.errors import InputError
from design.parameters import CategoricalParameter, IntegerParameter
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
            bounds, a non-integer in an integer column or an unknown category.
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
                    f"{values[row]!r} is not one of {list(p.values)}",
                    "Fix the spelling or add the value to the parameter's list in the config.",
                )
            out[p.name] = values
            continue
        numbers = pd.to_numeric(col, errors="coerce")
        bad = numbers.isna() | ~np.isfinite(numbers.astype(float))
        if bad.any():
            row = col.index[bad.argmax()]
            _fail(source, row, p.name, f"{col[row]!r} is not a number", "Enter a number.")
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


def _fail(source: str, row: object, column: str, problem: str, fix: str) -> None:
    raise InputError(f"{source}, row {row}, column {column!r}: {problem}. {fix}")
