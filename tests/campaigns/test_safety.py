"""Tests for safe Bayesian optimization end to end: confidence, safe sets, failures, several objectives,
mixtures, replicates and noise, batch diversity, and the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from campaigns import Campaign
from campaigns.cli import app
from design import InputError, make_acquisition
from design.bo import reference_point
from design.safe_set import REACH
from surrogates import fit_outcome_models

FAST = {"num_restarts": 2, "raw_samples": 32, "mc_samples": 32}
PARAMS = ["x1", "x2"]
CONFIDENCE = 0.95
NOT_SAFE_NOTE = "NOT known to be safe"
# Roles of proposals that may miss the confidence: the closest to safe, or (nothing measured safe yet) the
# designs most likely to be safe under samples of the model.
NOT_KNOWN_SAFE_ROLES = {"closest-to-safe", "find-safe"}


def config(**fields) -> dict:
    """A 2-D campaign on the unit square: maximize `y`, keep `s <= 0.6`; `fields` override."""
    base = {
        "name": "safety",
        "seed": 0,
        "parameters": [{"name": p, "type": "continuous", "bounds": [0, 1]} for p in PARAMS],
        "objectives": [{"name": "y", "goal": "maximize"}],
        "safety": [{"name": "s", "upper": 0.6, "confidence": CONFIDENCE}],
        "acquisition": FAST,
    }
    return {**base, **fields}


def lab(designs: pd.DataFrame) -> pd.DataFrame:
    """The "lab" of `config()`: `y` peaks at (0.8, 0.7), beyond the limit; `s = x1` is safe while x1 <= 0.6."""
    designs = designs[PARAMS].reset_index(drop=True)
    return designs.assign(y=-((designs["x1"] - 0.8) ** 2 + (designs["x2"] - 0.7) ** 2), s=designs["x1"])


def uniform(n: int, seed: int) -> pd.DataFrame:
    return pd.DataFrame(np.random.default_rng(seed).uniform(size=(n, 2)), columns=PARAMS)


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_confidence_enforced(proposals: pd.DataFrame) -> None:
    """Each row reaches the confidence, or says it does not: flag, role and a note."""
    meets = proposals["meets_confidence"].to_numpy(dtype=bool)
    np.testing.assert_array_equal(meets, proposals["p_safe"].to_numpy() >= CONFIDENCE)
    short = proposals[~meets]
    assert short["role"].isin(NOT_KNOWN_SAFE_ROLES).all()
    if len(short):
        assert any(NOT_SAFE_NOTE in note for note in proposals.attrs["notes"])


def pairwise_distinct(df: pd.DataFrame, columns: list[str]) -> bool:
    X = df[columns].to_numpy(dtype=float)
    gaps = np.linalg.norm(X[:, None] - X[None], axis=-1)
    return bool((gaps[np.triu_indices(len(X), k=1)] > 1e-6).all())


# -- (1) probabilistic mode --------------------------------------------------------------------


@pytest.fixture(scope="module")
def probabilistic(tmp_path_factory):
    camp = Campaign.create(tmp_path_factory.mktemp("prob") / "camp", config())
    camp.add_measurements(lab(uniform(8, seed=0)))
    return camp, camp.propose(4)


def test_probabilistic_proposals_reach_the_confidence_or_say_so(probabilistic):
    _, proposals = probabilistic
    assert proposals.attrs["method"] == "qLogNEI"
    assert len(proposals) == 4
    assert proposals["p_safe"].between(0, 1).all()
    assert_confidence_enforced(proposals)
    assert proposals["meets_confidence"].any()  # with eight measurements, confident designs exist
    assert set(proposals["role"]) <= {"optimize", "closest-to-safe"}


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
        assert len(proposals) == 4
        roles = set(proposals["role"])
        assert roles <= {"expand", "maximize", "closest-to-safe"}
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
    assert reach[1] > reach[0] + 0.1  # the first batch already measures safe designs beyond the seed
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


# -- (3) failed runs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yes", "no"),
    [
        ("1", "0"),
        ("yes", "no"),
        ("true", "false"),
        (" Yes ", "NO"),
        ("TRUE", ""),
        (1, 0),
        (True, False),
        pytest.param(1.0, np.nan),
        pytest.param("yes", None),
    ],
)
def test_failed_column_is_parsed(tmp_path, yes, no):
    camp = Campaign.create(tmp_path / "camp", config())
    designs = lab(uniform(3, seed=0)).assign(failed=[yes, no, no])
    report = camp.add_measurements(designs)
    assert report.added == 3 and report.failed == 1
    assert camp.measurements["failed"].tolist() == [True, False, False]


def test_a_csv_with_empty_failed_cells_can_be_added(tmp_path):
    Campaign.create(tmp_path / "camp", config())
    table = tmp_path / "week1.csv"
    lab(uniform(3, seed=0)).assign(failed=["yes", "", "no"]).to_csv(table, index=False)  # the middle cell is empty
    result = invoke("add", tmp_path / "camp", table)
    assert result.exit_code == 0, result.output
    assert "Added 3 measurement(s), 1 failed run(s)" in result.stdout


@pytest.mark.parametrize("bad", ["maybe", "2", "-1", "failed"])
def test_a_bad_failed_value_names_row_and_column(tmp_path, bad):
    camp = Campaign.create(tmp_path / "camp", config())
    designs = lab(uniform(3, seed=0)).assign(failed=["no", bad, "yes"])
    designs.index = [2, 3, 4]  # lines in a file
    with pytest.raises(InputError, match=r"row 3, column 'failed'") as caught:
        camp.add_measurements(designs)
    assert repr(bad) in str(caught.value)
    assert camp.measurements.empty  # all or nothing


def test_missing_outcomes_and_failed_flags_both_count_as_failed(tmp_path):
    camp = Campaign.create(tmp_path / "camp", config())
    designs = lab(uniform(5, seed=0))
    designs.loc[1, "y"] = np.nan  # an outcome missing
    designs.loc[2, "s"] = np.nan
    designs["failed"] = ["", "", "", "yes", "1"]  # flagged, outcomes present
    report = camp.add_measurements(designs)
    assert report.added == 5 and report.failed == 4
    again = camp.add_measurements(designs)
    assert again.added == 0 and again.failed == 0


def test_status_counts_runs_flagged_failed(tmp_path):
    camp = Campaign.create(tmp_path / "camp", config())
    designs = lab(uniform(4, seed=0)).assign(failed=["yes", "", "", ""])
    designs.loc[1, "y"] = np.nan
    assert camp.add_measurements(designs).failed == 2
    result = invoke("status", tmp_path / "camp")
    assert result.exit_code == 0
    assert "4 measurement(s), 2 failed" in result.stdout


FAILING_X1 = 0.65  # runs with x1 above this fail


@pytest.fixture(scope="module")
def failures(tmp_path_factory):
    """No safety limit; runs fail where x1 > 0.65 (half leave y empty, half are flagged with a bogus y)."""
    camp = Campaign.create(tmp_path_factory.mktemp("fail") / "camp", config(safety=[]))
    designs = uniform(16, seed=4)
    fails = designs["x1"] > FAILING_X1
    flagged = fails & (np.arange(16) % 2 == 0)
    measured = designs.assign(
        y=np.where(fails & ~flagged, np.nan, np.where(flagged, 100.0, designs["x2"])),
        failed=np.where(flagged, "yes", ""),
    )
    report = camp.add_measurements(measured)
    assert 3 <= int(fails.sum()) <= 13 and flagged.any() and (fails & ~flagged).any()
    near = pd.DataFrame({"x1": [0.85, 0.9, 0.95], "x2": [0.3, 0.6, 0.9]})
    far = pd.DataFrame({"x1": [0.05, 0.1, 0.15], "x2": [0.3, 0.6, 0.9]})
    pool = pd.concat([near, far], ignore_index=True)
    proposals = camp.propose(len(pool), candidates=pool)  # every row comes back, scored
    return camp, report, int(fails.sum()), proposals


def test_failed_runs_are_counted_at_import(failures):
    _, report, n_failed, _ = failures
    assert report.added == 16 and report.failed == n_failed


def test_proposals_carry_a_probability_of_success_lower_near_the_failures(failures):
    _, _, _, proposals = failures
    assert "p_feasible" in proposals.columns and "role" in proposals.columns
    p = proposals["p_feasible"]
    assert ((p > 0) & (p < 1)).all()
    near, far = p[proposals["x1"] > FAILING_X1], p[proposals["x1"] < 0.2]
    assert len(near) == 3 and len(far) == 3
    assert near.max() < far.min()


def test_outcomes_of_runs_flagged_failed_are_ignored(failures):
    _, _, _, proposals = failures
    assert (proposals["y_mean"] < 2.0).all()  # the flagged runs' bogus y = 100 never reached the model


def test_without_failures_there_is_no_p_feasible_column(probabilistic):
    _, proposals = probabilistic
    assert "p_feasible" not in proposals.columns


# -- (4) several objectives ----------------------------------------------------------------------

MULTI = config(
    objectives=[{"name": "f1", "goal": "maximize", "reference": -0.5}, {"name": "f2", "goal": "minimize"}],
    safety=[{"name": "s", "upper": 1.5, "confidence": CONFIDENCE}],
)


def multi_lab(designs: pd.DataFrame) -> pd.DataFrame:
    """`f1` rises with x1, `f2` with x1 and x2: a trade-off; `s = x1 + x2`."""
    designs = designs[PARAMS].reset_index(drop=True)
    f1 = designs["x1"]
    f2 = (designs["x1"] - 0.2) ** 2 + designs["x2"]
    return designs.assign(f1=f1, f2=f2, s=designs["x1"] + designs["x2"])


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    path = tmp_path_factory.mktemp("multi") / "camp"
    camp = Campaign.create(path, MULTI)
    measured = multi_lab(uniform(12, seed=2))
    measured.loc[len(measured)] = {"x1": 0.99, "x2": 0.6, "f1": 5.0, "f2": -5.0, "s": 1.59}  # best on both, unsafe
    measured.loc[len(measured)] = {"x1": 0.98, "x2": 0.01, "f1": 6.0, "f2": -6.0, "s": np.nan}  # failed
    camp.add_measurements(measured)
    return camp, camp.propose(3)


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


# -- (8) the report --------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n"


def test_report_writes_a_page_and_a_progress_plot(probabilistic, tmp_path):
    camp, _ = probabilistic
    out = tmp_path / "report"
    result = invoke("report", camp.path, "-o", out)
    assert result.exit_code == 0, result.output
    assert (out / "index.html").is_file()
    assert (out / "progress.png").read_bytes().startswith(PNG)
    assert not (out / "pareto.png").exists()  # one objective
    page = (out / "index.html").read_text()
    assert 'src="progress.png"' in page and "Best safe result" in page


def test_report_with_two_objectives_adds_the_pareto_plot(multi, tmp_path):
    camp, _ = multi
    out = tmp_path / "report"
    result = invoke("report", camp.path, "-o", out)
    assert result.exit_code == 0, result.output
    assert (out / "progress.png").read_bytes().startswith(PNG)
    assert (out / "pareto.png").read_bytes().startswith(PNG)
    page = (out / "index.html").read_text()
    assert 'src="pareto.png"' in page and "Pareto front" in page


def test_report_defaults_to_a_folder_in_the_campaign(tmp_path):
    camp = Campaign.create(tmp_path / "camp", config())
    camp.add_measurements(lab(uniform(3, seed=0)))
    result = invoke("report", camp.path)
    assert result.exit_code == 0, result.output
    assert (camp.path / "report" / "index.html").is_file()


def test_report_on_an_empty_campaign_fails_with_one_line(tmp_path):
    Campaign.create(tmp_path / "camp", config())
    result = invoke("report", tmp_path / "camp")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1 and "no measurements" in result.stderr
    assert not (tmp_path / "camp" / "report").exists()
