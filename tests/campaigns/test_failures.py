"""Failed runs: the `failed` column, counts, and the probability of success in proposals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from campaigns import Campaign
from design import InputError
from tests.campaigns.safety_support import (
    config,
    invoke,
    lab,
    uniform,
)

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
