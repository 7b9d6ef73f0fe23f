"""Tests for checking tables of designs: clean types out, and messages that name row and column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from design import (
    CategoricalParameter,
    ContinuousParameter,
    InputError,
    IntegerParameter,
    SearchSpace,
    validate_designs,
)


def make_space() -> SearchSpace:
    return SearchSpace(
        [
            ContinuousParameter(name="size", bounds=(20, 200)),
            IntegerParameter(name="layers", bounds=(1, 5)),
            CategoricalParameter(name="ligand", values=["none", "antiCD3"]),
            ContinuousParameter(name="dose", bounds=(1, 100), log=True),
        ],
        ["size + 10 * layers <= 200"],
    )


def table() -> pd.DataFrame:
    """Three valid rows labelled 2, 3, 4 (lines of a CSV file), as read from text (object columns)."""
    return pd.DataFrame(
        {
            "size": ["20", "110.5", "150"],
            "layers": ["1", "3", "5"],
            "ligand": ["none", "antiCD3", "none"],
            "dose": ["1", "10", "100"],
        },
        index=[2, 3, 4],
        dtype=object,
    )


def _with(column: str, row: int, value) -> pd.DataFrame:
    df = table()
    df.loc[row, column] = value
    return df


def failure(df: pd.DataFrame) -> str:
    with pytest.raises(InputError) as raised:
        validate_designs(make_space(), df, "runs.csv")
    return str(raised.value)


def test_valid_table_comes_back_typed_in_order():
    clean, warnings = validate_designs(make_space(), table().assign(extra="ignored"), "runs.csv")
    assert warnings == []
    assert list(clean.columns) == ["size", "layers", "ligand", "dose"]
    assert list(clean.index) == [2, 3, 4]
    assert clean["size"].dtype == float and clean["size"].tolist() == [20.0, 110.5, 150.0]
    assert np.issubdtype(clean["layers"].dtype, np.integer) and clean["layers"].tolist() == [1, 3, 5]
    assert clean["ligand"].tolist() == ["none", "antiCD3", "none"]
    assert clean["dose"].tolist() == [1.0, 10.0, 100.0]


def test_whole_floats_in_an_integer_column_and_padded_categories_are_accepted():
    df = _with("layers", 3, 2.0)
    df.loc[4, "ligand"] = " antiCD3 "
    clean, _ = validate_designs(make_space(), df, "runs.csv")
    assert clean.loc[3, "layers"] == 2
    assert clean.loc[4, "ligand"] == "antiCD3"


def test_missing_column():
    message = failure(table().drop(columns="ligand"))
    assert message.startswith("runs.csv: column 'ligand' is missing")
    assert "size, layers, ligand, dose" in message


def test_empty_cell():
    assert failure(_with("size", 3, np.nan)).startswith("runs.csv, row 3, column 'size': is empty")
    assert failure(_with("ligand", 4, "")).startswith("runs.csv, row 4, column 'ligand': is empty")
    assert failure(_with("layers", 2, None)).startswith("runs.csv, row 2, column 'layers': is empty")


def test_text_in_a_number_column():
    message = failure(_with("dose", 4, "ten"))
    assert message == "runs.csv, row 4, column 'dose': 'ten' is not a number. Enter a number."


def test_infinite_number():
    assert "row 3, column 'size': inf is infinite or too large" in failure(_with("size", 3, np.inf))


def test_value_out_of_bounds():
    message = failure(_with("size", 3, "250"))
    assert message.startswith("runs.csv, row 3, column 'size': 250 is outside the bounds [20, 200].")
    assert "widen the bounds" in message
    assert "column 'dose': 0.5 is outside the bounds [1, 100]" in failure(_with("dose", 2, 0.5))


def test_non_integer_in_an_integer_column():
    message = failure(_with("layers", 4, "2.5"))
    assert message == "runs.csv, row 4, column 'layers': 2.5 is not a whole number. Enter an integer."


def test_unknown_category():
    message = failure(_with("ligand", 3, "antiCD4"))
    assert message.startswith("runs.csv, row 3, column 'ligand': 'antiCD4' is not one of ['none', 'antiCD3'].")
    assert "Fix the spelling" in message


def test_the_first_bad_row_is_named():
    df = table()
    df.loc[3, "size"] = "x"
    df.loc[4, "size"] = "y"
    assert "row 3" in failure(df)


def test_row_breaking_a_constraint_is_kept_with_a_warning():
    df = table()
    df.loc[4, ["size", "layers"]] = ["190", "5"]  # 190 + 50 > 200
    clean, warnings = validate_designs(make_space(), df, "runs.csv")
    assert len(clean) == 3
    assert warnings == [
        "runs.csv, row 4: breaks the constraint 'size + 10 * layers <= 200'; kept, since it was measured."
    ]


def test_a_row_exactly_on_the_constraint_gives_no_warning():
    df = table()
    df.loc[4, ["size", "layers"]] = ["150", "5"]  # 150 + 50 == 200
    assert validate_designs(make_space(), df, "runs.csv")[1] == []
