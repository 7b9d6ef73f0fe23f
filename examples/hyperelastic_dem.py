"""Physics in the loss: system 5, a neo-Hookean bar, with and without the deep energy method.

A small ensemble learns the bar's displacement from a few noisy measurements; with the energy
term, the potential energy of the predicted field (strain energy minus the work of the loads,
on collocation points) is minimized together with the data misfit. Prints the relative L2 error
against the finely solved reference.

With `--ray auto` (this machine's cores) or `--ray HOST:PORT` (a Ray cluster), each of the four
fits is one Ray task: the same table.

Run: `.venv/bin/python examples/hyperelastic_dem.py [--ray auto [--ray-workers 4]]` (about a minute on one core).
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.surrogates import bench_physics
from data.ray_tasks import RayCluster

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ray", metavar="ADDRESS", help="auto (this machine), HOST:6379 or ray://HOST:10001")
    parser.add_argument("--ray-workers", type=int, metavar="N", help="with --ray auto: the local cluster's CPUs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ray = None if args.ray is None else RayCluster(args.ray, args.ray_workers)
    table_df = bench_physics(seed=0, sizes=(10, 30), ray=ray)
    print(
        table_df.pivot_table(index="n", columns="model", values="rel_l2_error").to_string(
            float_format=lambda v: f"{v:.4f}"
        )
    )
