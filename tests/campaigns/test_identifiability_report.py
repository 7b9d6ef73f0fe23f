"""`valley report`'s "Identifiability of the mean function" section."""

from __future__ import annotations

from benchmarks.identifiability import measurements
from campaigns import Campaign
from campaigns.identifiability_report import identifiability_section
from campaigns.report import write_report
from data import nanoparticles
from tests.campaigns.safety_support import config

MEAN = {"kind": "emax", "input": "dose_ug", "outcome": "tcell_activation"}


def test_report_shows_the_mean_identifiability_section(tmp_path):
    cfg = nanoparticles.config() | {"surrogate": {"kind": "gp", "mean": MEAN}}
    camp = Campaign.create(tmp_path / "camp", cfg)
    camp.add_measurements(measurements("random", 10, seed=0))
    page = write_report(camp, tmp_path / "report", diagnostics=False).read_text()
    section = page[page.index("<h2>Identifiability of the mean function</h2>") :]
    assert "<code>tcell_activation</code>" in section and "on 10 measurements" in section
    for name in ("E0", "Emax", "EC50", "Hill", "profile_95", "relative_se", "condition"):
        assert name in section
    assert "The measurements do not pin down" in section or "pin down every parameter" in section


def test_no_section_without_a_mean(tmp_path):
    camp = Campaign.create(tmp_path / "camp", config())
    assert identifiability_section(camp) == []
