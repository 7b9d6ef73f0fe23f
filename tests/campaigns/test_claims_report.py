"""The report checks p_safe and the predicted intervals against what the proposals measured."""

from __future__ import annotations

import numpy as np
import pandas as pd

from campaigns import Campaign
from campaigns.claims_report import coverage_table, reliability_table
from tests.campaigns.safety_support import config, invoke, lab, uniform


def _checked(p_safe, safe, failed=None) -> pd.DataFrame:
    n = len(p_safe)
    return pd.DataFrame(
        {
            "p_safe": p_safe,
            "measured_safe": safe,
            "measured_failed": [False] * n if failed is None else failed,
        }
    )


def test_reliability_bins_count_safe_outcomes_and_leave_failed_runs_out():
    table = reliability_table(
        _checked([0.97, 0.96, 0.98, 0.3, 0.2, 0.97], [True, True, False, False, True, True], [False] * 5 + [True])
    )
    high = table[table["p_safe_bin"] == "[0.95, 0.99)"].iloc[0]
    assert (high["n"], round(high["observed_safe"], 3)) == (3, 0.667)  # the failed 0.97 is not counted
    assert high["low_95"] < 0.667 < high["high_95"]
    low = table[table["p_safe_bin"] == "[0, 0.5)"].iloc[0]
    assert (low["n"], low["observed_safe"]) == (2, 0.5)


def test_coverage_is_the_share_inside_mean_plus_minus_1_96_sd():
    df = pd.DataFrame(
        {
            "y_mean": [0.0, 0.0, 0.0, 0.0],
            "y_sd": [1.0, 1.0, 1.0, 1.0],
            "measured_y": [0.5, -1.9, 2.5, np.nan],
            "measured_failed": [False, False, False, True],
        }
    )
    table = coverage_table(df, ["y"])
    assert table.to_dict("records") == [{"outcome": "y", "n": 3, "coverage_95": 2 / 3}]


def test_the_report_checks_the_claims_of_measured_proposals(tmp_path):
    camp = Campaign.create(tmp_path / "camp", config())
    camp.add_measurements(lab(uniform(8, seed=0)))
    proposals = camp.propose(4)
    camp.add_measurements(lab(proposals))
    done = camp.measured_proposals()
    assert len(done) == 4
    assert np.allclose(done["measured_s"], proposals["x1"])  # the lab's s = x1, matched design by design
    out = tmp_path / "report"
    assert invoke("report", camp.path, "-o", out).exit_code == 0
    page = (out / "index.html").read_text()
    assert "Were the claims honest?" in page and 'src="reliability.png"' in page
    assert (out / "reliability.png").read_bytes().startswith(b"\x89PNG")
