"""`valley report`: the page and its plots."""

from __future__ import annotations

from campaigns import Campaign
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
