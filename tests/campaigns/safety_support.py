"""Shared helpers of the safe-BO tests (tiny 2-D campaigns and their "lab")."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from campaigns.cli import app

FAST = {"num_restarts": 2, "raw_samples": 32, "mc_samples": 32}
PARAMS = ["x1", "x2"]
CONFIDENCE = 0.95
NOT_SAFE_NOTE = "NOT known to be safe"
# Roles of proposals that may miss the confidence: the closest to safe, or (nothing measured safe yet) the
# designs most likely to be safe under samples of the model.
NOT_KNOWN_SAFE_ROLES = {"closest-to-safe", "find-safe"}


def config(**fields) -> dict:
    """A 2-D campaign on the unit square: maximize `y`, keep `s <= 0.6`; `fields` override."""
    base = {
        "name": "safety",
        "seed": 0,
        "parameters": [{"name": p, "type": "continuous", "bounds": [0, 1]} for p in PARAMS],
        "objectives": [{"name": "y", "goal": "maximize"}],
        "safety": [{"name": "s", "upper": 0.6, "confidence": CONFIDENCE}],
        "acquisition": FAST,
    }
    return {**base, **fields}


def lab(designs: pd.DataFrame) -> pd.DataFrame:
    """The "lab" of `config()`: `y` peaks at (0.8, 0.7), beyond the limit; `s = x1` is safe while x1 <= 0.6."""
    designs = designs[PARAMS].reset_index(drop=True)
    return designs.assign(y=-((designs["x1"] - 0.8) ** 2 + (designs["x2"] - 0.7) ** 2), s=designs["x1"])


def uniform(n: int, seed: int) -> pd.DataFrame:
    return pd.DataFrame(np.random.default_rng(seed).uniform(size=(n, 2)), columns=PARAMS)


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_confidence_enforced(proposals: pd.DataFrame) -> None:
    """Each row reaches the confidence, or says it does not: flag, role and a note."""
    meets = proposals["meets_confidence"].to_numpy(dtype=bool)
    np.testing.assert_array_equal(meets, proposals["p_safe"].to_numpy() >= CONFIDENCE)
    short = proposals[~meets]
    assert short["role"].isin(NOT_KNOWN_SAFE_ROLES).all()
    if len(short):
        assert any(NOT_SAFE_NOTE in note for note in proposals.attrs["notes"])


def pairwise_distinct(df: pd.DataFrame, columns: list[str]) -> bool:
    X = df[columns].to_numpy(dtype=float)
    gaps = np.linalg.norm(X[:, None] - X[None], axis=-1)
    return bool((gaps[np.triu_indices(len(X), k=1)] > 1e-6).all())


MULTI = config(
    objectives=[{"name": "f1", "goal": "maximize", "reference": -0.5}, {"name": "f2", "goal": "minimize"}],
    safety=[{"name": "s", "upper": 1.5, "confidence": CONFIDENCE}],
)


def multi_lab(designs: pd.DataFrame) -> pd.DataFrame:
    """`f1` rises with x1, `f2` with x1 and x2: a trade-off; `s = x1 + x2`."""
    designs = designs[PARAMS].reset_index(drop=True)
    f1 = designs["x1"]
    f2 = (designs["x1"] - 0.2) ** 2 + designs["x2"]
    return designs.assign(f1=f1, f2=f2, s=designs["x1"] + designs["x2"])
