"""Several objectives and the Pareto front, mixtures, replicates and known noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from campaigns import Campaign
from design import make_acquisition
from design.bo import reference_point
from surrogates import fit_outcome_models
from tests.campaigns.safety_support import (
    FAST,
    MULTI,
    assert_confidence_enforced,
    config,
    invoke,
    lab,
    pairwise_distinct,
    uniform,
)

# -- (4) several objectives ----------------------------------------------------------------------


def brute_force_front(camp: Campaign) -> set[int]:
    df = camp.measurements
    ok = df[["f1", "f2", "s"]].notna().all(axis=1) & ~df["failed"] & (df["s"] <= 1.5)
    scores = np.stack([df["f1"], -df["f2"]], axis=-1)
    front = set()
    for i in np.flatnonzero(ok):
        beaten = any(
            (scores[j] >= scores[i]).all() and (scores[j] > scores[i]).any() for j in np.flatnonzero(ok) if j != i
        )
        if not beaten:
            front.add(int(df["id"][i]))
    return front


def test_two_objectives_use_qlognehvi_with_predictions_for_both(multi):
    _, proposals = multi
    assert proposals.attrs["method"] == "qLogNEHVI"
    assert len(proposals) == 3
    columns = ["f1_mean", "f1_sd", "f2_mean", "f2_sd", "s_mean", "s_sd", "p_safe"]
    assert proposals[columns].notna().all().all()
    assert (proposals[["f1_sd", "f2_sd"]] > 0).all().all()
    assert_confidence_enforced(proposals)


def test_pareto_front_is_the_non_dominated_safe_successful_rows(multi):
    camp, _ = multi
    front = camp.pareto_front()
    expected = brute_force_front(camp)
    assert len(expected) >= 2
    assert set(front["id"]) == expected
    assert (front["s"] <= 1.5).all() and not front["failed"].any()


def test_pareto_front_keeps_designs_with_equal_outcomes(tmp_path):
    camp = Campaign.create(tmp_path / "camp", MULTI)
    camp.add_measurements(
        pd.DataFrame(
            {
                "x1": [0.1, 0.2, 0.3, 0.4],
                "x2": [0.1, 0.2, 0.3, 0.4],
                "f1": [1.0, 1.0, 2.0, 0.5],
                "f2": [1.0, 1.0, 3.0, 2.0],
                "s": 0.0,
            }
        )
    )
    assert brute_force_front(camp) == {1, 2, 3}
    assert set(camp.pareto_front()["id"]) == {1, 2, 3}


def test_status_shows_the_pareto_front_with_two_objectives(multi):
    camp, _ = multi
    result = invoke("status", camp.path)
    assert result.exit_code == 0, result.output
    assert "Pareto" in result.stdout
    assert "Best safe result so far" not in result.stdout


def test_a_reference_point_in_the_config_is_accepted_and_used(multi):
    camp, _ = multi
    cfg = camp.config
    assert [o.reference for o in cfg.objectives] == [-0.5, None]
    df = camp.measurements
    ok = df[cfg.outcomes].notna().all(axis=1).to_numpy()
    X = cfg.space().encode(df[ok])
    Y = torch.tensor(df[ok][cfg.outcomes].to_numpy(dtype=float), dtype=torch.double)
    torch.manual_seed(0)
    model = fit_outcome_models(X, Y)
    ref = reference_point(model, X, cfg.objectives, cfg.outcomes)
    assert ref.shape == (2,)
    assert float(ref[0]) == pytest.approx(-0.5)  # f1 is maximized: the score is f1 itself
    without = reference_point(
        model, X, [o.model_copy(update={"reference": None}) for o in cfg.objectives], cfg.outcomes
    )
    assert float(without[0]) != pytest.approx(-0.5)
    assert float(ref[1]) == pytest.approx(float(without[1]))  # the other one is still inferred
    acqf = make_acquisition(model, X, cfg.objectives, cfg.safety, cfg.outcomes, mc_samples=16)
    assert torch.allclose(acqf.ref_point.cpu(), ref.to(acqf.ref_point.dtype))


def test_a_reference_for_a_minimized_objective_is_negated():
    from design import Objective

    X = torch.linspace(0, 1, 6, dtype=torch.double).unsqueeze(-1)
    torch.manual_seed(0)
    model = fit_outcome_models(X, torch.cat([X, 1 - X], dim=-1))
    objectives = [Objective(name="a", reference=0.1), Objective(name="b", goal="minimize", reference=0.9)]
    ref = reference_point(model, X, objectives, ["a", "b"])
    assert torch.allclose(ref, torch.tensor([0.1, -0.9], dtype=ref.dtype))


# -- (5) mixtures ---------------------------------------------------------------------------------

MIXTURE = {
    "name": "mixture",
    "seed": 0,
    "parameters": [
        {"name": "a", "type": "continuous", "bounds": [0, 1]},
        {"name": "b", "type": "continuous", "bounds": [0, 0.6]},
        {"name": "c", "type": "continuous", "bounds": [0.1, 1]},
    ],
    "constraints": ["a + b + c == 1"],
    "objectives": [{"name": "y", "goal": "maximize"}],
    "acquisition": FAST,
}


def assert_mixture(df: pd.DataFrame) -> None:
    np.testing.assert_allclose(df[["a", "b", "c"]].sum(axis=1), 1.0, rtol=0, atol=1e-9)
    assert df["a"].between(0, 1).all() and df["b"].between(0, 0.6).all() and df["c"].between(0.1, 1).all()


def test_mixture_batches_sum_to_one_and_respect_bounds(tmp_path):
    camp = Campaign.create(tmp_path / "camp", MIXTURE)
    first = camp.propose(5)
    assert first.attrs["method"] == "space-filling"
    assert len(first) == 5 and pairwise_distinct(first, ["a", "b", "c"])
    assert_mixture(first)
    designs = first[["a", "b", "c"]]
    camp.add_measurements(designs.assign(y=2 * designs["a"] + designs["b"] - designs["c"] ** 2))
    second = camp.propose(2)
    assert second.attrs["method"] == "qLogNEI"
    assert len(second) == 2
    assert_mixture(second)


# -- (6) replicates and measurement noise --------------------------------------------------------


def test_replicate_measurements_are_all_kept(tmp_path):
    camp = Campaign.create(tmp_path / "camp", config())
    replicates = pd.DataFrame({"x1": 0.3, "x2": 0.4, "y": [1.0, 1.1, 0.95], "s": [0.3, 0.31, 0.29]})
    report = camp.add_measurements(replicates)
    assert report.added == 3 and not report.duplicates
    again = camp.add_measurements(replicates.iloc[[0]])  # the very same row again: a duplicate
    assert again.added == 0 and len(again.duplicates) == 1
    measured = camp.measurements
    assert len(measured) == 3
    assert ((measured["x1"] == 0.3) & (measured["x2"] == 0.4)).sum() == 3


def replicated_data(noise_sd: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Six designs measured four times each: `10 + 3 sin(6 x)` plus Gaussian noise."""
    g = torch.Generator().manual_seed(seed)
    X = torch.linspace(0.05, 0.95, 6, dtype=torch.double).unsqueeze(-1).repeat(4, 1)
    y = 10 + 3 * torch.sin(6 * X[:, 0]) + noise_sd * torch.randn(X.shape[0], generator=g, dtype=torch.double)
    return X, y.unsqueeze(-1)


