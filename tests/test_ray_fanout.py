"""The product's Ray fan-out on a real local Ray cluster: simulated campaigns, ensemble members, target groups.

They run on the session's local Ray cluster of 2 CPUs (`cluster`, tests/ray_support.py).
Each Ray result is compared with the local run of the same seed, value for value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from campaigns import Campaign
from campaigns.cli import app
from campaigns.simulate import run_simulated_campaign
from data import get_system
from data.ray_simulate import NoiseNotSplittable, simulate_designs
from data.ray_tasks import RayCluster
from design.inverse.fanout import inverse_design_groups
from design.parameters import ContinuousParameter
from design.space import SearchSpace
from surrogates.ensemble import NeuralEnsemble
from surrogates.ensemble_training import TrainingOptions
from surrogates.networks import NetworkSpec
from tests.campaigns.test_hardening import one_error_line

torch.set_num_threads(1)  # as each Ray task runs


def test_ray_demo_measures_as_the_local_campaign(cluster, tmp_path):
    system = get_system("nanoparticles")
    run_simulated_campaign(system, tmp_path / "local", rounds=0, seed=0)  # the initial design only
    args = ["demo", "--rounds", "0", "--out", str(tmp_path / "ray"), "--ray", "auto"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "round 0:" in result.output and (tmp_path / "ray" / "progress.png").exists()
    here, there = Campaign.open(tmp_path / "local"), Campaign.open(tmp_path / "ray" / "campaign")
    columns = [*here.config.parameter_names, *here.config.outcomes]
    assert len(here.measurements) == len(system.config["parameters"]) + 1  # all measured, with noise
    pd.testing.assert_frame_equal(here.measurements[columns], there.measurements[columns])  # bit for bit


def test_ray_simulated_campaign_gives_the_local_history(cluster, tmp_path):
    system = get_system("gardner")
    local = run_simulated_campaign(system, tmp_path / "local", rounds=1, batch=2, seed=2)
    remote = run_simulated_campaign(system, tmp_path / "ray", rounds=1, batch=2, seed=2, ray=RayCluster("auto", 2))
    pd.testing.assert_frame_equal(local.drop(columns="seconds"), remote.drop(columns="seconds"))


def test_ray_ensemble_members_predict_as_the_local_fit(cluster):
    g = torch.Generator().manual_seed(0)
    letters = torch.randint(0, 4, (24, 5), generator=g)  # 5-letter sequences of a 4-letter alphabet, and one number
    X = torch.cat([torch.nn.functional.one_hot(letters, 4).reshape(24, -1), torch.rand(24, 1, generator=g)], 1)
    Y = torch.stack([(letters == 0).float().mean(1) + X[:, -1], (letters == 3).float().sum(1)], -1)
    kwargs = {"network": NetworkSpec(hidden=(8,), channels=2), "sequence_blocks": [(0, 5, 4)], "seed": 4}
    remote = NeuralEnsemble(2, training=TrainingOptions(epochs=3), ray="auto", **kwargs).fit(X, Y)
    alone = NeuralEnsemble(2, training=TrainingOptions(epochs=3, batched=False), **kwargs).fit(X, Y)
    batched = NeuralEnsemble(2, training=TrainingOptions(epochs=3), **kwargs).fit(X, Y)
    for there, here, together in zip(remote.predict(X), alone.predict(X), batched.predict(X), strict=True):
        assert torch.equal(there, here)  # each member trained as `batched=False` trains it, bit for bit
        torch.testing.assert_close(there, together)  # grouped convolutions add in another order: float32 rounding
    pd.testing.assert_frame_equal(remote.history_, alone.history_)
    assert remote.best_epochs_ == alone.best_epochs_ == batched.best_epochs_


def test_ray_target_groups_give_the_local_groups_designs(cluster):
    from botorch.models import SingleTaskGP

    space = SearchSpace([ContinuousParameter(name="a", bounds=(0, 1)), ContinuousParameter(name="b", bounds=(0, 2))])
    X = torch.rand(12, 2, generator=torch.Generator().manual_seed(1), dtype=torch.double)
    model = SingleTaskGP(X, (X[:, :1] + X[:, 1:] ** 2).sin())  # unfitted hyperparameters: a fixed smooth model
    targets = pd.DataFrame({"y": [0.2, 0.5, 0.8]})
    args = {"n": 2, "starts": 16, "seed": 3, "outcomes": ["y"]}
    local = inverse_design_groups(model, space, ["y=target:0.5"], targets, group_size=2, **args)
    remote = inverse_design_groups(model, space, ["y=target:0.5"], targets, group_size=2, ray="auto", **args)
    pd.testing.assert_frame_equal(local, remote)
    assert sorted(set(remote["target"])) == [0, 1, 2] and remote.attrs["surrogate_calls"] > 0
    assert remote.attrs["surrogate_calls"] == local.attrs["surrogate_calls"]


def test_ray_refuses_a_simulator_whose_noise_depends_on_the_design():
    from data.ray_simulate import _simulate_one_design

    def counts(designs_df, rng):  # Poisson noise around the value: its draws depend on the design
        values = designs_df["a"].to_numpy()
        return pd.DataFrame({"y": values if rng is None else rng.poisson(values)}, index=designs_df.index)

    designs_df = pd.DataFrame({"a": [1.0, 5.0]})
    with pytest.raises(NoiseNotSplittable, match="depend"):
        _simulate_one_design(counts, designs_df.iloc[[0]], [np.random.default_rng(0)], 0, 2)
    measured, true = simulate_designs(counts, designs_df, [np.random.default_rng(0), None])  # without Ray: as ever
    assert list(true["y"]) == [1.0, 5.0] and len(measured) == 2


def test_ray_demo_options_are_checked_in_one_line(tmp_path):
    out = ["demo", "--rounds", "0", "--out", str(tmp_path)]
    one_error_line(CliRunner().invoke(app, [*out, "--ray", "head-without-port"]), "--ray must be", "head-without-port")
    one_error_line(CliRunner().invoke(app, [*out, "--ray-workers", "2"]), "--ray-workers needs --ray")
