"""The published inverse-design benchmark (Ren et al. 2020): every method scored by re-simulation error."""

from __future__ import annotations

import pandas as pd
import pytest


def test_published_benchmark_scores_every_method_by_resimulation_error():
    import numpy as np
    import torch

    from benchmarks.published import published_problem, resimulation_mse, run_published

    rows = pd.DataFrame(run_published("sine_wave", n_train=100, n_targets=3, starts=8, steps=10, mlp_epochs=2))
    valley = ["default (Valley)", "descent only (Valley)", "anchored on data (Valley)"]
    assert rows["method"].tolist() == ["k-NN lookup", "neural adjoint", *valley, *valley]
    assert (rows["mse_T10"] <= rows["mse_T1"] + 1e-15).all() and (rows["mse_T10"] >= 0).all()
    assert rows[["s_per_target", "fit_s"]].notna().all().all()
    problem = published_problem("sine_wave")
    designs = torch.tensor([[[0.5, 0.5], [0.5 + 1 / 12, 0.5]], [[0.5, 0.5], [float("nan")] * 2]], dtype=torch.double)
    mse = resimulation_mse(problem, designs, torch.tensor([[1.0], [0.0]], dtype=torch.double))
    assert mse[0].tolist() == pytest.approx([0.0, 1.0]) and mse[1, 0] == pytest.approx(1.0) and np.isnan(mse[1, 1])
