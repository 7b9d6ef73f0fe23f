"""Physics in the loss: system 5, a neo-Hookean bar, with and without the deep energy method.

A small ensemble learns the bar's displacement from a few noisy measurements; with the energy
term, the potential energy of the predicted field (strain energy minus the work of the loads,
on collocation points) is minimized together with the data misfit. Prints the relative L2 error
against the finely solved reference.

Run: `.venv/bin/python examples/hyperelastic_dem.py` (about a minute on one core).
"""

from __future__ import annotations

import torch

from benchmarks.surrogates import bench_physics

if __name__ == "__main__":
    torch.set_num_threads(1)
    table_df = bench_physics(seed=0, sizes=(10, 30))
    print(
        table_df.pivot_table(index="n", columns="model", values="rel_l2_error").to_string(
            float_format=lambda v: f"{v:.4f}"
        )
    )
