"""The campaign model: one pipeline for propose, report and design; prior knowledge in the outcomes' units."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import KFold

from campaigns import Campaign
from campaigns.campaign_model import fit_campaign_model
from campaigns.config import CampaignConfig
from campaigns.design_cli import run_design
from campaigns.model_cache import CACHE_DIR
from campaigns.propose import make_proposals
from campaigns.report import surrogate_diagnostics

torch.set_num_threads(1)

DOSE = {"name": "dose", "type": "continuous", "bounds": [0.1, 10.0], "log": True}


def _emax(dose: np.ndarray) -> np.ndarray:
    return 0.05 + 2.0 * dose**1.5 / (2.0**1.5 + dose**1.5)  # from 0.05 to 1.9: wide enough to be logged


def test_an_emax_mean_is_fitted_to_the_outcome_in_its_units():
    cfg = CampaignConfig.model_validate(
        {
            "name": "dose",
            "parameters": [DOSE],
            "objectives": [{"name": "tcell", "goal": "maximize"}],
            "surrogate": {"kind": "gp", "mean": {"kind": "emax", "input": "dose"}},
        }
    )
    dose = np.geomspace(0.1, 10.0, 12)
    df = pd.DataFrame({"dose": dose, "tcell": _emax(dose)})
    fitted = fit_campaign_model(cfg, df)
    mean = fitted.model.models[0].mean_module
    assert fitted.warp.scale_of("tcell") == "tcell"  # not log(tcell): the mean speaks about tcell
    assert any("'tcell' is modelled in its units" in note for note in fitted.notes)
    assert abs(mean.hill.item() - 1.5) < 0.3 and abs(mean.ec50.item() - 2.0) < 0.5
    without_mean = fit_campaign_model(
        cfg.model_copy(update={"surrogate": cfg.surrogate.model_copy(update={"mean": None})}), df
    )
    assert without_mean.warp.scale_of("tcell") == "log(tcell)"  # the same data are logged with no prior on them


def test_a_bound_on_a_limited_outcome_bounds_the_outcome_not_its_bilog():
    cfg = CampaignConfig.model_validate(
        {
            "name": "bounded",
            "seed": 0,
            "parameters": [{"name": "x", "type": "continuous", "bounds": [0, 1]}],
            "objectives": [{"name": "f", "goal": "maximize"}],
            "safety": [{"name": "c", "upper": 1.5}],
            "surrogate": {
                "kind": "ensemble",
                "members": 2,
                "epochs": 150,
                "physics": [{"kind": "bounded", "outcome": "c", "lower": 0, "weight": 1.0}],
            },
        }
    )
    x = np.linspace(0, 1, 24)
    df = pd.DataFrame({"x": x, "f": np.sin(3 * x), "c": 0.2 + x})  # c from 0.2 to 1.2: safe, above 0
    fitted = fit_campaign_model(cfg, df)
    assert fitted.warp.scale_of("c") == "c"
    mean, _ = fitted.predict(torch.linspace(0, 1, 101, dtype=torch.double).unsqueeze(-1))
    c = mean[:, 1].numpy()
    # on bilog(c - 1.5) a lower bound of 0 would have pushed every prediction above 1.5
    assert c.min() > -0.05 and np.sqrt(np.mean((c - (0.2 + np.linspace(0, 1, 101))) ** 2)) < 0.15


WIDE = {
    "name": "wide",
    "seed": 3,
    "parameters": [
        {"name": "x1", "type": "continuous", "bounds": [0, 1]},
        {"name": "x2", "type": "continuous", "bounds": [0, 1]},
    ],
    "objectives": [{"name": "cost", "goal": "minimize"}],
    "safety": [{"name": "stress", "upper": 1.0}],
}


def _wide_rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x1": rng.uniform(size=n), "x2": rng.uniform(size=n)})
    df["cost"] = np.exp(4 * df["x1"] - 2 * df["x2"])  # spans more than 10x: modelled as log(cost)
    df["stress"] = 2 * df["x1"] * df["x2"] - 0.3
    return df


def test_report_cross_validates_the_predictions_propose_shows(tmp_path):
    cfg = CampaignConfig.model_validate(WIDE)
    df = _wide_rows(15, seed=0)
    camp = Campaign.create(tmp_path / "camp", WIDE)
    camp.add_measurements(df)
    cv_df, oof_df, _ = surrogate_diagnostics(camp)
    assert list(cv_df["modelled_as"]) == ["log(cost)", "bilog(stress - 1)"]
    train, test = next(iter(KFold(5, shuffle=True, random_state=cfg.seed).split(df)))
    shown = make_proposals(cfg, df.iloc[train], df.iloc[:0], len(test), df.iloc[test], seed=cfg.seed).table
    shown = shown.set_index(["x1", "x2"]).loc[list(zip(df["x1"].iloc[test], df["x2"].iloc[test], strict=True))]
    for name in ["cost", "stress"]:
        cv = oof_df[oof_df["outcome"] == name].set_index("row").loc[test]
        assert np.allclose(cv["mean"], shown[f"{name}_mean"], rtol=1e-4)
        assert np.allclose(cv["sd"], shown[f"{name}_sd"], rtol=1e-4)


def test_design_reuses_the_model_propose_fitted(tmp_path):
    camp = Campaign.create(tmp_path / "camp", WIDE)
    camp.add_measurements(_wide_rows(12, seed=1))
    camp.propose(2)
    cached = sorted((camp.path / CACHE_DIR).iterdir())
    designs = run_design(camp.path, 2, ["cost=min", "stress<=1"], starts=32, seed=0)
    assert sorted((camp.path / CACHE_DIR).iterdir()) == cached  # a cache hit: no new fit
    assert "'cost' is modelled as log(cost)" in " ".join(designs.attrs["notes"])
    assert (designs["cost_mean"] > 0).all()  # in the units of cost, not of its log


def test_claims_that_failed_widen_the_safety_model_and_are_recorded_with_the_proposals():
    cfg = CampaignConfig.model_validate(WIDE)
    df = _wide_rows(14, seed=2)
    plain = fit_campaign_model(cfg, df)
    rng = np.random.default_rng(0)
    claims = pd.DataFrame(
        {
            "stress_mean": np.zeros(12),
            "stress_sd": np.full(12, 0.2),
            "stress_widened": np.full(12, 2.0),  # recorded widening: the unwidened sd was 0.1
            "measured_stress": rng.normal(0.15, 0.15, 12),  # errors of about 1.5 +- 1.5 unwidened sds
            "measured_failed": np.zeros(12, dtype=bool),
        }
    )
    widened = fit_campaign_model(cfg, df, claims_df=claims)
    assert widened.widened["stress"] > max(1.8, plain.widened["stress"] + 0.3)
    assert any("measured proposals it missed" in note for note in widened.notes)
    X = torch.tensor([[0.9, 0.45]], dtype=torch.double)  # stress 0.51 against a limit of 1: near, inside
    assert widened.p_safe(X) < plain.p_safe(X)
    _, sd_plain = plain.predict(X)
    _, sd_widened = widened.predict(X)
    assert sd_widened[0, 1] > 1.2 * sd_plain[0, 1]  # the plain fit is widened too (few points), less
    table = make_proposals(cfg, df, df.iloc[:0], 2, seed=0, claims_df=claims).table
    assert np.allclose(table["stress_widened"], widened.widened["stress"])


def test_cautious_extrapolation_widens_the_safety_model_away_from_the_data_only():
    df = _wide_rows(48, seed=4)
    df = df[(df["x1"] < 0.5) & (df["x2"] < 0.5)]  # 14 designs in one corner of the square
    fitted = fit_campaign_model(CampaignConfig.model_validate(WIDE), df)
    cautious = fit_campaign_model(CampaignConfig.model_validate({**WIDE, "safety_extrapolation": "cautious"}), df)
    assert any("safety_extrapolation cautious" in note for note in cautious.notes)
    assert not any("safety_extrapolation" in note for note in fitted.notes)
    beyond = torch.tensor([[0.6, 0.6]], dtype=torch.double)  # a step beyond the measured corner
    assert cautious.predict(beyond)[1][0, 1] > 1.2 * fitted.predict(beyond)[1][0, 1]
    near = torch.tensor(df[["x1", "x2"]].to_numpy()[:3], dtype=torch.double)
    mean_fitted, sd_fitted = fitted.predict(near)
    mean_cautious, sd_cautious = cautious.predict(near)
    assert torch.allclose(mean_cautious[:, 1], mean_fitted[:, 1], atol=0.02)  # at the data, the data hold
    assert torch.allclose(sd_cautious[:, 1], sd_fitted[:, 1], atol=0.02)
    assert torch.equal(mean_cautious[:, 0], mean_fitted[:, 0])  # the objective's model is not touched
