"""`valley serve`: the dashboard, driven by a real headless browser and by starlette's TestClient."""

from __future__ import annotations

import socket
import threading
import time

import pandas as pd
import pytest

from campaigns import Campaign
from campaigns.serve import exposure_warning, make_app
from tests.browser import chromium_fixture
from tests.campaigns.safety_support import config, invoke, lab, uniform

browser = chromium_fixture()


def seeded(path, **fields) -> Campaign:
    camp = Campaign.create(path, config(**fields))
    camp.add_measurements(lab(uniform(6, seed=0)), source="seed.csv")
    return camp


def snapshot(camp_dir) -> tuple[pd.DataFrame, bytes]:
    return Campaign.open(camp_dir).measurements, (camp_dir / "campaign.db").read_bytes()


def bad_table(path):
    """Two good rows, then text in the number column x1 (line 4 of the file)."""
    path.write_text("x1,x2,y,s\n0.1,0.2,-0.6,0.1\n0.3,0.4,-0.34,0.3\nabc,0.5,-0.5,0.2\n")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The real server (uvicorn in a thread) on a free local port, with a seeded tiny campaign."""
    import uvicorn

    camp_dir = tmp_path_factory.mktemp("serve") / "camp"
    seeded(camp_dir)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = make_app(camp_dir, allowed_hosts=["127.0.0.1", "localhost"])
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "the server did not start"
    yield f"http://127.0.0.1:{port}", camp_dir
    srv.should_exit = True
    thread.join(timeout=10)
    sock.close()


def submit(driver, form_id: str, timeout: float = 120) -> None:
    """Press a form's submit button and wait for the next page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, f"#{form_id} button[type=submit]").click()
    WebDriverWait(driver, timeout).until(EC.staleness_of(old))
    WebDriverWait(driver, timeout).until(lambda d: d.execute_script("return document.readyState") == "complete")


def test_the_dashboard_in_a_browser_upload_bad_then_good_then_propose(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    url, camp_dir = server
    browser.get(url + "/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "safety"
    assert "6 measurement(s)" in browser.find_element(By.ID, "counts").text
    images = browser.find_elements(By.TAG_NAME, "img")
    assert images and all(browser.execute_script("return arguments[0].naturalWidth", img) > 0 for img in images)

    # a bad row: the one-line error of `valley add`, and nothing stored
    bad = bad_table(tmp_path / "week1.csv")
    before, db_before = snapshot(camp_dir)
    browser.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(bad))
    submit(browser, "upload")
    shown = browser.find_element(By.ID, "error").text
    copy = tmp_path / "copy"
    Campaign.create(copy, config()).add_measurements(lab(uniform(6, seed=0)), source="seed.csv")
    cli = invoke("add", copy, bad)
    assert cli.exit_code == 1
    assert shown == cli.stderr.strip()  # the same line `valley add` prints
    assert shown.startswith("error: ") and "week1.csv" in shown and "x1" in shown
    after, db_after = snapshot(camp_dir)
    pd.testing.assert_frame_equal(before, after)
    assert db_after == db_before

    # a good file: its rows are added
    good = tmp_path / "week2.csv"
    lab(uniform(3, seed=5)).to_csv(good, index=False)
    browser.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(good))
    submit(browser, "upload")
    assert "Added 3 measurement(s)" in browser.find_element(By.ID, "message").text
    assert not browser.find_elements(By.ID, "error")
    assert len(Campaign.open(camp_dir).measurements) == 9
    assert "9 measurement(s)" in browser.find_element(By.ID, "counts").text

    # propose: the new batch's designs are on the page
    n = browser.find_element(By.CSS_SELECTOR, "#propose input[name=n]")
    n.clear()
    n.send_keys("2")
    submit(browser, "propose")
    batch = Campaign.open(camp_dir).open_proposal_details()
    assert len(batch) == 2
    assert "Proposed batch 1" in browser.find_element(By.ID, "message").text
    open_table = browser.find_element(By.ID, "open-proposals").text
    for x1, x2 in batch[["x1", "x2"]].itertuples(index=False):
        assert f"{x1:.4g}" in open_table and f"{x2:.4g}" in open_table
    assert "p_safe" in open_table
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    browser.refresh()  # the batch was made once: reloading the page does not propose again
    assert len(Campaign.open(camp_dir).open_proposal_details()) == 2


# -- without a browser -----------------------------------------------------------------------------


@pytest.fixture
def client(tmp_path):
    from starlette.testclient import TestClient

    camp_dir = tmp_path / "camp"
    seeded(camp_dir, name="<b>lab & co</b>")
    with TestClient(make_app(camp_dir)) as tc:  # runs the lifespan: the app's temporary folder is removed
        yield tc, camp_dir


def test_a_bad_row_shows_the_add_error_and_stores_nothing(client, tmp_path):
    tc, camp_dir = client
    before, db_before = snapshot(camp_dir)
    bad = bad_table(tmp_path / "bad.csv")
    response = tc.post("/upload", files={"table": ("bad.csv", bad.read_bytes(), "text/csv")})
    assert response.status_code == 400
    assert "<p class='error' id='error'>error: bad.csv" in response.text and "x1" in response.text
    after, db_after = snapshot(camp_dir)
    pd.testing.assert_frame_equal(before, after)
    assert db_after == db_before


def test_user_text_is_escaped_and_the_page_shows_the_plot(client):
    tc, _ = client
    page = tc.get("/").text
    assert "&lt;b&gt;lab &amp; co&lt;/b&gt;" in page and "<b>lab" not in page
    assert tc.get("/plot/progress.png").content.startswith(b"\x89PNG")
    assert tc.get("/plot/pareto.png").status_code == 404  # one objective
    evil = "<script>alert(1)</script>.csv"
    response = tc.post("/upload", files={"table": (evil, b"x1,x2\n", "text/csv")})
    assert response.status_code == 400 and "<script>alert" not in response.text


def test_a_cross_site_post_and_a_bad_batch_size_are_refused(client):
    tc, camp_dir = client
    response = tc.post("/propose", data={"n": "2"}, headers={"Origin": "http://evil.example"})
    assert response.status_code == 403
    response = tc.post("/propose", data={"n": "two"})
    assert response.status_code == 400 and "n must be a whole number" in response.text
    assert Campaign.open(camp_dir).proposals.empty


def test_the_full_report_is_written_and_served(client):
    tc, _ = client
    page = tc.get("/report")  # follows the redirect
    assert page.status_code == 200 and "Best safe result" in page.text
    assert tc.get("/report/progress.png").content.startswith(b"\x89PNG")
    assert tc.get("/report/../config.yaml").status_code == 404


def test_only_a_deliberate_host_exposes_it_and_the_command_says_so(tmp_path):
    assert exposure_warning("127.0.0.1") is None
    assert "anyone" in exposure_warning("0.0.0.0")
    result = invoke("serve", tmp_path / "nothing")
    assert result.exit_code == 1 and "not a Valley campaign" in result.stderr
