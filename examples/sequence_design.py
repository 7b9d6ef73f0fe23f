"""Sequence inverse design (system 3): a surrogate of a threading oracle, gradient design, a GA.

1. Score 2,000 random 12-residue sequences with the bundled oracle (fold Z-score, hydrophobic share).
2. Fit a surrogate on the one-hot encoding (the CNN `NeuralEnsemble` when available, else a GP).
3. Gradient design over relaxed one-hot sequences (annealed softmax, straight-through, then a
   polish by single substitutions), for a Z-score of at least 3 with 5 of 12 residues hydrophobic.
4. Check the designs in the oracle; compare with a genetic algorithm given the same 2,000 oracle calls.
5. Nudge: a few gradient steps from an existing sequence, changing at most 2 of its 12 residues.

With `--ray auto` (this machine's cores) or `--ray HOST:PORT` (a Ray cluster), each of the 5
members of the ensemble trains in its own Ray task (`NeuralEnsemble(..., ray=...)`), exactly as
`TrainingOptions(batched=False)` trains them here. The local run trains them together, whose
grouped convolutions round in another order (float32); early stopping turns that into other
stopping epochs, so the ensemble and its designs differ from the local run's (see the README's
"Running on a Ray cluster").

Run: .venv/bin/python examples/sequence_design.py [--ray auto [--ray-workers 5]]
"""

from __future__ import annotations

import argparse

import pandas as pd
import torch

from benchmarks.genetic import genetic_algorithm
from benchmarks.inverse import SEQUENCE_NETWORK, Problem, fit_surrogate, make_problems
from data import sequences
from data.ray_tasks import RayCluster, ray_session
from design.inverse import InverseOptions, inverse_design
from design.inverse.select import verify_designs

GOALS = ["fold_zscore>=3.0", "hydrophobic_fraction=target:0.4167±0.05"]


def surrogate(problem: Problem, ray: RayCluster | None):  # noqa: ANN201 - a NeuralEnsemble or a GP
    """`fit_surrogate(problem)`, or with `ray` the same ensemble with each member trained as a Ray task."""
    if ray is None:
        return fit_surrogate(problem)
    from surrogates.ensemble import NeuralEnsemble

    X = problem.space.encode(problem.train_df)
    Y = torch.tensor(problem.train_df[problem.outcomes].to_numpy(dtype=float), dtype=torch.double)
    torch.manual_seed(0)  # as `fit_surrogate` seeds it
    blocks = problem.space.sequence_blocks
    with ray_session(ray, say=print):  # says where the members train
        model = NeuralEnsemble(5, network=SEQUENCE_NETWORK, sequence_blocks=blocks, seed=0, ray=ray).fit(X, Y)
    return model, "NeuralEnsemble (pairwise + CNN), each member a Ray task"


def main(ray: RayCluster | None = None) -> None:
    torch.set_num_threads(1)
    problem = next(p for p in make_problems(200) if p.name == "sequences")
    model, kind = surrogate(problem, ray)
    print(f"surrogate: {kind}")
    designs_df = inverse_design(model, problem.space, GOALS, n=5, starts=512, outcomes=problem.outcomes)
    checked = verify_designs(designs_df, sequences.simulate, GOALS)
    print(checked[["sequence", "fold_zscore_mean", "fold_zscore_true", "hydrophobic_fraction_true", "all_met_true"]])
    ga = genetic_algorithm(
        lambda s: sequences.simulate(pd.DataFrame({"sequence": s}))["fold_zscore"].to_numpy(), len(problem.train_df)
    )
    print(
        f"GA with {ga.attrs['calls']} oracle calls: best Z-score {ga['score'].iloc[0]:.2f} ({ga['sequence'].iloc[0]})"
    )
    start = problem.train_df.iloc[[0]][["sequence"]]
    nudged = inverse_design(
        model,
        problem.space,
        ["fold_zscore=max"],
        n=3,
        starts=64,
        outcomes=problem.outcomes,
        options=InverseOptions(nudge_from=start, radius=2 / 12),
    )
    print("nudged from", start["sequence"].item())
    print(verify_designs(nudged, sequences.simulate, ["fold_zscore=max"])[["sequence", "fold_zscore_true"]])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ray", metavar="ADDRESS", help="auto (this machine), HOST:6379 or ray://HOST:10001")
    parser.add_argument("--ray-workers", type=int, metavar="N", help="with --ray auto: the local cluster's CPUs")
    args = parser.parse_args()
    main(None if args.ray is None else RayCluster(args.ray, args.ray_workers))
