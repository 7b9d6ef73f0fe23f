"""The `System` record and the helpers every bundled simulator shares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from data.constraints import parse_constraint

Simulate = Callable[[pd.DataFrame, "np.random.Generator | None"], pd.DataFrame]

# Designs that come back from an optimizer may sit a rounding error outside the box.
_BOUND_TOLERANCE = 1e-9


@dataclass(frozen=True)
class System:
    """A bundled system: a simulator plus the campaign config that describes it.

    Attributes:
        name: Short identifier, as accepted by `get_system`.
        description: One paragraph for people: what is simulated and where it comes from.
        config: A campaign config dict (parameters, constraints, objectives, safety,
            surrogate), in the schema the campaign layer validates.
        simulate: `simulate(designs_df, rng)` takes a DataFrame with one column per
            parameter (user units; categorical values as strings) and returns a new
            DataFrame with the same index holding only the outcome columns. `rng=None`
            gives the noise-free (true) values; a generator adds measurement noise.
        best_safe_value: Optimum of the noise-free objective over the box, the linear
            constraints and the safety limits, in objective units.

    Example:
        >>> from data import get_system, sample_designs
        >>> system = get_system("gardner")
        >>> designs_df = sample_designs(system.config, 4, np.random.default_rng(0))
        >>> outcomes_df = system.simulate(designs_df, None)
    """

    name: str
    description: str
    config: dict[str, Any]
    simulate: Simulate
    best_safe_value: float

    @property
    def objective(self) -> str:
        """Name of the (first) objective outcome."""
        return self.config["objectives"][0]["name"]

    @property
    def maximize(self) -> bool:
        """Whether the objective is maximized (else minimized)."""
        return self.config["objectives"][0]["goal"] == "maximize"

    def at_confidence(self, confidence: float) -> System:
        """The same system with every safety limit's confidence set to `confidence`."""
        return self.with_config(safety=[{**limit, "confidence": confidence} for limit in self.config.get("safety", [])])

    def with_config(self, **changes: Any) -> System:
        """The same system with these top-level config entries set (e.g. `safety_mode="safe_set"`)."""
        return replace(self, config={**self.config, **changes})


def parameter_arrays(designs_df: pd.DataFrame, config: dict[str, Any]) -> dict[str, np.ndarray]:
    """Check designs against the parameter box and return one numpy array per parameter.

    Continuous and integer parameters come back as float arrays (integers rounded to the
    nearest whole number); categorical and sequence ones as arrays of strings.

    Args:
        designs_df: A DataFrame with one column per parameter of `config`; extra columns
            are ignored.
        config: A campaign config dict.

    Returns:
        A dict mapping each parameter name to an `n`-long numpy array.

    Raises:
        ValueError: If a column is missing, holds a missing or non-numeric value, a value
            outside the bounds, a category the config does not list, or a sequence of the wrong
            length or with a letter outside its alphabet.
    """
    names = [p["name"] for p in config["parameters"]]
    missing = [name for name in names if name not in designs_df.columns]
    if missing:
        raise ValueError(
            f"`designs_df` must have a column for every parameter {names}. "
            f"Got no column {missing} instead. Add the missing columns."
        )
    arrays: dict[str, np.ndarray] = {}
    for parameter in config["parameters"]:
        name = parameter["name"]
        if parameter["type"] == "categorical":
            values = designs_df[name].astype(str).to_numpy()
            unknown = sorted(set(values) - set(parameter["values"]))
            if unknown:
                raise ValueError(
                    f"`{name}` must be one of {parameter['values']}. Got {unknown!r} instead. "
                    "Use one of the listed categories."
                )
            arrays[name] = values
            continue
        if parameter["type"] == "sequence":
            arrays[name] = _sequences(designs_df[name], parameter)
            continue
        values = pd.to_numeric(designs_df[name], errors="coerce").to_numpy(dtype=float)
        low, high = parameter["bounds"]
        tolerance = _BOUND_TOLERANCE * max(1.0, abs(low), abs(high))
        bad = np.isnan(values) | (values < low - tolerance) | (values > high + tolerance)
        if bad.any():
            raise ValueError(
                f"`{name}` must be a number in [{low}, {high}]. "
                f"Got {designs_df[name].to_numpy()[bad][0]!r} instead. "
                "Keep every design inside the parameter bounds."
            )
        values = np.clip(values, low, high)
        arrays[name] = np.round(values) if parameter["type"] == "integer" else values
    return arrays


