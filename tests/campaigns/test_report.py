"""`valley report`: the page and its plots."""

from __future__ import annotations

import numpy as np
import pandas as pd

from campaigns import Campaign
from campaigns.report import progress_figure
from surrogates.diagnostics import calibration_verdict
from tests.campaigns.safety_support import (
    config,
    invoke,
    lab,
    uniform,
)

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


# -- the report answers what to run next, how it goes, whether to trust the model ------------------


def test_the_report_shows_open_proposals_with_their_predictions_in_a_scrolling_table(probabilistic, tmp_path):
    camp, proposals = probabilistic
    out = tmp_path / "report"
    assert invoke("report", camp.path, "-o", out).exit_code == 0
    page = (out / "index.html").read_text()
    section = page.split("Open proposals")[1].split("<h2>")[0]
    for column in ["batch_id", "x1", "y_mean", "y_sd", "s_mean", "p_safe", "meets_confidence", "role"]:
        assert f"<th>{column}</th>" in section
    assert f"{proposals['p_safe'].iloc[0]:.4g}" in section  # the p_safe `propose` showed
    assert page.count("<div class='scroll'><table") >= 2  # wide tables scroll inside the page


def test_failed_and_unsafe_runs_are_plotted_distinctly():
    history = pd.DataFrame(
        {
            "round": [0, 0, 0, 1],
            "safe": [True, False, False, True],
            "failed": [False, False, True, False],
            "y": [1.0, 2.0, np.nan, 1.5],
            "best_safe": [1.0, 1.0, 1.0, 1.5],
        }
    )
    ax = progress_figure(history, "y", prefix="").axes[0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert {"safe experiment", "unsafe", "failed (no result)"} <= set(labels)
    failed_marks = [c for c in ax.collections if c.get_label() == "failed (no result)"][0]
    assert failed_marks.get_offsets()[:, 0].tolist() == [3.0]  # at the failed experiment


def test_a_calibration_verdict_talks_about_p_safe_only_for_a_safety_outcome():
    row = {"outcome": "y", "coverage_95": 0.5}
    assert "p_safe" in calibration_verdict(row, limited=True)
    assert "p_safe" not in calibration_verdict(row, limited=False)
    assert "intervals" in calibration_verdict(row, limited=False)
