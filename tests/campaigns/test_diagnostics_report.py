"""Tests for the diagnostics page: parity and calibration PNGs and the HTML table."""

from __future__ import annotations

import torch

from campaigns.diagnostics_report import plot_calibration, plot_parity, write_diagnostics_html
from surrogates import cross_validate, fit_predict_gp


def test_diagnostics_page_with_plots(tmp_path):
    X = torch.rand(20, 2, dtype=torch.double, generator=torch.Generator().manual_seed(0))
    Y = torch.stack([X.sum(-1), torch.sin(3 * X[:, 0])], -1)
    cv_df, oof_df = cross_validate(fit_predict_gp, X, Y, k=4, outcome_names=["yield", "purity"])
    pngs = [plot_parity(oof_df, tmp_path / "parity.png"), plot_calibration(oof_df, tmp_path / "calibration.png")]
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    page = write_diagnostics_html(tmp_path / "report", cv_df, pngs)
    text = page.read_text()
    assert page.name == "diagnostics.html" and "coverage_95" in text and "purity" in text
    assert '<img src="parity.png"' in text and "calibrated" in text
