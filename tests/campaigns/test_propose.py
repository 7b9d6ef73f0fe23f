"""Tests for proposals: valid batches, safety predictions, pending points, pools and numerical trouble."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch

from campaigns import Campaign
from campaigns.campaign_model import fit_campaign_model
from data import get_system, sample_designs
from design import InputError

FAST = {"num_restarts": 2, "raw_samples": 32, "mc_samples": 32}

SMALL = {
    "name": "small",
    "seed": 3,
    "parameters": [
        {"name": "x1", "type": "continuous", "bounds": [0, 1]},
        {"name": "x2", "type": "continuous", "bounds": [0, 1]},
    ],
    "constraints": ["x1 + x2 <= 1.2"],
    "objectives": [{"name": "y", "goal": "maximize"}],
    "safety": [{"name": "s", "upper": 0.9}],
    "acquisition": FAST,
}
PARAMS = ["x1", "x2"]


def measure(designs: pd.DataFrame) -> pd.DataFrame:
    """The "lab": an optimum at (0.8, 0.7), outside the constraint; `s` is safe while x1 <= 0.9."""
    designs = designs[PARAMS].reset_index(drop=True)
    y = -((designs["x1"] - 0.8) ** 2 + (designs["x2"] - 0.7) ** 2)
    return designs.assign(y=y, s=designs["x1"])


def initial_designs(n: int = 6, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(4 * n, 2))
    X = X[X.sum(axis=1) <= 1.2][:n]
    return pd.DataFrame(X, columns=PARAMS)


def assert_valid(df: pd.DataFrame, n: int) -> None:
    """`n` distinct designs inside the bounds and the constraint, checked by hand with tolerance 1e-9."""
    assert len(df) == n
    assert not df[PARAMS].round(9).duplicated().any()
    assert ((df[PARAMS] >= 0) & (df[PARAMS] <= 1)).all().all()
    assert (df["x1"] + df["x2"] <= 1.2 + 1e-9).all()


def new_campaign(path, config=SMALL, designs: pd.DataFrame | None = None) -> Campaign:
    camp = Campaign.create(path, config)
    if designs is not None:
        camp.add_measurements(measure(designs) if "y" not in designs else designs)
    return camp


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A campaign with six measurements and two batches of two proposed one after the other."""
    camp = new_campaign(tmp_path_factory.mktemp("fitted") / "camp", designs=initial_designs())
    first = camp.propose(2)
    second = camp.propose(2)
    return camp, first, second


def test_no_data_gives_a_space_filling_design(tmp_path):
    camp = new_campaign(tmp_path / "camp")
    proposals = camp.propose(5)
    assert proposals.attrs["method"] == "space-filling"
    assert re.match(r"0 distinct design\(s\) successfully measured", proposals.attrs["notes"][0])
    assert_valid(proposals, 5)
    assert camp.config.space().feasible(proposals).all()


def test_too_few_data_gives_a_space_filling_design_with_a_note(tmp_path):
    camp = new_campaign(tmp_path / "camp", designs=initial_designs(2))
    proposals = camp.propose(4)
    assert proposals.attrs["method"] == "space-filling"
    assert len(proposals.attrs["notes"]) == 1
    note = proposals.attrs["notes"][0]
    assert re.match(r"2 distinct design\(s\) successfully measured", note) and "at least 3" in note
    assert_valid(proposals, 4)
    assert proposals["y_mean"].isna().all() and proposals["p_safe"].isna().all()
    measured = camp.measurements[PARAMS].to_numpy()
    gaps = np.linalg.norm(proposals[PARAMS].to_numpy()[:, None] - measured[None], axis=-1)
    assert gaps.min() > 1e-3  # spread away from what was measured


