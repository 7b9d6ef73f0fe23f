"""A real headless browser for the tests: Debian's Chromium driven by Selenium.

`chromium_fixture()` makes a module-scoped pytest fixture that yields a Selenium driver. Without
Chromium, chromedriver or the `selenium` package the tests that use it are skipped with the reason,
unless `VALLEY_REQUIRE_BROWSER=1` (set by `.ci/run`, which installs the browser first): then they fail.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

WINDOW = (1000, 800)  # width, height in CSS pixels
CANDIDATES = {"chromium": ["chromium", "chromium-browser", "google-chrome"], "chromedriver": ["chromedriver"]}


def _find(kind: str) -> str | None:
    for name in CANDIDATES[kind]:
        found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").is_file() else None)
        if found:
            return found
    return None


def missing_browser() -> str | None:
    """Why no browser can be started here, or None when one can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (pip install -e '.[dev]')"
    lacking = [kind for kind in CANDIDATES if _find(kind) is None]
    if lacking:
        return (
            f"{' and '.join(lacking)} not found (Debian: apt-get install chromium chromium-driver; see .ci/browser.sh)"
        )
    return None


def start_chromium(window: tuple[int, int] = WINDOW):
    """A headless Chromium driver with the given window size; skips (or fails, see module doc) without one."""
    why = missing_browser()
    if why:
        if os.environ.get("VALLEY_REQUIRE_BROWSER") == "1":
            pytest.fail(f"VALLEY_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(f"no headless browser: {why}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _find("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={window[0]},{window[1]}")
    driver = webdriver.Chrome(service=Service(executable_path=_find("chromedriver")), options=options)
    driver.set_page_load_timeout(120)
    return driver


def chromium_fixture(window: tuple[int, int] = WINDOW):
    """A module-scoped pytest fixture yielding one headless Chromium driver (`start_chromium`)."""

    @pytest.fixture(scope="module")
    def browser():
        driver = start_chromium(window)
        try:
            yield driver
        finally:
            driver.quit()

    return browser
