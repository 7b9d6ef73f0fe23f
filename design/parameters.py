"""The kinds of design parameter a search space is made of, validated with pydantic."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from design.errors import shown


class _Parameter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)


class ContinuousParameter(_Parameter):
    """A real-valued parameter in `[low, high]`, optionally modelled on a log scale."""

    type: Literal["continuous"] = "continuous"
    bounds: tuple[float, float]
    log: bool = False

    @field_validator("bounds", mode="before")
    @classmethod
    def _check_bounds(cls, v: object) -> object:
        return _check_bounds(v)

    @model_validator(mode="after")
    def _check_log(self) -> ContinuousParameter:
        if self.log and self.bounds[0] <= 0:
            raise ValueError(
                f"a log-scaled parameter needs low > 0. Got bounds {list(self.bounds)} instead. "
                "Raise the lower bound or set log: false."
            )
        return self


class IntegerParameter(_Parameter):
    """An integer parameter taking every whole value in `[low, high]`."""

    type: Literal["integer"] = "integer"
    bounds: tuple[int, int]

    @field_validator("bounds", mode="before")
    @classmethod
    def _check_bounds(cls, v: object) -> object:
        v = _check_bounds(v)
        if any(float(b) != int(float(b)) for b in v):
            raise ValueError(f"bounds of an integer parameter must be whole numbers. Got {shown(v)} instead.")
        low, high = (int(float(b)) for b in v)
        if high - low >= MAX_LEVELS:
            raise ValueError(
                f"of an integer parameter may span at most {MAX_LEVELS:,} values. Got {shown(v)} instead. "
                "Declare it continuous (type: continuous) instead."
            )
        return [low, high]


class CategoricalParameter(_Parameter):
    """A parameter taking one of a list of named values (a ligand, a solvent, a supplier)."""

    type: Literal["categorical"] = "categorical"
    values: tuple[str, ...]

    @field_validator("values", mode="before")
    @classmethod
    def _check_values(cls, v: object) -> object:
        if not isinstance(v, list | tuple) or len(v) < 2:
            raise ValueError(f"must be a list of at least two values. Got {shown(v)} instead.")
        values = [str(x) for x in v]
        if len(set(values)) != len(values):
            raise ValueError(f"must not repeat a value. Got {shown(values)} instead.")
        return values


class SequenceParameter(_Parameter):
    """A fixed-length string over an alphabet (a peptide, a DNA strand, a layer stack).

    In the encoded tensor it is a one-hot block of `length * len(alphabet)` columns,
    position-major: column `start + i * A + a` is 1 when letter `a` sits at position `i`.
    Letters are single printable characters other than spaces, commas and quotes (so that a
    sequence reads back from a CSV cell as written); case matters.

    Example:
        >>> SequenceParameter(name="peptide", alphabet="HP", length=4).n_columns
        8
    """

    type: Literal["sequence"] = "sequence"
    alphabet: str
    length: int

    @field_validator("alphabet", mode="before")
    @classmethod
    def _check_alphabet(cls, v: object) -> object:
        if not isinstance(v, str) or len(v) < 2:
            raise ValueError(
                f'must be a string of at least two letters, e.g. "ACDEFGHIKLMNPQRSTVWY". Got {shown(v)} instead.'
            )
        bad = [c for c in v if not c.isprintable() or c.isspace() or c in _NOT_LETTERS]
        if bad:
            raise ValueError(
                f"must hold letters only (no spaces, commas or quotes). Got {shown(bad[0])} in {shown(v)} instead. "
                "Remove it."
            )
        repeated = sorted({c for c in v if v.count(c) > 1})
        if repeated:
            raise ValueError(
                f"must not repeat a letter. Got {shown(v)}, which repeats {shown(''.join(repeated))}. "
                "List each letter once."
            )
        if len(v) > MAX_ALPHABET:
            raise ValueError(f"may have at most {MAX_ALPHABET} letters. Got {len(v)} instead.")
        return v

    @field_validator("length", mode="before")
    @classmethod
    def _check_length(cls, v: object) -> object:
        whole = isinstance(v, int) and not isinstance(v, bool)
        if not whole or not 1 <= v <= MAX_LENGTH:  # type: ignore[operator]
            raise ValueError(
                f"must be a whole number of letters from 1 to {MAX_LENGTH:,}. Got {shown(v)} instead. "
                "Give the sequence's fixed length, e.g. length: 8."
            )
        return v

    @property
    def n_columns(self) -> int:
        return self.length * len(self.alphabet)


Parameter = Annotated[
    ContinuousParameter | IntegerParameter | CategoricalParameter | SequenceParameter, Field(discriminator="type")
]


MIN_WIDTH = 1e-200  # narrower bounds than this (or than 1e-9 of their size) lose the encoding's precision
MAX_LEVELS = 1_000_000  # an integer parameter with more values is better declared continuous
MAX_LENGTH = 1_000  # longest sequence parameter: its one-hot block has length x alphabet columns
MAX_ALPHABET = 64
_NOT_LETTERS = frozenset(",;\"'")  # they would split or quote a CSV cell


def _check_bounds(v: object) -> list | tuple:
    ok = isinstance(v, list | tuple) and len(v) == 2 and not any(isinstance(b, bool) for b in v)
    if isinstance(v, list | tuple) and ok:
        try:
            low, high = float(v[0]), float(v[1])
        except (TypeError, ValueError, OverflowError):
            ok = False
        else:
            ok = math.isfinite(low) and math.isfinite(high) and low < high
    if not ok or not isinstance(v, list | tuple):
        raise ValueError(
            f"must be [low, high] with low < high, two finite numbers (within +-1.8e308). Got {shown(v)} instead."
        )
    width = high - low
    if not math.isfinite(width) or width < max(MIN_WIDTH, 1e-9 * max(abs(low), abs(high))):
        raise ValueError(
            f"must be [low, high] with high - low at least 1e-9 of their size and at least {MIN_WIDTH:g}. Got "
            f"{shown(v)} instead. Express the parameter in a unit where its range is an ordinary number."
        )
    return v