def test_repeats_of_too_few_designs_still_give_a_space_filling_design(tmp_path):
    designs = pd.concat([initial_designs(2)] * 5, ignore_index=True)  # 2 designs, each measured 5 times
    measured = measure(designs)
    measured["y"] += np.random.default_rng(0).normal(0.0, 0.01, len(measured))  # repeats differ by noise
    camp = new_campaign(tmp_path / "camp", designs=measured)
    assert len(camp.measurements) == 10
    proposals = camp.propose(3)
    assert proposals.attrs["method"] == "space-filling"  # 10 rows, but only 2 places where y is known
    assert re.match(r"2 distinct design\(s\) successfully measured", proposals.attrs["notes"][0])
    assert proposals["p_safe"].isna().all()


def test_a_constant_safety_outcome_is_said_in_a_note_and_is_not_certain_far_from_the_data(tmp_path):
    camp = new_campaign(tmp_path / "camp", designs=measure(initial_designs()).assign(s=0.5))
    proposals = camp.propose(2)
    assert any("every measurement of 's' is the same value" in note for note in proposals.attrs["notes"])
    fitted = fit_campaign_model(camp.config, camp.measurements)
    assert fitted.p_safe(fitted.X).min() > 0.99  # where it was measured, 0.5 against a limit of 0.9
    far = torch.tensor([[0.0, 1.0], [1.0, 1.0]], dtype=torch.double)  # every measured design has x2 < 0.45
    assert torch.allclose(fitted.p_safe(far), torch.tensor(0.841, dtype=torch.double), atol=0.01)
    assert (proposals["p_safe"] >= camp.config.confidence).all()  # so the proposals stay near the data


def test_enough_data_uses_qlognei_with_predictions(fitted):
    _, first, second = fitted
    for batch in (first, second):
        assert batch.attrs["method"] == "qLogNEI"
        assert list(batch.columns[:2]) == PARAMS
        assert {"y_mean", "y_sd", "s_mean", "s_sd", "p_safe"} <= set(batch.columns)
        assert batch[["y_mean", "s_mean"]].notna().all().all()
        assert (batch[["y_sd", "s_sd"]] > 0).all().all()
        assert batch["p_safe"].between(0.0, 1.0).all()
    assert (first.attrs["batch_id"], second.attrs["batch_id"]) == (1, 2)


def test_proposals_satisfy_bounds_and_the_linear_constraint(fitted):
    camp, first, second = fitted
    space = camp.config.space()
    for batch in (first, second):
        assert space.feasible(batch).all()
        assert_valid(batch, 2)


def test_consecutive_proposals_do_not_repeat_designs(fitted):
    camp, first, second = fitted
    gaps = np.linalg.norm(first[PARAMS].to_numpy()[:, None] - second[PARAMS].to_numpy()[None], axis=-1)
    assert gaps.min() > 1e-4
    assert len(camp.open_proposals) == 4  # both batches are pending until measured


def test_same_seed_and_data_give_the_same_proposals(fitted, tmp_path):
    _, first, _ = fitted
    other = new_campaign(tmp_path / "other", designs=initial_designs())
    torch.manual_seed(12345)  # whatever ran before must not matter
    torch.rand(7)
    again = Campaign.open(other.path).propose(2)  # also a save -> open -> propose round trip
    pd.testing.assert_frame_equal(again, first, check_exact=False, rtol=1e-9, atol=1e-12)


def test_measured_proposals_are_no_longer_pending(tmp_path):
    camp = new_campaign(tmp_path / "camp", designs=initial_designs(2))
    proposals = camp.propose(3)
    assert len(camp.open_proposals) == 3
    camp.add_measurements(measure(proposals.iloc[:2]))
    assert len(camp.open_proposals) == 1
    assert set(camp.proposals["status"]) == {"open", "measured"}


def pool_table() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    pool = pd.DataFrame(rng.uniform(size=(40, 2)).round(4), columns=PARAMS)
    pool.index = [f"lot-{i}" for i in range(40)]
    return pool