def observation_noise(model, X: torch.Tensor) -> torch.Tensor:
    """The measurement-noise variance the model adds to its latent variance, in the outcome's units."""
    with torch.no_grad():
        return (model.posterior(X, observation_noise=True).variance - model.posterior(X).variance).squeeze(-1)


def test_a_given_noise_sd_fixes_the_model_noise():
    X, Y = replicated_data(0.05)
    torch.manual_seed(0)
    model = fit_outcome_models(X, Y, noise_sd=[0.3])
    X_test = torch.rand(5, 1, generator=torch.Generator().manual_seed(1), dtype=torch.double)
    torch.testing.assert_close(observation_noise(model, X_test), torch.full((5,), 0.09, dtype=torch.double))


@pytest.mark.parametrize("sd", [0.05, 0.3])
def test_without_noise_sd_the_learned_noise_matches_the_replicate_spread(sd):
    X, Y = replicated_data(sd)
    torch.manual_seed(0)
    model = fit_outcome_models(X, Y)
    replicate_variance = float(Y.reshape(4, 6).var(dim=0).mean())
    learned = float(observation_noise(model, X[:1]))
    assert replicate_variance / 5 < learned < 5 * replicate_variance


def test_config_noise_sd_reaches_the_proposals(tmp_path):
    designs = lab(uniform(8, seed=0))
    noisy_config = config(objectives=[{"name": "y", "goal": "maximize", "noise_sd": 0.5}])
    assert Campaign.create(tmp_path / "noisy", noisy_config).config.noise_sd == [0.5, None]
    noisy = Campaign.open(tmp_path / "noisy")
    noisy.add_measurements(designs)
    learned = Campaign.create(tmp_path / "learned", config())
    learned.add_measurements(designs)
    with_noise, without = noisy.propose(2), learned.propose(2)
    assert with_noise.attrs["method"] == without.attrs["method"] == "qLogNEI"
    assert (with_noise["y_sd"] >= 0.5).all()  # `<outcome>_sd` includes the given measurement noise
    assert (without["y_sd"] < 0.5).all()  # the data are noise-free and vary by less than 0.5
