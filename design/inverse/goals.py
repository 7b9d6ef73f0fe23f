"""Goals of an inverse design: objectives and outcome constraints, parsed from short strings.

Syntax (one goal per string; spaces are ignored):

- `"friction_coeff=min"`, `"yield=max"`: minimize or maximize an outcome;
- `"x=target:3.0±0.1"` (or `"x=target:3.0+-0.1"`): bring an outcome to 3.0, met within 0.1;
  without `±tol` the tolerance is 5 % of `|target|` (or 0.05 when the target is 0);
- `"load>=50"`, `"temperature<=80"`: an outcome constraint;
- an optional weight after `@`, e.g. `"cost=min@0.5"` (objectives only; default 1).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

from design.errors import InputError
from design.goals import Objective, SafetyLimit

if TYPE_CHECKING:
    from torch import Tensor

GoalKind = Literal["minimize", "maximize", "target", ">=", "<="]
_DEFAULT_RELATIVE_TOLERANCE = 0.05
_NAME = r"[A-Za-z_][A-Za-z0-9_.]*"
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_OBJECTIVE = re.compile(rf"^({_NAME})=(min|max|minimize|maximize)(?:@({_NUMBER}))?$")
_TARGET = re.compile(rf"^({_NAME})=target:({_NUMBER})(?:(?:±|\+-|\+/-)({_NUMBER}))?(?:@({_NUMBER}))?$")
_BOUND = re.compile(rf"^({_NAME})(>=|<=)({_NUMBER})$")


@dataclass(frozen=True)
class Goal:
    """One thing wanted of an outcome.

    Attributes:
        name: The outcome.
        kind: `minimize`, `maximize`, `target`, `>=` or `<=`.
        value: The target value or the bound (None for min/max); in a batch of targets
            (`batch.rows_of`) a tensor of one value per design.
        tolerance: For a target, how close counts as met (a tensor like `value` in a batch).
        weight: Weight of an objective in the weighted sum.
    """

    name: str
    kind: GoalKind
    value: float | Tensor | None = None
    tolerance: float | Tensor | None = None
    weight: float = 1.0

    @property
    def is_constraint(self) -> bool:
        return self.kind in (">=", "<=")

    @property
    def label(self) -> str:
        """A short column-friendly description, e.g. `load>=50` or `x=target:3±0.1`."""
        if self.kind in ("minimize", "maximize"):
            return f"{self.name}={self.kind[:3]}"
        if self.kind == "target":
            return f"{self.name}=target:{self.value:g}±{self.tolerance:g}"
        return f"{self.name}{self.kind}{self.value:g}"

    def met(self, y: Any) -> Any:
        """Whether outcome values `y` (a float, numpy array or tensor) meet the goal; min/max always do."""
        if self.kind == ">=":
            return y >= self.value
        if self.kind == "<=":
            return y <= self.value
        if self.kind == "target":
            return abs(y - self.value) <= self.tolerance
        return y == y  # noqa: PLR0124 - True where defined (False for NaN)


def parse_goal(text: str) -> Goal:
    """Parse one goal string (see the module docstring for the syntax).

    Raises:
        InputError: If the string matches none of the forms.

    Example:
        >>> parse_goal("x=target:3.0±0.1")
        Goal(name='x', kind='target', value=3.0, tolerance=0.1, weight=1.0)
    """
    s = re.sub(r"\s+", "", str(text))
    if m := _OBJECTIVE.match(s):
        kind: GoalKind = "minimize" if m.group(2).startswith("min") else "maximize"
        return Goal(m.group(1), kind, weight=_weight(m.group(3), text))
    if m := _TARGET.match(s):
        value = float(m.group(2))
        tol = float(m.group(3)) if m.group(3) else _default_tolerance(value)
        if tol <= 0:
            raise InputError(
                f"goal {text!r}: the tolerance must be > 0. Got {tol:g} instead. Write e.g. 'x=target:3±0.1'."
            )
        return Goal(m.group(1), "target", value, tol, _weight(m.group(4), text))
    if m := _BOUND.match(s):
        return Goal(m.group(1), cast(GoalKind, m.group(2)), float(m.group(3)))  # the pattern allows only >= and <=
    raise InputError(
        f"goal {text!r} is not understood. Expected 'name=min', 'name=max', 'name=target:3.0±0.1', "
        "'name>=50' or 'name<=50' (optionally '@weight' after an objective). Rewrite it in one of these forms."
    )


def as_goals(goals: Iterable[str | Goal | Objective | SafetyLimit] | dict[str, Any]) -> list[Goal]:
    """Turn strings, `Goal`s, campaign `Objective`s / `SafetyLimit`s or a campaign config dict into goals.

    A config dict contributes its `objectives` and its `safety` limits (as constraints on the
    predicted mean; their `confidence` is handled by the uncertainty penalty of the optimizer).

    Raises:
        InputError: On an unknown goal, or if there is no objective and no constraint at all.
    """
    if isinstance(goals, dict):
        items: list[Any] = [Objective(**o) for o in goals.get("objectives", [])]
        items += [SafetyLimit(**s) for s in goals.get("safety", [])]
    else:
        items = list(goals)
    out: list[Goal] = []
    for item in items:
        if isinstance(item, Goal):
            out.append(item)
        elif isinstance(item, Objective):
            tol = None if item.target is None else _default_tolerance(item.target)
            out.append(Goal(item.name, item.goal, item.target, tol))
        elif isinstance(item, SafetyLimit):
            if item.lower is not None:
                out.append(Goal(item.name, ">=", item.lower))
            if item.upper is not None:
                out.append(Goal(item.name, "<=", item.upper))
        elif isinstance(item, str):
            out.append(parse_goal(item))
        else:
            raise InputError(f"goals must be strings, Goal, Objective or SafetyLimit. Got {item!r} instead.")
    if not out:
        raise InputError("goals must hold at least one objective or constraint. Got none. Add e.g. 'y=min'.")
    return out


def outcome_names(goals: Sequence[Goal]) -> list[str]:
    """The outcomes the goals mention, each once, in order of first mention."""
    return list(dict.fromkeys(g.name for g in goals))


def _default_tolerance(value: float) -> float:
    return _DEFAULT_RELATIVE_TOLERANCE * abs(value) if value != 0 else _DEFAULT_RELATIVE_TOLERANCE


def _weight(text: str | None, goal: str) -> float:
    if text is None:
        return 1.0
    w = float(text)
    if w <= 0:
        raise InputError(f"goal {goal!r}: the weight must be > 0. Got {w:g} instead.")
    return w