def _sequences(col: pd.Series, parameter: dict[str, Any]) -> np.ndarray:
    """The strings of a sequence column, each of the parameter's length and alphabet."""
    name, alphabet, length = parameter["name"], parameter["alphabet"], parameter["length"]
    values = col.astype(str).str.strip().to_numpy()
    for row, s in zip(col.index, values, strict=True):
        if len(s) != length or not set(s) <= set(alphabet):
            raise ValueError(
                f"`{name}` must be {length} letters of {alphabet!r}. Got {s!r} (row {row}) instead. Fix the sequence."
            )
    return values


def satisfies_constraints(designs_df: pd.DataFrame, config: dict[str, Any]) -> np.ndarray:
    """Return an `n`-long boolean array: does each design meet every linear constraint?

    Args:
        designs_df: Designs with one column per parameter.
        config: A campaign config dict whose `constraints` are strings such as
            `"peg_pct + 0.1 * zeta_mV <= 8"`.

    Returns:
        A boolean numpy array, `True` where all constraints hold.
    """
    names = [p["name"] for p in config["parameters"]]
    mask = np.ones(len(designs_df), dtype=bool)
    for text in config.get("constraints", []):
        constraint = parse_constraint(text, names)  # parsed, never evaluated: a config cannot run code
        mask &= constraint.residual(designs_df) <= constraint.tolerance()
    return mask


def is_safe(outcomes_df: pd.DataFrame, config: dict[str, Any]) -> np.ndarray:
    """Return an `n`-long boolean array: do the outcomes meet every safety limit?

    Args:
        outcomes_df: Outcomes as returned by a system's `simulate`.
        config: A campaign config dict with a `safety` list of limits.

    Returns:
        A boolean numpy array, `True` where every limit holds (the `confidence` of a
        limit plays no part here: these are the outcome values themselves).
    """
    mask = np.ones(len(outcomes_df), dtype=bool)
    for limit in config.get("safety", []):
        values = outcomes_df[limit["name"]].to_numpy(dtype=float)
        if "upper" in limit:
            mask &= values <= limit["upper"]
        if "lower" in limit:
            mask &= values >= limit["lower"]
    return mask


def sample_designs(config: dict[str, Any], n: int, rng: np.random.Generator, max_tries: int = 100) -> pd.DataFrame:
    """Draw `n` designs uniformly from the box, keeping those that meet the constraints.

    Continuous parameters are uniform (log-uniform where `"log": True`), integers uniform
    over the whole numbers in their bounds, categories uniform over their values, sequences
    uniform letters at every position.

    Args:
        config: A campaign config dict.
        n: Number of designs wanted.
        rng: The random generator to draw from.
        max_tries: Give up after this many rounds of rejection sampling.

    Returns:
        A DataFrame with `n` rows and one column per parameter, index `0..n-1`.

    Raises:
        ValueError: If the constraints reject (almost) every design in the box.
    """
    kept: list[pd.DataFrame] = []
    total = 0
    for _ in range(max_tries):
        batch_df = _sample_box(config, max(2 * n, 64), rng)
        batch_df = batch_df[satisfies_constraints(batch_df, config)]
        kept.append(batch_df)
        total += len(batch_df)
        if total >= n:
            return pd.concat(kept).iloc[:n].reset_index(drop=True)
    raise ValueError(
        f"The constraints {config.get('constraints')} must leave part of the box feasible. "
        f"Got {total} feasible designs out of {max_tries} rounds instead. Loosen them."
    )


def _sample_box(config: dict[str, Any], n: int, rng: np.random.Generator) -> pd.DataFrame:
    columns: dict[str, Any] = {}
    for parameter in config["parameters"]:
        if parameter["type"] == "categorical":
            columns[parameter["name"]] = rng.choice(np.asarray(parameter["values"]), size=n)
            continue
        if parameter["type"] == "sequence":  # uniform letters at every position
            letters = np.asarray(list(parameter["alphabet"]))[
                rng.integers(0, len(parameter["alphabet"]), size=(n, parameter["length"]))
            ]
            columns[parameter["name"]] = ["".join(row) for row in letters]
            continue
        low, high = parameter["bounds"]
        if parameter["type"] == "integer":
            columns[parameter["name"]] = rng.integers(int(low), int(high) + 1, size=n)
        elif parameter.get("log", False):
            columns[parameter["name"]] = np.exp(rng.uniform(np.log(low), np.log(high), size=n))
        else:
            columns[parameter["name"]] = rng.uniform(low, high, size=n)
    return pd.DataFrame(columns)
