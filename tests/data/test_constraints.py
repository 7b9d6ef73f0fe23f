"""Tests for parsing linear constraints and checking designs against them."""

from __future__ import annotations

import pandas as pd
import pytest

from data import satisfies_constraints
from data.constraints import parse_constraint

NAMES = ["a", "b", "c"]


def parsed(text: str) -> tuple[dict[str, float], str, float]:
    c = parse_constraint(text, NAMES)
    return c.coefficients, c.op, c.rhs


def test_coefficients_and_rhs():
    assert parsed("a + 2 * b <= 1") == ({"a": 1.0, "b": 2.0}, "<=", 1.0)
    assert parsed("0.5 * a - b * 3 <= -2.5") == ({"a": 0.5, "b": -3.0}, "<=", -2.5)
    assert parsed("-a + +b <= 0") == ({"a": -1.0, "b": 1.0}, "<=", 0.0)


def test_greater_equal_and_equality():
    assert parsed("a + b >= 4") == ({"a": 1.0, "b": 1.0}, ">=", 4.0)
    assert parsed("a + b + c == 100") == ({"a": 1.0, "b": 1.0, "c": 1.0}, "==", 100.0)


def test_constants_and_parameters_on_both_sides():
    assert parsed("a + 1 <= b + 3") == ({"a": 1.0, "b": -1.0}, "<=", 2.0)
    assert parsed("3 <= a") == ({"a": -1.0}, "<=", -3.0)  # i.e. a >= 3
    assert parsed("2 * a - 4 >= c - 1 + a") == ({"a": 1.0, "c": -1.0}, ">=", 3.0)


def test_division_and_parentheses():
    assert parsed("a / 4 + b <= 2") == ({"a": 0.25, "b": 1.0}, "<=", 2.0)
    assert parsed("2 * (a - b) / 8 <= 1") == ({"a": 0.25, "b": -0.25}, "<=", 1.0)
    assert parsed("(a + 2) * 3 <= 12") == ({"a": 3.0}, "<=", 6.0)


def test_terms_that_cancel_are_dropped_and_order_is_kept():
    c = parse_constraint("b + a - b + 2 * c <= 1", NAMES)
    assert c.coefficients == {"a": 1.0, "c": 2.0}
    assert list(parse_constraint("c + a <= 1", NAMES).coefficients) == ["c", "a"]


def test_text_is_kept():
    assert parse_constraint("a+b<=1", NAMES).text == "a+b<=1"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a * b <= 1", "is not linear"),
        ("a / b <= 1", "is not linear"),
        ("1 / a <= 1", "is not linear"),
        ("a ** 2 <= 1", "is not linear"),
        ("a / 0 <= 1", "is not linear"),
        ("abs(a) <= 1", "is not linear"),
        ("a + d <= 1", "names 'd', which is not a parameter"),
        ("a + b", "must have exactly one of <=, >= or =="),
        ("a < 1", "must have exactly one of <=, >= or =="),
        ("0 <= a <= 1", "must have exactly one of <=, >= or =="),
        ("a + <= 1", "is not a valid expression"),
        ("a - a <= 1", "names no parameter"),
        ("1 <= 2", "names no parameter"),
        ("a + 'x' <= 1", "is not linear"),
    ],
)
def test_errors_name_the_constraint_and_the_problem(text, problem):
    with pytest.raises(ValueError) as raised:
        parse_constraint(text, NAMES)
    message = str(raised.value)
    assert f"constraint {text!r}" in message
    assert problem in message
    assert "e.g. 'a + 0.5 * b <= 10'" in message  # says how to write it


def test_residual_is_the_signed_violation():
    df = pd.DataFrame({"a": [1.0, 3.0], "b": [1.0, 1.0]})
    assert parse_constraint("a + b <= 3", NAMES).residual(df).tolist() == [-1.0, 1.0]
    assert parse_constraint("a + b >= 3", NAMES).residual(df).tolist() == [1.0, -1.0]
    assert parse_constraint("a + b == 3", NAMES).residual(df).tolist() == [1.0, 1.0]


def test_tolerance_scales_with_the_numbers():
    assert parse_constraint("a <= 1", NAMES).tolerance() == pytest.approx(1e-9)
    assert parse_constraint("a + 500 * b <= 10", NAMES).tolerance() == pytest.approx(5e-7)
    assert parse_constraint("a <= 2000", NAMES).tolerance() == pytest.approx(2e-6)


def test_a_constraint_in_a_system_config_is_parsed_never_run(tmp_path):
    marker = tmp_path / "ran"
    config = {
        "parameters": [{"name": "a", "type": "continuous", "bounds": [0, 1]}],
        "constraints": [f"__import__('pathlib').Path({str(marker)!r}).touch() <= 1"],
    }
    with pytest.raises(ValueError, match="constraint"):
        satisfies_constraints(pd.DataFrame({"a": [0.5]}), config)
    assert not marker.exists()  # DataFrame.eval would have run it
    config["constraints"] = ["2 * a <= 1"]
    assert satisfies_constraints(pd.DataFrame({"a": [0.4, 0.6]}), config).tolist() == [True, False]
