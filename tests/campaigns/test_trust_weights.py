"""Trust weights together with every other feature: safety limits (both modes), failures, ensembles, binary outcomes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from campaigns import Campaign

torch.set_num_threads(1)
PARAMETERS = [{"name": f"x{i}", "type": "continuous", "bounds": [0, 1]} for i in (1, 2)]
LIMIT = [{"name": "c", "upper": 1.2}]
SMALL_ENSEMBLE = {"members": 2, "epochs": 30}
SETUPS = {
    "gp": {"objectives": [{"name": "f"}], "safety": LIMIT},
    "gp, safe set": {"objectives": [{"name": "f"}], "safety": LIMIT, "safety_mode": "safe_set"},
    "ensemble": {"objectives": [{"name": "f"}], "safety": LIMIT, "surrogate": {"kind": "ensemble", **SMALL_ENSEMBLE}},
    "binary": {"objectives": [{"name": "hit", "type": "binary"}], "safety": LIMIT, "surrogate": SMALL_ENSEMBLE},
}


def measurements() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x1": rng.uniform(size=24), "x2": rng.uniform(size=24)})
    df["f"] = np.sin(3 * df.x1) + df.x2 + 0.05 * rng.normal(size=24)
    df["c"] = df.x1 + df.x2 + 0.05 * rng.normal(size=24)
    df["hit"] = (df.x1 > 0.5).astype(int)
    df["weight"] = np.where(np.arange(24) % 4 == 0, 0.25, 1.0)  # every fourth row from a less trusted lab
    df.loc[3, ["f", "c"]] = np.nan  # a failed run
    return df


@pytest.mark.parametrize("setup", SETUPS)
def test_trust_weights_propose_with_safety_failures_and_every_model(tmp_path, setup):
    config = {"name": "weighted", "parameters": PARAMETERS, **SETUPS[setup]}
    camp = Campaign.create(tmp_path / "camp", config)
    objective = "hit" if setup == "binary" else "f"
    camp.add_measurements(measurements()[["x1", "x2", objective, "c", "weight"]])
    table = camp.propose(n=2)
    assert len(table) == 2
    assert table["p_safe"].between(0, 1).all() and table["p_feasible"].between(0, 1).all()
    assert table[["x1", "x2"]].apply(lambda col: col.between(0, 1)).all().all()
