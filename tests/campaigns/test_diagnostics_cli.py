"""`valley report` writes the surrogate diagnostics; `valley status` warns of a poorly calibrated surrogate."""

from __future__ import annotations

import json

import pytest
import torch

import campaigns.report as report_module
from campaigns import Campaign
from campaigns.report import DIAGNOSTICS_CACHE, cv_rows_needed
from tests.campaigns.safety_support import config, invoke, lab, uniform

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def measured_gp(tmp_path_factory):
    camp = Campaign.create(tmp_path_factory.mktemp("diag") / "camp", config())
    camp.add_measurements(lab(uniform(12, seed=0)))
    return camp


@pytest.mark.parametrize("surrogate", [{"kind": "gp"}, {"kind": "ensemble", "members": 2, "epochs": 10}])
def test_report_writes_parity_calibration_and_diagnostics_page(tmp_path, surrogate):
    camp = Campaign.create(tmp_path / "camp", config(surrogate=surrogate))
    camp.add_measurements(lab(uniform(10, seed=1)))
    out = tmp_path / "report"
    result = invoke("report", camp.path, "-o", out)
    assert result.exit_code == 0, result.output
    for name in ("parity.png", "calibration.png", "progress.png"):
        assert (out / name).read_bytes().startswith(PNG), name
    page = (out / "index.html").read_text()
    assert "Surrogate diagnostics" in page and 'src="parity.png"' in page and "coverage_95" in page
    assert "5-fold cross-validation" in page
    details = (out / "diagnostics.html").read_text()
    assert "rmse" in details and "nll" in details and "coverage_68" in details
    cached = json.loads((camp.path / DIAGNOSTICS_CACHE).read_text())
    assert cached["kind"] == surrogate["kind"] and cached["cv"]["outcome"] == ["y", "s"]


def test_report_with_too_few_rows_says_so(tmp_path):
    camp = Campaign.create(tmp_path / "camp", config())
    camp.add_measurements(lab(uniform(cv_rows_needed(2) - 1, seed=0)))
    result = invoke("report", camp.path, "-o", tmp_path / "report")
    assert result.exit_code == 0, result.output
    assert "too few successful measurements" in (tmp_path / "report" / "index.html").read_text()
    assert not (tmp_path / "report" / "parity.png").exists()


def test_status_is_quiet_for_a_well_calibrated_gp(measured_gp):
    result = invoke("status", measured_gp.path)
    assert result.exit_code == 0, result.output
    assert "calibrated" not in result.output
    assert (measured_gp.path / DIAGNOSTICS_CACHE).is_file()  # the next status is instant


def overconfident(cfg, space, seed):
    """A surrogate that predicts the training mean with a tiny interval: badly overconfident."""

    def fit_predict(Xw_train, Y_train, Xw_test):
        mean = torch.nanmean(Y_train, 0).expand(len(Xw_test), -1)
        return mean, torch.full_like(mean, 1e-6)

    return fit_predict


def test_status_warns_for_a_poorly_calibrated_surrogate(tmp_path, monkeypatch):
    monkeypatch.setattr(report_module, "_pipeline_fit_predict", overconfident)
    camp = Campaign.create(tmp_path / "camp", config())
    camp.add_measurements(lab(uniform(12, seed=0)))
    result = invoke("status", camp.path)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: surrogate poorly")]
    assert len(warnings) == 2 and "'s 95% intervals hold" in warnings[0] and "overconfident" in warnings[0]


def test_status_skips_the_check_with_few_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(report_module, "_pipeline_fit_predict", overconfident)
    camp = Campaign.create(tmp_path / "camp", config())
    camp.add_measurements(lab(uniform(5, seed=0)))  # < 2 (d + 1) = 6
    result = invoke("status", camp.path)
    assert result.exit_code == 0 and "calibrated" not in result.output
    assert not (camp.path / DIAGNOSTICS_CACHE).exists()


def test_status_does_not_train_an_ensemble(tmp_path, monkeypatch):
    camp = Campaign.create(tmp_path / "camp", config(surrogate={"kind": "ensemble", "members": 2, "epochs": 5}))
    camp.add_measurements(lab(uniform(12, seed=0)))
    monkeypatch.setattr(report_module, "_pipeline_fit_predict", lambda *a: pytest.fail("status trained"))
    assert invoke("status", camp.path).exit_code == 0
    assert not (camp.path / DIAGNOSTICS_CACHE).exists()
