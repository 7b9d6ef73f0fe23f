"""The `surrogate` section of a campaign: kinds, mean, physics, binary outcomes and trust weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import campaigns.config as config_module
import campaigns.surrogate_builders as builders_module
from campaigns import Campaign, load_config
from design import InputError
from surrogates import EmaxMean
from tests.campaigns.safety_support import config, lab, uniform

TINY = {"members": 2, "epochs": 15}  # a tiny ensemble: seconds, not minutes


def error_of(**fields) -> str:
    with pytest.raises(InputError) as raised:
        load_config(config(**fields))
    message = str(raised.value)
    assert "\n" not in message
    return message


# -- config ----------------------------------------------------------------------------------------


def test_default_surrogate_is_the_gp_and_loads_back():
    cfg = load_config(config())
    assert cfg.surrogate.kind == "gp" and cfg.surrogate.mean is None and cfg.surrogate.physics == []
    full = load_config(
        config(
            surrogate={"kind": "auto", **TINY, "mean": {"kind": "emax", "input": "x1", "outcome": "y"}},
        )
    )
    assert full.surrogate.members == 2 and full.surrogate.mean.kind == "emax"


@pytest.mark.parametrize(
    ("surrogate", "expected"),
    [
        ({"kind": "forest"}, ["surrogate.kind", "'forest'"]),
        ({"members": 0}, ["surrogate.members", "0"]),
        ({"mean": {"kind": "emax", "input": "dose"}}, ["surrogate.mean.input", "'dose'", "x1"]),
        ({"mean": {"kind": "emax"}}, ["surrogate.mean.input is missing"]),
        ({"mean": {"kind": "linear", "outcome": "z"}}, ["surrogate.mean.outcome", "'z'"]),
        ({"kind": "ensemble", "mean": {"kind": "constant"}}, ["surrogate.mean", "ensemble", "kind: gp"]),
        ({"physics": [{"kind": "monotonic", "input": "x1"}]}, ["surrogate.physics[0]", "kind: ensemble"]),
        ({"kind": "ensemble", "physics": [{"kind": "monotonic", "input": "x9"}]}, ["physics[0].input", "'x9'"]),
        ({"kind": "ensemble", "physics": [{"kind": "bounded", "outcome": "y"}]}, ["physics[0]", "lower, upper"]),
        ({"kind": "ensemble", "physics": [{"kind": "saturating", "input": "x1", "outcome": "q"}]}, ["'q'"]),
        ({"kind": "ensemble", "physics": [{"kind": "wavy", "input": "x1"}]}, ["physics[0].kind", "'wavy'"]),
    ],
)
def test_broken_surrogate_sections_name_the_field_and_value(surrogate, expected):
    message = error_of(surrogate=surrogate)
    for part in expected:
        assert part in message, message


def test_ensemble_with_safe_set_is_refused():
    message = error_of(surrogate={"kind": "ensemble"}, safety_mode="safe_set")
    assert "safe_set" in message and "ensemble" in message and "kind: gp" in message


def test_binary_objective_rules():
    binary = {"name": "hit", "goal": "maximize", "type": "binary"}
    assert load_config(config(objectives=[binary])).binary_outcomes == ["hit"]
    assert "only objective" in error_of(objectives=[binary, {"name": "y"}])
    message = error_of(objectives=[{**binary, "goal": "target", "target": 1}])
    assert "objectives[0].goal" in message and "'target'" in message
    assert "objectives[0].type" in error_of(objectives=[{**binary, "type": "boolean"}])


def test_auto_picks_the_ensemble_for_large_data_only():
    cfg = load_config(config(surrogate={"kind": "auto"}))
    assert cfg.surrogate_kind(100) == "gp"
    assert cfg.surrogate_kind(config_module.AUTO_ENSEMBLE_ROWS + 1) == "ensemble"
    safe_set = load_config(config(surrogate={"kind": "auto"}, safety_mode="safe_set"))
    assert safe_set.surrogate_kind(10_000) == "gp"  # the safe set needs one GP per outcome
    assert load_config(config(surrogate={"kind": "ensemble"})).surrogate_kind(5) == "ensemble"


# -- proposals -------------------------------------------------------------------------------------


def test_ensemble_campaign_proposes_with_the_ensemble(tmp_path):
    physics = [{"kind": "monotonic", "input": "x1", "outcome": "s"}]
    camp = Campaign.create(tmp_path / "camp", config(surrogate={"kind": "ensemble", **TINY, "physics": physics}))
    camp.add_measurements(lab(uniform(10, seed=0)))
    proposals = camp.propose(2)
    assert len(proposals) == 2
    assert any("neural ensemble of 2" in note for note in proposals.attrs["notes"])
    for name in ("y", "s"):
        assert np.isfinite(proposals[f"{name}_sd"]).all() and (proposals[f"{name}_sd"] > 0).all()
    assert proposals["p_safe"].between(0, 1).all()


def test_auto_switches_to_the_ensemble_above_the_row_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(config_module, "AUTO_ENSEMBLE_ROWS", 5)
    camp = Campaign.create(tmp_path / "camp", config(surrogate={"kind": "auto", **TINY}))
    camp.add_measurements(lab(uniform(8, seed=1)))
    proposals = camp.propose(1)
    assert any("surrogate auto: 8 measurements" in note for note in proposals.attrs["notes"])
    assert np.isfinite(proposals["y_sd"]).all()


def binary_lab(designs: pd.DataFrame) -> pd.DataFrame:
    """`hit` = 1 in the upper band x2 > 0.6; `s = x1` as in `lab`."""
    measured = lab(designs).drop(columns="y")
    return measured.assign(hit=(measured["x2"] > 0.6).astype(int))


def test_binary_objective_proposes_by_probability(tmp_path):
    cfg = config(objectives=[{"name": "hit", "goal": "maximize", "type": "binary"}], surrogate={**TINY, "epochs": 60})
    camp = Campaign.create(tmp_path / "camp", cfg)
    camp.add_measurements(binary_lab(uniform(14, seed=3)))
    proposals = camp.propose(3)
    assert proposals.attrs["method"] == "P(hit = 1) ranking"
    assert "p_hit" in proposals and "hit_mean" not in proposals
    assert proposals["p_hit"].between(0, 1).all()
    assert {"s_mean", "s_sd", "p_safe", "meets_confidence", "role"} <= set(proposals.columns)
    assert proposals["meets_confidence"].all()
    assert proposals["p_hit"].min() > 0.5  # the classifier learned where hits are


def test_binary_objective_with_one_class_only_is_space_filling(tmp_path):
    camp = Campaign.create(tmp_path / "camp", config(objectives=[{"name": "hit", "type": "binary"}]))
    measured = binary_lab(uniform(6, seed=0)).assign(hit=0)
    camp.add_measurements(measured)
    proposals = camp.propose(2)
    assert proposals.attrs["method"] == "space-filling"
    assert any("both 0 and 1" in note for note in proposals.attrs["notes"])


def test_binary_outcome_values_must_be_0_or_1(tmp_path):
    camp = Campaign.create(tmp_path / "camp", config(objectives=[{"name": "hit", "type": "binary"}]))
    measured = binary_lab(uniform(4, seed=0)).astype({"hit": float})
    measured.loc[2, "hit"] = 0.5
    with pytest.raises(InputError, match=r"row 2, column 'hit': 0\.5 is not 0 or 1"):
        camp.add_measurements(measured)
    assert camp.measurements.empty


# -- trust weights and the mean --------------------------------------------------------------------


def capture_gp_fits(monkeypatch) -> list[dict]:
    calls: list[dict] = []
    real = builders_module.fit_outcome_models

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(builders_module, "fit_outcome_models", spy)
    return calls


def test_weight_column_reaches_the_gp(tmp_path, monkeypatch):
    calls = capture_gp_fits(monkeypatch)
    camp = Campaign.create(tmp_path / "camp", config())
    measured = lab(uniform(8, seed=0)).assign(weight=[1, 0.25, 1, 1, "", 1, 2, 1])
    camp.add_measurements(measured)
    assert camp.measurements["weight"].tolist() == [1, 0.25, 1, 1, 1, 1, 2, 1]
    camp.propose(1)
    np.testing.assert_allclose(calls[-1]["weights"].numpy(), [1, 0.25, 1, 1, 1, 1, 2, 1])


def test_all_ones_weights_change_nothing(tmp_path, monkeypatch):
    calls = capture_gp_fits(monkeypatch)
    camp = Campaign.create(tmp_path / "camp", config())
    camp.add_measurements(lab(uniform(8, seed=0)).assign(weight=1.0))
    assert "weight" not in camp.measurements  # stored only when not 1: same rows, same fingerprints
    camp.propose(1)
    assert calls[-1]["weights"] is None and calls[-1]["mean_modules"] is None


@pytest.mark.parametrize("bad", ["heavy", 0, -1.0])
def test_bad_weights_are_refused_naming_row_and_column(tmp_path, bad):
    camp = Campaign.create(tmp_path / "camp", config())
    measured = lab(uniform(4, seed=0)).assign(weight=1.0)
    measured["weight"] = measured["weight"].astype(object)
    measured.loc[3, "weight"] = bad
    with pytest.raises(InputError, match=rf"row 3, column 'weight': {bad!r} is not a positive number"):
        camp.add_measurements(measured)
    assert camp.measurements.empty


def test_weight_column_is_trust_weight_when_weight_is_an_outcome(tmp_path):
    cfg = load_config(config(objectives=[{"name": "weight", "goal": "minimize"}]))
    assert cfg.weight_column == "trust_weight"


def test_emax_mean_is_used_for_its_outcome(tmp_path, monkeypatch):
    calls = capture_gp_fits(monkeypatch)
    cfg = config(surrogate={"mean": {"kind": "emax", "input": "x1", "outcome": "y"}})
    camp = Campaign.create(tmp_path / "camp", cfg)
    camp.add_measurements(lab(uniform(8, seed=0)))
    proposals = camp.propose(1)
    y_mean, s_mean = calls[-1]["mean_modules"]
    assert isinstance(y_mean, EmaxMean) and s_mean is None
    assert np.isfinite(proposals["y_mean"]).all()