def test_candidates_give_distinct_rows_of_the_pool(tmp_path):
    camp = new_campaign(tmp_path / "camp", designs=initial_designs())
    pool = pool_table()
    proposals = camp.propose(4, candidates=pool)
    assert proposals.attrs["method"] == "qLogNEI"
    assert len(proposals) == 4 and proposals.index.is_unique
    assert set(proposals.index) <= set(pool.index)
    chosen = pool.loc[proposals.index]
    assert (chosen["x1"] + chosen["x2"] <= 1.2).all()  # infeasible pool rows are never chosen
    skipped = int((pool["x1"] + pool["x2"] > 1.2).sum())
    assert any(f"skipped {skipped} row(s)" in note for note in proposals.attrs["notes"])
    np.testing.assert_allclose(proposals[PARAMS].to_numpy(), chosen.to_numpy(), rtol=1e-12, atol=1e-12)


def test_candidates_come_back_with_exactly_the_pool_values(tmp_path):
    config = {
        **SMALL,
        "parameters": [
            {"name": "x1", "type": "continuous", "bounds": [-40, 40]},
            {"name": "x2", "type": "continuous", "bounds": [1, 100], "log": True},
        ],
        "constraints": [],
    }
    rng = np.random.default_rng(1)
    measured = pd.DataFrame({"x1": rng.uniform(-40, 40, 6).round(3), "x2": rng.uniform(1, 100, 6).round(3)})
    camp = new_campaign(tmp_path / "camp", config, measured.assign(y=measured["x1"], s=0.1))
    pool = pd.DataFrame({"x1": rng.uniform(-40, 40, 30).round(3), "x2": rng.uniform(1, 100, 30).round(3)})
    proposals = camp.propose(4, candidates=pool)
    pd.testing.assert_frame_equal(proposals[PARAMS], pool.loc[proposals.index], check_exact=True)


def test_a_design_listed_twice_in_the_pool_is_proposed_once(tmp_path):
    config = {**SMALL, "constraints": [], "safety": []}
    designs = initial_designs()
    camp = new_campaign(tmp_path / "camp", config, designs.assign(y=designs["x1"] + designs["x2"]))
    pool = pd.DataFrame({"x1": [0.9, 0.9, 0.2, 0.2], "x2": [0.9, 0.9, 0.1, 0.1]}, index=list("abcd"))
    proposals = camp.propose(3, candidates=pool)  # only two distinct designs to choose from
    assert proposals.index.is_unique
    assert not proposals[PARAMS].duplicated().any()


def test_candidates_with_too_few_data_are_spread_rows_of_the_pool(tmp_path):
    camp = new_campaign(tmp_path / "camp")
    pool = pool_table()
    proposals = camp.propose(3, candidates=pool)
    assert proposals.attrs["method"] == "space-filling"
    assert len(proposals) == 3 and proposals.index.is_unique and set(proposals.index) <= set(pool.index)
    np.testing.assert_allclose(proposals[PARAMS].to_numpy(), pool.loc[proposals.index].to_numpy(), atol=1e-12)


def test_candidates_without_a_feasible_row_are_refused(tmp_path):
    camp = new_campaign(tmp_path / "camp")
    pool = pd.DataFrame({"x1": [0.9, 1.0], "x2": [0.9, 0.5]})
    with pytest.raises(InputError, match="candidates: no row satisfies"):
        camp.propose(2, candidates=pool)
    assert camp.proposals.empty


def test_invalid_candidates_name_row_and_column(tmp_path):
    camp = new_campaign(tmp_path / "camp")
    with pytest.raises(InputError, match=r"candidates, row 1, column 'x2'"):
        camp.propose(2, candidates=pd.DataFrame({"x1": [0.1, 0.2], "x2": [0.3, 2.0]}))


def test_n_must_be_positive(tmp_path):
    camp = new_campaign(tmp_path / "camp")
    with pytest.raises(InputError, match="n must be a positive"):
        camp.propose(0)


