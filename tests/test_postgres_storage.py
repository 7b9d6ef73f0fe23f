"""PostgreSQL campaigns against a real server: the storage contract of campaigns/storage.py, on a shared database.

The server's URL comes from VALLEY_TEST_POSTGRES_URL (`.ci/postgres.sh start` prints one); each
test gets a fresh database on it, dropped afterwards. Without the URL these tests skip, saying
why; with VALLEY_REQUIRE_POSTGRES=1 (as .ci/run sets) a missing or unreachable server fails them.
Proposals here are space-filling (too few measurements for a model), so the tests stay fast.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid

import numpy as np
import pandas as pd
import pytest
import yaml
from sqlalchemy import create_engine, make_url
from sqlalchemy import exc as sa_exc
from typer.testing import CliRunner

import campaigns.postgres
import campaigns.storage
from campaigns import Campaign
from campaigns.cli import app
from campaigns.postgres import PostgresStore
from campaigns.storage import TABLES, Store
from design import InputError
from tests.campaigns.test_hardening import one_error_line

SERVER = os.environ.get("VALLEY_TEST_POSTGRES_URL", "")
REQUIRED = os.environ.get("VALLEY_REQUIRE_POSTGRES") == "1"
CONFIG = {
    "name": "shared",
    "seed": 3,
    "parameters": [
        {"name": "x1", "type": "continuous", "bounds": [0, 1]},
        {"name": "x2", "type": "continuous", "bounds": [0, 1]},
        {"name": "x3", "type": "continuous", "bounds": [0, 1]},
    ],
    "objectives": [{"name": "y", "goal": "maximize"}],
    "safety": [{"name": "s", "upper": 0.8}],
}


def rows(n: int, start: float) -> pd.DataFrame:
    """`n` distinct measurements; fewer than 4 successful ones keep proposals space-filling."""
    x = start + 0.001 * np.arange(n)
    return pd.DataFrame({"x1": x, "x2": 1 - x, "x3": x / 2, "y": [np.nan] * n, "s": 0.1 * x})


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def server() -> str:
    """The test server's URL: skip (or, in CI, fail) without one."""
    why = ""
    if not SERVER:
        why = "no PostgreSQL server: set VALLEY_TEST_POSTGRES_URL (`.ci/postgres.sh start` prints one)"
    else:
        try:
            engine = create_engine(make_url(SERVER).set(drivername="postgresql+psycopg"))
            with engine.connect():
                pass
            engine.dispose()
        except (sa_exc.SQLAlchemyError, ImportError) as error:
            why = f"the PostgreSQL server at VALLEY_TEST_POSTGRES_URL cannot be reached ({error})"
    if why and REQUIRED:
        pytest.fail(f"VALLEY_REQUIRE_POSTGRES=1 but {why}")
    if why:
        pytest.skip(why)
    return SERVER


@pytest.fixture
def pg_url(server, tmp_path, monkeypatch):
    """A fresh, empty database on the test server (dropped afterwards); model caches under tmp_path."""
    monkeypatch.setenv("VALLEY_CACHE_DIR", str(tmp_path / "cache"))
    name = f"valley_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(server).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    yield url
    for key in [k for k in campaigns.postgres._ENGINES if k[1] == url]:
        campaigns.postgres._ENGINES.pop(key).dispose()
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    admin.dispose()


def _raw(url: str):
    return create_engine(make_url(url).set(drivername="postgresql+psycopg"))


def test_postgres_init_add_propose_export_round_trip_matches_a_directory_campaign(pg_url, tmp_path):
    config = tmp_path / "campaign.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    week1 = tmp_path / "week1.csv"
    rows(3, 0.1).to_csv(week1, index=False)
    exports = []
    for where in (pg_url, tmp_path / "camp"):
        assert invoke("init", where, "--config", config).exit_code == 0
        assert "Added 3 measurement(s)" in invoke("add", where, week1).stdout
        again = invoke("add", where, week1)
        assert again.exit_code == 0 and "skipped 3 duplicate(s)" in again.stdout
        assert invoke("propose", where, "-n", "2", "-o", tmp_path / "next.csv").exit_code == 0
        status = invoke("status", where)
        assert status.exit_code == 0 and "3 measurement(s), 3 failed; 2 open proposal(s)" in status.stdout
        out = tmp_path / f"export{len(exports)}.csv"
        assert invoke("export", where, "-o", out).exit_code == 0
        exports.append(pd.read_csv(out).drop(columns=["added_at", "created_at"]))
    pd.testing.assert_frame_equal(exports[0], exports[1])  # the same campaign, row for row, on both backends
    assert set(exports[0]["method"].dropna()) == {"space-filling"}
    camp = Campaign.open(pg_url)
    assert isinstance(camp.store, PostgresStore) and camp.path.parent == tmp_path / "cache"
    assert list(camp.store.events()["kind"]) == ["create", "add", "add", "propose"]
    assert "already exists" in one_error_line(invoke("init", pg_url, "--config", config))


def test_postgres_measurements_events_and_config_are_append_only(pg_url):
    camp = Campaign.create(pg_url, CONFIG)
    camp.add_measurements(rows(2, 0.2))
    engine = _raw(pg_url)
    with engine.connect() as conn:
        before = {t: camp.store.rows(conn, t) for t in TABLES}
    for sql in (
        "UPDATE measurements SET source = 'edited'",
        "DELETE FROM measurements",
        "TRUNCATE measurements CASCADE",
        "UPDATE events SET kind = 'edited'",
        "DELETE FROM events WHERE id = 1",
        "UPDATE config SET yaml = ''",
    ):
        with engine.connect() as conn, pytest.raises(sa_exc.DBAPIError, match="are append-only"):
            conn.exec_driver_sql(sql)
    with engine.connect() as conn:
        assert {t: camp.store.rows(conn, t) for t in TABLES} == before
    engine.dispose()


