"""`valley report` in a real headless browser: the page fits a 1000 px window and every image loads."""

from __future__ import annotations

import numpy as np
import pandas as pd

from campaigns import Campaign
from tests.browser import chromium_fixture
from tests.campaigns.safety_support import FAST, invoke

browser = chromium_fixture(window=(1000, 800))

LONG = [f"particle_{what}_measured_in_standard_units" for what in ("diameter", "zeta_potential", "peg_fraction")]
WIDE = {
    "name": "a_campaign_whose_name_has_no_spaces_" * 4,
    "seed": 0,
    "parameters": [{"name": p, "type": "continuous", "bounds": [0, 1]} for p in LONG],
    "objectives": [{"name": "tcell_activation_fold_change_over_baseline", "goal": "maximize"}],
    "safety": [{"name": "complement_activation_relative_to_control", "upper": 0.7, "confidence": 0.9}],
    "acquisition": FAST,
}


def wide_lab(designs: pd.DataFrame) -> pd.DataFrame:
    designs = designs[LONG].reset_index(drop=True)
    x = designs.to_numpy(dtype=float)
    return designs.assign(
        tcell_activation_fold_change_over_baseline=-((x - 0.6) ** 2).sum(axis=1),
        complement_activation_relative_to_control=x[:, 0],
    )


def test_the_report_of_a_wide_campaign_fits_a_1000px_window_and_its_images_load(browser, tmp_path):
    rng = np.random.default_rng(0)
    first = pd.DataFrame(rng.uniform(size=(8, len(LONG))), columns=LONG)
    camp = Campaign.create(tmp_path / "camp", WIDE)
    camp.add_measurements(wide_lab(first), source="first.csv")
    camp.add_measurements(wide_lab(camp.propose(2)), source="second.csv")  # measured proposals: the claims section
    camp.propose(2)  # open proposals: a wide table of predictions
    out = tmp_path / "report"
    result = invoke("report", camp.path, "-o", out)
    assert result.exit_code == 0, result.output

    browser.get((out / "index.html").as_uri())
    width = browser.execute_script("return window.innerWidth")
    assert 900 <= width <= 1000
    scroll_width = browser.execute_script("return document.documentElement.scrollWidth")
    assert scroll_width <= width, f"the page is {scroll_width} px wide in a {width} px window"
    boxes = browser.execute_script(
        "return Array.from(document.querySelectorAll('.scroll'), e => [e.clientWidth, e.scrollWidth])"
    )
    assert any(inner > outer for outer, inner in boxes)  # a table wider than the page scrolls inside its box
    images = browser.execute_script(
        "return Array.from(document.images, i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])"
    )
    assert len(images) >= 4  # progress, reliability, parity, calibration
    assert all(ok for _, ok in images), [src for src, ok in images if not ok]