def test_target_objective_proposes_designs_near_the_target(tmp_path):
    config = {**SMALL, "constraints": [], "safety": [], "objectives": [{"name": "y", "goal": "target", "target": 0.5}]}
    rng = np.random.default_rng(0)
    designs = pd.DataFrame(rng.uniform(size=(8, 2)), columns=PARAMS)
    camp = new_campaign(tmp_path / "camp", config, designs.assign(y=designs["x1"] + designs["x2"]))
    proposals = camp.propose(2)
    assert proposals.attrs["method"] == "qLogNEI"
    assert {"y_mean", "y_sd"} <= set(proposals.columns)
    assert "p_safe" not in proposals.columns  # no safety limits
    assert_valid(proposals, 2)
    true_y = proposals["x1"] + proposals["x2"]
    assert ((true_y - 0.5).abs() < 0.3).all()  # the data span y in [0.06, 1.73]
    assert ((proposals["y_mean"] - 0.5).abs() < 0.3).all()


def trouble_cases() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    designs = pd.DataFrame(rng.uniform(0, 0.6, size=(5, 2)), columns=PARAMS)
    steps = np.arange(5)
    return {
        "constant outcomes": designs.assign(y=1.0, s=0.5),
        "near-duplicate rows": pd.DataFrame(
            {"x1": 0.3 + 1e-9 * steps, "x2": 0.4, "y": 1.0 + 1e-6 * steps, "s": 0.5 + 1e-7 * steps}
        ),
        "one design measured five times": pd.DataFrame(
            {"x1": 0.3, "x2": 0.4, "y": 1.0 + 1e-6 * steps, "s": 0.5 - 1e-7 * steps}
        ),
        "a single measurement": designs.iloc[:1].assign(y=1.0, s=0.5),
        "all runs failed": designs.assign(y=np.nan, s=np.nan),
        "safety outcome never measured": designs.assign(y=designs["x1"], s=np.nan),
    }


@pytest.mark.parametrize("case", list(trouble_cases()))
def test_numerical_trouble_never_crashes(tmp_path, case):
    camp = new_campaign(tmp_path / "camp", designs=trouble_cases()[case])
    proposals = camp.propose(2)
    assert_valid(proposals, 2)
    assert camp.config.space().feasible(proposals).all()
    method, notes = proposals.attrs["method"], proposals.attrs["notes"]
    assert method in {"qLogNEI", "space-filling"}
    if method == "space-filling":
        assert notes, "a space-filling fallback must say why"
    else:
        assert proposals[["y_mean", "y_sd", "s_mean", "s_sd", "p_safe"]].notna().all().all()
    if case in {"a single measurement", "all runs failed", "safety outcome never measured"}:
        assert method == "space-filling"


def test_nanoparticle_config_gives_valid_mixed_designs(tmp_path):
    system = get_system("nanoparticles")
    config = {**system.config, "acquisition": {"num_restarts": 1, "raw_samples": 16, "mc_samples": 16}}
    designs = sample_designs(system.config, 10, np.random.default_rng(0))
    camp = Campaign.create(tmp_path / "np", config)
    camp.add_measurements(designs.join(system.simulate(designs, np.random.default_rng(1))))
    proposals = camp.propose(3)
    assert proposals.attrs["method"] == "qLogNEI"
    assert len(proposals) == 3
    names = camp.config.parameter_names
    assert not proposals[names].duplicated().any()
    layers = proposals["n_layers"].to_numpy(dtype=float)
    assert (layers == np.round(layers)).all() and ((layers >= 1) & (layers <= 5)).all()
    assert set(proposals["ligand"]) <= {"none", "antiCD3", "antiCD28"}
    assert (proposals["peg_pct"] + 0.1 * proposals["zeta_mV"] <= 8 + 1e-9).all()
    assert proposals["dose_ug"].between(1, 100).all() and proposals["diameter_nm"].between(20, 200).all()
    assert proposals["p_safe"].between(0, 1).all()
    assert system.simulate(proposals[names], None).notna().all().all()  # the simulator accepts them


# -- best ----------------------------------------------------------------------------------------


