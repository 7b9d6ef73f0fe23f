"""Surrogate-guided study of a textured slider bearing (system 1), end to end.

1. Solve the Reynolds equation for 300 random textures (coarse 48 x 24 grid, about 10 s).
2. Fit a surrogate of friction coefficient and load (a GP per outcome).
3. Inverse design: the texture with the least friction that still carries 1.0 N, by gradient
   descent through the surrogate from 1,024 starts.
4. Verify the designs in the solver, predicted against true.

Run: .venv/bin/python examples/bearing_study.py
"""

from __future__ import annotations

import pandas as pd
import torch

from data import bearing
from design.inverse import InverseOptions, inverse_design
from design.inverse.select import verify_designs
from design.parameters import ContinuousParameter
from design.space import SearchSpace
from surrogates import fit_outcome_models

GRID = bearing.Grid(48, 24, 2)
GOALS = ["friction_coeff=min", "load_N>=1.0"]


def main() -> pd.DataFrame:
    torch.set_num_threads(1)
    train_df = bearing.generate_dataset(300, seed=0, grid=GRID)
    train_df = train_df[train_df["load_N"] > 0]  # a zone too short to hold a dimple carries nothing (infinite f)
    space = SearchSpace(
        [ContinuousParameter(name=p["name"], bounds=p["bounds"]) for p in bearing.config()["parameters"]]
    )
    X = space.encode(train_df)
    Y = torch.tensor(train_df[["friction_coeff", "load_N"]].to_numpy(), dtype=torch.double)
    model = fit_outcome_models(X, Y)
    designs_df = inverse_design(
        model, space, GOALS, n=5, starts=1024, outcomes=["friction_coeff", "load_N"], options=InverseOptions(train_X=X)
    )
    checked = verify_designs(designs_df, lambda df, rng: bearing.simulate(df, rng, grid=GRID), GOALS)
    columns = [*space.names, "friction_coeff_mean", "friction_coeff_true", "load_N_mean", "load_N_true", "all_met_true"]
    print(checked[columns].round(4).to_string(index=False))
    return checked


if __name__ == "__main__":
    main()
