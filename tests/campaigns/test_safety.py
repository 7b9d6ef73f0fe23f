"""Safe Bayesian optimization end to end: the probabilistic and safe-set modes, and batch diversity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from campaigns import Campaign
from design.safe_set import REACH
from tests.campaigns.safety_support import (
    CONFIDENCE,
    NOT_KNOWN_SAFE_ROLES,
    NOT_SAFE_NOTE,
    PARAMS,
    assert_confidence_enforced,
    config,
    lab,
    pairwise_distinct,
    uniform,
)

# -- (1) probabilistic mode --------------------------------------------------------------------


def test_probabilistic_proposals_reach_the_confidence_or_say_so(probabilistic):
    _, proposals = probabilistic
    assert proposals.attrs["method"] == "qLogNEI"
    assert len(proposals) == 4
    assert proposals["p_safe"].between(0, 1).all()
    assert_confidence_enforced(proposals)
    assert proposals["meets_confidence"].any()  # with eight measurements, confident designs exist
    assert set(proposals["role"]) <= {"optimize", "closest-to-safe"}


@pytest.mark.parametrize("pool", [False, True], ids=["optimized", "pool"])
def test_an_exploring_design_is_flagged_and_the_rest_reach_the_confidence(tmp_path, pool):
    camp = Campaign.create(tmp_path / "camp", config(safety_explore=1))
    camp.add_measurements(lab(uniform(8, seed=0)))
    rng = np.random.default_rng(3)
    candidates = pd.DataFrame({"x1": rng.uniform(0.0, 1.0, 60), "x2": rng.uniform(0.0, 1.0, 60)}) if pool else None
    proposals = camp.propose(4, candidates=candidates)
    explore = proposals["role"] == "explore"
    assert explore.tolist() == [False, False, False, True]  # the last design of the batch
    assert proposals.loc[~explore, "meets_confidence"].all()
    assert proposals.loc[explore, "p_safe"].iloc[0] >= 0.5
    short = int(~proposals.loc[explore, "meets_confidence"].iloc[0])
    assert any(f"{short} of them fall short" in note and NOT_SAFE_NOTE in note for note in proposals.attrs["notes"])


def test_probabilistic_pool_choice_skips_doubtful_rows(tmp_path):
    camp = Campaign.create(tmp_path / "camp", config())
    camp.add_measurements(lab(uniform(8, seed=0)))
    rng = np.random.default_rng(3)
    risky = pd.DataFrame({"x1": rng.uniform(0.75, 1.0, 20), "x2": rng.uniform(0.5, 0.9, 20)})  # best y, unsafe
    modest = pd.DataFrame({"x1": rng.uniform(0.0, 0.3, 6), "x2": rng.uniform(0.0, 1.0, 6)})
    pool = pd.concat([risky, modest], ignore_index=True)
    proposals = camp.propose(3, candidates=pool)
    assert_confidence_enforced(proposals)
    assert proposals["meets_confidence"].all()  # six confident rows are enough for three proposals
    assert (proposals["x1"] <= 0.3).all()


@pytest.mark.parametrize("mode", ["probabilistic", "safe_set"])
def test_a_campaign_with_only_unsafe_measurements_says_its_proposals_are_not_known_safe(tmp_path, mode):
    camp = Campaign.create(tmp_path / "camp", config(safety_mode=mode))
    designs = uniform(8, seed=1)
    camp.add_measurements(designs.assign(y=designs["x1"], s=1.0 + designs["x1"] + designs["x2"]))
    proposals = camp.propose(3)
    assert len(proposals) == 3
    assert_confidence_enforced(proposals)
    doubtful = proposals["p_safe"] < CONFIDENCE
    assert doubtful.all()  # every measurement is far over the limit: nothing can be confident
    assert not proposals["meets_confidence"].any()
    assert proposals["role"].isin(NOT_KNOWN_SAFE_ROLES).all()
    assert any(NOT_SAFE_NOTE in note for note in proposals.attrs["notes"])


def test_without_failures_there_is_no_p_feasible_column(probabilistic):
    _, proposals = probabilistic
    assert "p_feasible" not in proposals.columns


# -- (2) safe_set mode ---------------------------------------------------------------------------

SAFE_SET = config(
    safety_mode="safe_set",
    safety=[{"name": "s", "upper": 1.2, "confidence": CONFIDENCE}],
    objectives=[{"name": "y", "goal": "maximize"}],
)
SEED_DESIGNS = pd.DataFrame({"x1": [0.05, 0.15, 0.1, 0.2], "x2": [0.1, 0.05, 0.2, 0.15]})  # safe, near the origin


def sum_lab(designs: pd.DataFrame) -> pd.DataFrame:
    """`y` peaks at (0.9, 0.9); `s = x1 + x2` is safe while <= 1.2, so the optimum is unsafe."""
    designs = designs[PARAMS].reset_index(drop=True)
    return designs.assign(y=-((designs["x1"] - 0.9) ** 2 + (designs["x2"] - 0.9) ** 2), s=designs["x1"] + designs["x2"])


def safe_reach(measured: pd.DataFrame) -> float:
    safe = measured[measured["s"] <= 1.2]
    return float(np.hypot(safe["x1"], safe["x2"]).max())


@pytest.fixture(scope="module")
def safe_set_run(tmp_path_factory):
    """Three rounds of four in safe_set mode from a safe seed near the origin; the lab is the formula."""
    camp = Campaign.create(tmp_path_factory.mktemp("safe") / "camp", SAFE_SET)
    camp.add_measurements(sum_lab(SEED_DESIGNS), source="seed")
    batches, reach = [], [safe_reach(camp.measurements)]
    for r in range(3):
        measured_before = camp.measurements
        proposals = camp.propose(4)
        batches.append((measured_before, proposals))
        camp.add_measurements(sum_lab(proposals), source=f"round {r}")
        reach.append(safe_reach(camp.measurements))
    return camp, batches, reach


def test_safe_set_proposals_expand_or_maximize_and_meet_the_confidence(safe_set_run):
    _, batches, _ = safe_set_run
    for _, proposals in batches:
        assert "safe set" in proposals.attrs["method"]
        assert 1 <= len(proposals) <= 4
        if len(proposals) < 4:  # never filled up with designs the safe set cannot vouch for
            assert any("smaller batch" in note for note in proposals.attrs["notes"])
        roles = set(proposals["role"])
        assert roles <= {"expand", "maximize"} or roles == {"closest-to-safe"}
        if "closest-to-safe" in roles:
            assert any(NOT_SAFE_NOTE in note for note in proposals.attrs["notes"])
        chosen = proposals[proposals["role"] != "closest-to-safe"]
        assert chosen["meets_confidence"].all()
        assert (chosen["p_safe"] >= CONFIDENCE).all()
    assert "expand" in set(batches[0][1]["role"])  # the first batch pushes the boundary


def test_safe_set_proposals_stay_within_reach_of_designs_measured_safe(safe_set_run):
    _, batches, _ = safe_set_run
    for measured, proposals in batches:
        safe = measured[measured["s"] <= 1.2][PARAMS].to_numpy()
        gaps = np.linalg.norm(proposals[PARAMS].to_numpy()[:, None] - safe[None], axis=-1).min(axis=1)
        assert (gaps <= REACH + 1e-9).all()  # unit bounds: encoded and user units agree


def test_safe_set_campaign_rarely_proposes_truly_unsafe_designs(safe_set_run):
    _, batches, _ = safe_set_run
    proposed = pd.concat([proposals for _, proposals in batches], ignore_index=True)
    truly_unsafe = (proposed["x1"] + proposed["x2"]) > 1.2
    assert truly_unsafe.mean() <= 0.25


def test_safe_set_grows_over_the_campaign(safe_set_run):
    _, _, reach = safe_set_run
    assert reach[0] < 0.3
    assert all(later > earlier for earlier, later in zip(reach, reach[1:], strict=False))  # every batch pushes out
    assert reach[-1] > reach[0] + 0.3  # the safe region reached well beyond the seed


def test_safe_set_mode_works_with_a_known_noise_on_the_safety_outcome(tmp_path):
    noisy = {**SAFE_SET, "safety": [{"name": "s", "upper": 1.2, "confidence": CONFIDENCE, "noise_sd": 0.01}]}
    camp = Campaign.create(tmp_path / "camp", noisy)
    camp.add_measurements(sum_lab(SEED_DESIGNS))
    proposals = camp.propose(4)
    assert "safe set" in proposals.attrs["method"], proposals.attrs["notes"]
    assert set(proposals["role"]) <= {"expand", "maximize"}


INTEGER_SAFE_SET = config(
    safety_mode="safe_set",
    parameters=[{"name": "i", "type": "integer", "bounds": [0, 3]}, {"name": "j", "type": "integer", "bounds": [0, 3]}],
    safety=[{"name": "s", "upper": 5.0, "confidence": CONFIDENCE}],
)
INTEGER_SEED = pd.DataFrame({"i": [0, 1, 0, 1, 2], "j": [0, 0, 1, 1, 0]})


def integer_campaign(path) -> Campaign:
    camp = Campaign.create(path, INTEGER_SAFE_SET)
    camp.add_measurements(INTEGER_SEED.assign(y=INTEGER_SEED["i"] + INTEGER_SEED["j"], s=INTEGER_SEED["i"]))
    return camp


def test_safe_set_batches_on_integer_parameters_are_distinct(tmp_path):
    proposals = integer_campaign(tmp_path / "camp").propose(4)
    assert not proposals[["i", "j"]].duplicated().any(), proposals


def test_safe_set_on_integer_parameters_proposes_unmeasured_designs(tmp_path):
    proposals = integer_campaign(tmp_path / "camp").propose(4)
    measured = set(map(tuple, INTEGER_SEED.to_numpy()))
    proposed = set(map(tuple, proposals[["i", "j"]].to_numpy()))
    assert proposed - measured, proposals  # e.g. (2, 1) or (0, 2): one step from a safe design, truly safe


# -- (7) batch diversity ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["probabilistic", "safe_set"])
def test_a_batch_holds_distinct_designs(tmp_path, mode):
    camp = Campaign.create(tmp_path / "camp", config(safety_mode=mode))
    camp.add_measurements(lab(uniform(6, seed=5)))
    proposals = camp.propose(5)
    assert len(proposals) == 5
    assert pairwise_distinct(proposals, PARAMS)


def test_a_pool_batch_holds_distinct_designs(tmp_path):
    camp = Campaign.create(tmp_path / "camp", config())
    camp.add_measurements(lab(uniform(6, seed=5)))
    pool = uniform(30, seed=6).round(2)
    proposals = camp.propose(5, candidates=pd.concat([pool, pool], ignore_index=True))  # each design twice
    assert len(proposals) == 5
    assert pairwise_distinct(proposals, PARAMS)
