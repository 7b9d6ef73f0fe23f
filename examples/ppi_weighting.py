"""Class weighting on rare positives: system 4 (SYNTHETIC protein pairs, ~2 % interacting).

Trains the neural classifier ensemble (a 1-D CNN per sequence) with and without scikit-learn's
"balanced" class weights, and a balanced logistic regression on the same one-hot features, then
prints the average precision and the recall at precision 0.5 on held-out pairs.

With `--ray auto` (this machine's cores) or `--ray HOST:PORT` (a Ray cluster), the two ensembles
train in two Ray tasks: the same table.

Run: `.venv/bin/python examples/ppi_weighting.py [--ray auto [--ray-workers 2]]` (about a minute on one core).
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.surrogates import bench_ppi
from data.ray_tasks import RayCluster

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ray", metavar="ADDRESS", help="auto (this machine), HOST:6379 or ray://HOST:10001")
    parser.add_argument("--ray-workers", type=int, metavar="N", help="with --ray auto: the local cluster's CPUs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ray = None if args.ray is None else RayCluster(args.ray, args.ray_workers)
    table_df = bench_ppi(seed=0, n_train=3000, n_test=3000, length=20, members=2, ray=ray)
    print(table_df.drop(columns="seed").to_string(index=False, float_format=lambda v: f"{v:.3f}"))