def test_best_is_the_best_safe_measurement(tmp_path):
    camp = new_campaign(
        tmp_path / "camp",
        designs=pd.DataFrame(
            {
                "x1": [0.1, 0.2, 0.3, 0.4, 0.5],
                "x2": [0.1, 0.2, 0.3, 0.4, 0.5],
                "y": [5.0, 3.0, 4.0, np.nan, 1.0],
                "s": [0.95, 0.5, np.nan, 0.1, 0.2],  # unsafe, safe, failed, safe but y failed, safe
            }
        ),
    )
    best = camp.best()
    assert best is not None
    assert best["y"] == 3.0 and best["x1"] == 0.2


def test_best_minimize_and_target(tmp_path):
    designs = pd.DataFrame({"x1": [0.1, 0.2, 0.3], "x2": [0.1, 0.2, 0.3], "y": [5.0, 3.0, 4.2], "s": 0.1})
    minimize = {**SMALL, "objectives": [{"name": "y", "goal": "minimize"}]}
    assert new_campaign(tmp_path / "min", minimize, designs).best()["y"] == 3.0
    target = {**SMALL, "objectives": [{"name": "y", "goal": "target", "target": 4.5}]}
    assert new_campaign(tmp_path / "target", target, designs).best()["y"] == 4.2


def test_best_is_none_when_nothing_is_safe(tmp_path):
    designs = pd.DataFrame({"x1": [0.1, 0.2], "x2": [0.1, 0.2], "y": [5.0, 3.0], "s": [0.95, 2.0]})
    assert new_campaign(tmp_path / "camp", designs=designs).best() is None
    assert new_campaign(tmp_path / "empty").best() is None


def test_best_is_none_when_every_run_failed(tmp_path):
    designs = pd.DataFrame({"x1": [0.1, 0.2], "x2": [0.1, 0.2], "y": np.nan, "s": np.nan})
    assert new_campaign(tmp_path / "camp", designs=designs).best() is None


def test_a_cost_spanning_decades_is_modelled_as_its_log_and_predicted_in_its_units(tmp_path):
    config = {**SMALL, "objectives": [{"name": "y", "goal": "minimize"}], "safety": []}
    designs = initial_designs(8)
    cost = np.exp(6 * designs["x1"] + 2 * designs["x2"])  # about 1 to 1,000
    camp = new_campaign(tmp_path / "c", config, designs.assign(y=cost))
    proposals = camp.propose(2)
    assert any("'y' is modelled as log(y)" in note for note in proposals.attrs["notes"])
    predicted = proposals["y_mean"].to_numpy()
    truth = np.exp(6 * proposals["x1"] + 2 * proposals["x2"]).to_numpy()
    assert (predicted > 0).all() and np.allclose(np.log(predicted), np.log(truth), atol=1.0)
    camp_linear = new_campaign(tmp_path / "lin", {**config, "objectives": [{**config["objectives"][0], "log": False}]})
    camp_linear.add_measurements(designs.assign(y=cost))
    assert not any("log(y)" in note for note in camp_linear.propose(2).attrs["notes"])
    camp_negative = new_campaign(tmp_path / "neg", {**config, "objectives": [{**config["objectives"][0], "log": True}]})
    camp_negative.add_measurements(designs.assign(y=cost - 10.0))
    assert any("`log: true` needs every measurement above 0" in n for n in camp_negative.propose(2).attrs["notes"])


def test_pool_rows_already_measured_are_not_proposed_again(tmp_path):
    config = {**SMALL, "constraints": [], "safety": []}
    designs = initial_designs()
    camp = new_campaign(tmp_path / "camp", config, designs.assign(y=designs["x1"] + designs["x2"]))
    fresh = pd.DataFrame({"x1": [0.3, 0.6], "x2": [0.2, 0.4]})
    pool = pd.concat([designs[PARAMS], fresh], ignore_index=True)  # the best rows are the measured ones
    proposals = camp.propose(4, candidates=pool)
    np.testing.assert_allclose(np.sort(proposals["x1"].to_numpy()), [0.3, 0.6])
    assert any("only 2 distinct design(s)" in note for note in proposals.attrs["notes"])