def test_postgres_concurrent_writers_lose_no_row_and_store_a_shared_row_once(pg_url):
    Campaign.create(pg_url, CONFIG)
    writers, adds, per_add = 4, 4, 3
    barrier, errors, added = threading.Barrier(writers), [], []

    def write(k: int) -> None:
        try:
            camp = Campaign.open(pg_url)
            barrier.wait()
            for a in range(adds):
                added.append(camp.add_measurements(rows(per_add, 0.1 + 0.05 * k + 0.01 * a), f"writer {k}").added)
                added.append(camp.add_measurements(rows(1, 0.9), f"writer {k}").added)  # the same row from everyone
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    measured = Campaign.open(pg_url).measurements
    assert len(measured) == sum(added) == writers * adds * per_add + 1  # the shared row: once
    assert measured["id"].tolist() == list(range(1, len(measured) + 1))


def test_postgres_concurrent_proposers_get_distinct_batches(pg_url, caplog, monkeypatch):
    monkeypatch.setattr(campaigns.storage, "LOCK_NOTICE", 0.2)
    Campaign.create(pg_url, CONFIG).add_measurements(rows(2, 0.3))
    holder = Campaign.open(pg_url).store
    batches: list[pd.DataFrame] = []

    def propose() -> None:
        batches.append(Campaign.open(pg_url).propose(n=3))

    waiting = f"is proposing a batch for {PostgresStore(pg_url).where}"
    with holder.proposing():  # a proposer that takes its time: both others wait for it, then for each other
        threads = [threading.Thread(target=propose) for _ in range(2)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while caplog.text.count(waiting) < 2 and time.monotonic() < deadline:  # both say that they wait
            time.sleep(0.05)
        assert caplog.text.count(waiting) == 2 and batches == []
    for t in threads:
        t.join(timeout=60)
    assert sorted(b.attrs["batch_id"] for b in batches) == [1, 2]
    designs = pd.concat(batches)[["x1", "x2", "x3"]]
    assert not designs.duplicated().any()
    assert len(Campaign.open(pg_url).open_proposals) == 6


def test_postgres_a_held_write_lock_is_waited_for_then_one_line_names_the_holder(pg_url, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(campaigns.storage, "LOCK_TIMEOUT", 1.0)
    monkeypatch.setattr(campaigns.storage, "LOCK_NOTICE", 0.1)
    Campaign.create(pg_url, CONFIG)
    table = tmp_path / "week1.csv"
    rows(2, 0.4).to_csv(table, index=False)
    with Campaign.open(pg_url).store._transaction(), caplog.at_level(logging.WARNING, "valley"):
        result = invoke("add", pg_url, table)
    assert "trying again for up to 1 s" in caplog.text
    line = one_error_line(result, "still locked after 1 s", f"process {os.getpid()}@")
    assert line.startswith(f"error: {PostgresStore(pg_url).where}: ")
    assert Campaign.open(pg_url).measurements.empty
    assert invoke("add", pg_url, table).exit_code == 0  # once released, it goes through


def test_postgres_migration_copies_a_sqlite_campaign_exactly(pg_url, tmp_path):
    source = Campaign.create(tmp_path / "camp", CONFIG)
    source.add_measurements(rows(3, 0.5), "week1.csv")
    source.propose(n=2)
    source.add_measurements(rows(1, 0.7), "week2.csv")
    with source.store.engine.connect() as conn:
        before = {t: source.store.rows(conn, t) for t in TABLES}
    files = {p.name: p.read_bytes() for p in (tmp_path / "camp").iterdir() if p.is_file()}
    result = invoke("migrate", tmp_path / "camp", pg_url)
    assert result.exit_code == 0, result.output
    assert "measurements 4, batches 1, proposals 2, events 4 (counts verified)" in " ".join(result.stdout.split())
    target = Campaign.open(pg_url)
    with _raw(pg_url).connect() as conn:
        assert {t: target.store.rows(conn, t) for t in TABLES} == before
    assert target.config == source.config
    assert {p.name: p.read_bytes() for p in (tmp_path / "camp").iterdir() if p.is_file()} == files
    target.add_measurements(rows(1, 0.8))  # new rows continue after the copied ids
    assert target.measurements["id"].tolist() == [1, 2, 3, 4, 5]
    assert "already exists" in one_error_line(invoke("migrate", tmp_path / "camp", pg_url))


def test_postgres_unreachable_server_or_bad_url_is_one_line(tmp_path):
    """Needs no server: nothing listens on port 1."""
    for args, fragment in [
        (("status", "postgresql://lab@127.0.0.1:1/campaign"), "cannot reach the campaign's PostgreSQL server"),
        (("export", "postgresql://lab@127.0.0.1:port/campaign"), "not a valid PostgreSQL URL"),
        (("migrate", tmp_path, "mysql://lab@127.0.0.1/campaign"), "not a PostgreSQL URL"),
    ]:
        line = one_error_line(invoke(*args), fragment)
        assert "Connection refused" in line or fragment != "cannot reach the campaign's PostgreSQL server"
    line = one_error_line(invoke("status", "postgresql://lab:secret@127.0.0.1:1/campaign"), "lab:***@127.0.0.1")
    assert "secret" not in line
    with pytest.raises(InputError, match="not a Valley campaign"):
        Campaign.open(tmp_path)
    assert isinstance(Campaign.create(tmp_path / "camp", CONFIG).store, Store)  # a directory stays SQLite


def test_postgres_missing_campaign_is_one_line(pg_url):
    line = one_error_line(invoke("status", pg_url), "not a Valley campaign (no table 'measurements')")
    assert "valley init" in line
