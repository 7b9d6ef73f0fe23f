"""Surrogate-guided study of a textured slider bearing (system 1), end to end.

1. Solve the Reynolds equation for 300 random textures (coarse 48 x 24 grid, about 10 s).
2. Fit a surrogate of friction coefficient and load (a GP per outcome).
3. Inverse design: the texture with the least friction that still carries 1.0 N, by gradient
   descent through the surrogate from 1,024 starts.
4. Verify the designs in the solver, predicted against true.

With `--ray auto` (this machine's cores) or `--ray HOST:PORT` (a Ray cluster), each solve of
steps 1 and 4 is one Ray task (`data.ray_simulate`): the same table as without.

Run: .venv/bin/python examples/bearing_study.py [--ray auto [--ray-workers 4]]
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from functools import partial

import numpy as np
import pandas as pd
import torch

from data import bearing
from data.ray_simulate import simulate_designs
from data.ray_tasks import RayCluster, ray_session
from design.inverse import InverseOptions, inverse_design
from design.inverse.select import verify_designs
from design.parameters import ContinuousParameter
from design.space import SearchSpace
from surrogates import fit_outcome_models

GRID = bearing.Grid(48, 24, 2)
GOALS = ["friction_coeff=min", "load_N>=1.0"]
SOLVE = partial(bearing.simulate, grid=GRID)


def training_data(n: int, seed: int, ray: RayCluster | None) -> pd.DataFrame:
    """`bearing.generate_dataset(n, seed, GRID)`: the same designs, each solve here or as a Ray task."""
    if ray is None:
        return bearing.generate_dataset(n, seed=seed, grid=GRID)
    rng = np.random.default_rng(seed)  # the designs `generate_dataset` draws
    params = bearing.config()["parameters"]
    designs_df = pd.DataFrame({p["name"]: rng.uniform(p["bounds"][0], p["bounds"][1], size=n) for p in params})
    (outcomes_df,) = simulate_designs(SOLVE, designs_df, [None], ray)
    return pd.concat([designs_df, outcomes_df], axis=1)


def main(ray: RayCluster | None = None) -> pd.DataFrame:
    torch.set_num_threads(1)
    with nullcontext() if ray is None else ray_session(ray, say=print):  # one cluster for every solve
        train_df = training_data(300, 0, ray)
        train_df = train_df[train_df["load_N"] > 0]  # a zone too short to hold a dimple carries nothing (infinite f)
        space = SearchSpace(
            [ContinuousParameter(name=p["name"], bounds=p["bounds"]) for p in bearing.config()["parameters"]]
        )
        X = space.encode(train_df)
        Y = torch.tensor(train_df[["friction_coeff", "load_N"]].to_numpy(), dtype=torch.double)
        model = fit_outcome_models(X, Y)
        designs_df = inverse_design(
            model,
            space,
            GOALS,
            n=5,
            starts=1024,
            outcomes=["friction_coeff", "load_N"],
            options=InverseOptions(train_X=X),
        )
        checked = verify_designs(designs_df, lambda df, rng: simulate_designs(SOLVE, df, [rng], ray)[0], GOALS)
    columns = [*space.names, "friction_coeff_mean", "friction_coeff_true", "load_N_mean", "load_N_true", "all_met_true"]
    print(checked[columns].round(4).to_string(index=False))
    return checked


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ray", metavar="ADDRESS", help="auto (this machine), HOST:6379 or ray://HOST:10001")
    parser.add_argument("--ray-workers", type=int, metavar="N", help="with --ray auto: the local cluster's CPUs")
    args = parser.parse_args()
    main(None if args.ray is None else RayCluster(args.ray, args.ray_workers))
