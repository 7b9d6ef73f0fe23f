"""Linear constraints on parameters, parsed from strings like `"peg_pct + 0.1 * zeta_mV <= 8"`."""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from data.messages import shown

_OPS = {ast.LtE: "<=", ast.GtE: ">=", ast.Eq: "=="}
MAX_CHARS = 100_000  # a longer constraint is refused before it is parsed


@dataclass(frozen=True)
class LinearConstraint:
    """`sum(coefficients[name] * x[name]) <op> rhs`, with op one of `<=`, `>=`, `==`."""

    coefficients: dict[str, float]
    op: str
    rhs: float
    text: str

    def residual(self, df: pd.DataFrame) -> np.ndarray:
        """Signed violation per row: `> 0` means broken (for `==`, the absolute gap)."""
        lhs = sum(c * df[name].to_numpy(dtype=float) for name, c in self.coefficients.items())
        gap = np.asarray(lhs, dtype=float) - self.rhs
        if self.op == "<=":
            return gap
        if self.op == ">=":
            return -gap
        return np.abs(gap)

    def tolerance(self) -> float:
        """Slack allowed for floating-point round-off when checking the constraint."""
        return 1e-9 * max(1.0, abs(self.rhs), *(abs(c) for c in self.coefficients.values()))


def parse_constraint(text: str, names: list[str]) -> LinearConstraint:
    """Parse a linear constraint over the parameter `names`.

    Example:
        >>> parse_constraint("a + 2 * b <= 1", ["a", "b"]).coefficients
        {'a': 1.0, 'b': 2.0}
    """
    if not isinstance(text, str):
        raise ValueError(_msg(text, "is not text"))
    if len(text) > MAX_CHARS:
        raise ValueError(_msg(text, f"is longer than {MAX_CHARS:,} characters"))
    try:
        tree = ast.parse(text, mode="eval").body
        if not (isinstance(tree, ast.Compare) and len(tree.ops) == 1 and type(tree.ops[0]) in _OPS):
            raise ValueError(_msg(text, "must have exactly one of <=, >= or =="))
        left = _linear(tree.left, names, text)
        right = _linear(tree.comparators[0], names, text)
    except SyntaxError:
        raise ValueError(_msg(text, "is not a valid expression")) from None
    except (RecursionError, MemoryError, OverflowError):
        raise ValueError(_msg(text, "is nested too deeply or holds a number too large")) from None
    coefficients = dict(left)
    for name, c in right.items():
        coefficients[name] = coefficients.get(name, 0.0) - c
    rhs = -coefficients.pop("", 0.0)
    coefficients = {k: v for k, v in coefficients.items() if v != 0.0}
    if not coefficients:
        raise ValueError(_msg(text, "names no parameter"))
    if not all(math.isfinite(v) for v in [rhs, *coefficients.values()]):
        raise ValueError(_msg(text, "has a number too large to compute with (beyond +-1.8e308)"))
    return LinearConstraint(coefficients, _OPS[type(tree.ops[0])], rhs, text)


def _linear(node: ast.expr, names: list[str], text: str) -> dict[str, float]:
    """Coefficients of a linear expression; the constant term is stored under `""`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return {"": float(node.value)}
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise ValueError(_msg(text, f"names {node.id!r}, which is not a parameter ({names})"))
        return {node.id: 1.0}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
        return {k: sign * v for k, v in _linear(node.operand, names, text).items()}
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
        # `a + b - c + ...` nests to the left: walk it in a loop, so that long sums do not recurse.
        terms = []
        while isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
            terms.append((1.0 if isinstance(node.op, ast.Add) else -1.0, node.right))
            node = node.left
        total = dict(_linear(node, names, text))  # dicts keep the order the user wrote
        for sign, term in reversed(terms):
            for k, v in _linear(term, names, text).items():
                total[k] = total.get(k, 0.0) + sign * v
        return total
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult | ast.Div):
        a, b = _linear(node.left, names, text), _linear(node.right, names, text)
        a_const, b_const = set(a) == {""}, set(b) == {""}
        if isinstance(node.op, ast.Mult) and (a_const or b_const):
            scale, expr = (a[""], b) if a_const else (b[""], a)
            return {k: scale * v for k, v in expr.items()}
        if isinstance(node.op, ast.Div) and b_const and b[""] != 0:
            return {k: v / b[""] for k, v in a.items()}
    raise ValueError(_msg(text, "is not linear in the parameters"))


def _msg(text: object, problem: str) -> str:
    return (
        f"constraint {shown(text, 120)} {problem}. Write it as a sum of number * parameter terms compared "
        "with <=, >= or ==, e.g. 'a + 0.5 * b <= 10'."
    )
