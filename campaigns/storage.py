"""Campaign storage: one SQLite file (or one PostgreSQL database); every write is one transaction.

The contract:
- `measurements` and `events` are append-only (triggers refuse UPDATE and DELETE), so nothing
  recorded is ever lost; `proposals` and `batches` are append-only by convention.
- Each write method runs in one `BEGIN IMMEDIATE` transaction: it either lands whole or not at
  all, and concurrent writers (two `valley add` at once) queue on SQLite's lock instead of
  overwriting each other. Duplicate detection happens inside the same transaction.
- Rows are stored as JSON objects of plain values (no pickle), so any SQLite client can read them.
- A writer that finds the campaign locked says so (a warning of the `valley` logger) and waits
  up to `LOCK_TIMEOUT` seconds; while it holds the lock, `<db>.holder` names it (process, command,
  time), so that a waiting writer can say who holds the campaign. Every SQLite error (locked,
  damaged, not a campaign) reaches the caller as one `InputError` line naming the file.
- `proposing()` serializes proposals: one `propose` at a time computes and records its batch, so
  concurrent callers see each other's batches as pending.

The statements are SQLAlchemy Core, written once for both backends: `Store` is the SQLite
campaign of a directory; `campaigns.postgres.PostgresStore` keeps the same tables and the same
contract in a PostgreSQL database, replacing only how a transaction takes the campaign's write
lock, how proposals are serialized and how errors read.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    create_engine,
    func,
    insert,
    select,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import Select

from design import InputError

LOCK_TIMEOUT = 60.0  # seconds a writer waits for another process's write lock before giving up
LOCK_NOTICE = 2.0  # seconds of waiting before the wait is announced
PROPOSE_TIMEOUT = 1800.0  # seconds a `propose` waits for another one on the same campaign
TABLES = ("measurements", "batches", "proposals", "events")

# The tables as SQLAlchemy sees them: every statement below is built from these.
METADATA = MetaData()
MEASUREMENTS = Table(
    "measurements",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("added_at", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("data", Text, nullable=False),
    Index("measurements_fingerprint", "fingerprint"),
)
BATCHES = Table(
    "batches",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("created_at", Text, nullable=False),
    Column("method", Text, nullable=False),
    Column("notes", Text, nullable=False),
)
PROPOSALS = Table(
    "proposals",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("batch_id", Integer, ForeignKey("batches.id"), nullable=False),
    Column("data", Text, nullable=False),
)
EVENTS = Table(
    "events",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("at", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("detail", Text, nullable=False),
)
TABLE_OF = {"measurements": MEASUREMENTS, "batches": BATCHES, "proposals": PROPOSALS, "events": EVENTS}

# SQLite's own DDL (the same tables as `METADATA`), kept as it always was so new files match old ones.
SCHEMA = """
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY, added_at TEXT NOT NULL, source TEXT NOT NULL,
    fingerprint TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS measurements_fingerprint ON measurements (fingerprint);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, method TEXT NOT NULL, notes TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS proposals (
    id INTEGER PRIMARY KEY, batch_id INTEGER NOT NULL REFERENCES batches (id),
    data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS measurements_no_update BEFORE UPDATE ON measurements
    BEGIN SELECT RAISE(ABORT, 'measurements are append-only'); END;
CREATE TRIGGER IF NOT EXISTS measurements_no_delete BEFORE DELETE ON measurements
    BEGIN SELECT RAISE(ABORT, 'measurements are append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
"""


def database_url(location: str | Path) -> str | None:
    """The PostgreSQL URL that `location` names, or None for a directory (a SQLite campaign).

    A URL that went through `pathlib.Path` (as a command-line argument typed as a path does) has
    lost a slash, `postgresql:/user@host/db`; it is read as `postgresql://user@host/db`.
    """
    text = str(location)
    scheme, colon, rest = text.partition(":")
    if not colon or scheme.lower() not in ("postgresql", "postgres", "postgresql+psycopg"):
        return None
    if not rest.startswith("//"):
        rest = "/" + rest if rest.startswith("/") else "//" + rest
    return f"{scheme}:{rest}"


class Store:
    """The SQLite database of one campaign."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._engine_: Engine | None = None

    @property
    def holder_file(self) -> Path:
        return self.path.with_name(self.path.name + ".holder")

    @property
    def engine(self) -> Engine:
        """SQLAlchemy's engine on the file: a fresh connection per operation (none is kept open)."""
        if self._engine_ is None:
            path = self.path  # `timeout` is read at each connection, so LOCK_TIMEOUT may change at run time
            self._engine_ = create_engine(
                "sqlite://",
                creator=lambda: sqlite3.connect(path, timeout=LOCK_TIMEOUT, isolation_level=None),
                poolclass=NullPool,
            )
        return self._engine_

    def check(self) -> None:
        """Raise `InputError` unless the file is a readable Valley campaign database (reads only)."""
        if self.path.stat().st_size == 0:
            raise InputError(
                f"{self.path}: the campaign database is empty (0 bytes), so its records are lost. Restore "
                "campaign.db from a backup; Valley left the file as it was."
            )
        with self._reading() as conn:
            found = set(conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'").scalars())
        missing = [t for t in TABLES if t not in found]
        if missing:
            raise InputError(
                f"{self.path}: not a Valley campaign database (no table {missing[0]!r}). Restore campaign.db "
                "from a backup; Valley left the file as it was."
            )

    @classmethod
    def create(cls, path: str | Path) -> Store:
        store = cls(path)
        with store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            conn.connection.driver_connection.executescript(SCHEMA)  # type: ignore[union-attr]
        return store

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """SQLite's errors as one `InputError` line naming the file and what to do."""
        try:
            yield
        except (sqlite3.Error, sa_exc.DBAPIError) as error:
            text = str(getattr(error, "orig", None) or error)
            if "locked" in text or "busy" in text:
                raise InputError(
                    f"{self.path}: the campaign is still locked after {LOCK_TIMEOUT:.0f} s by {self._holder()}. "
                    "Wait for that command to finish (or stop it), then run this one again."
                ) from None
            if "readonly" in text or "unable to open" in text:
                raise InputError(
                    f"{self.path}: the campaign database cannot be written ({text}). Check that the file and its "
                    "folder are writable by you, then run the command again."
                ) from None
            raise InputError(
                f"{self.path}: the campaign database is damaged or not a Valley campaign ({text}). Restore "
                "campaign.db from a backup; Valley left the file as it was."
            ) from None

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A connection for reads, its errors translated by `_errors`."""
        with self._errors(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """One write transaction holding the campaign's write lock: it commits whole or not at all."""
        with self._errors(), self.engine.connect() as conn:
            self._begin(conn)
            try:
                self._write_holder()
                yield conn
            except BaseException:
                self._clear_holder()
                conn.rollback()
                raise
            self._clear_holder()  # before COMMIT: the next holder may write it after
            conn.commit()

    def _begin(self, conn: Connection) -> None:
        """`BEGIN IMMEDIATE`; if another process holds the lock, say so and wait up to `LOCK_TIMEOUT`."""
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(LOCK_NOTICE * 1000)}")
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except sa_exc.OperationalError as error:
            if "locked" not in str(error.orig) and "busy" not in str(error.orig):
                raise
        logging.getLogger("valley").warning(  # shown on stderr unless the caller configures logging
            f"waiting: {self.path.parent} is locked by {self._holder()}; trying again for up to {LOCK_TIMEOUT:.0f} s..."
        )
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {int((LOCK_TIMEOUT - LOCK_NOTICE) * 1000)}")
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    def _write_holder(self) -> None:
        try:
            self.holder_file.write_text(json.dumps({"pid": os.getpid(), "command": _command(), "since": _now()}))
        except OSError:
            pass  # only a courtesy to waiting writers

    def _clear_holder(self) -> None:
        self.holder_file.unlink(missing_ok=True)

    def _holder(self) -> str:
        """Who holds the write lock, as `holder_file` tells (best effort)."""
        try:
            info = json.loads(self.holder_file.read_text())
            pid, command, since = int(info["pid"]), str(info["command"]), str(info["since"])
        except (OSError, ValueError, KeyError, TypeError):
            return "another process (a running `valley add` or `valley propose`?)"
        return f"process {pid} (`{command}`, since {since[11:19]} UTC)"

    @contextmanager
    def proposing(self) -> Iterator[None]:
        """Hold the campaign's proposal lock: one `propose` at a time computes and records its batch.

        A second caller waits (saying so) until the first has recorded its batch, then sees it as
        pending. The lock is an advisory `flock` on `<db>.propose-lock`, released by the system if
        the holder dies; on systems without `fcntl` proposals are not serialized.
        """
        try:
            import fcntl
        except ImportError:  # Windows
            yield
            return
        lock_path = self.path.with_name(self.path.name + ".propose-lock")
        try:
            handle = open(lock_path, "a+")  # closed by the `with` below
        except OSError as error:
            raise InputError(
                f"{lock_path}: cannot open the campaign's proposal lock ({error.strerror or error}). Check that the "
                "campaign folder is writable by you."
            ) from None
        with handle:
            waited, deadline = False, time.monotonic() + PROPOSE_TIMEOUT
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    handle.seek(0)
                    holder = handle.read().strip()[:200] or "another process"
                    if time.monotonic() > deadline:
                        raise InputError(
                            f"{self.path.parent}: {holder} has been proposing for over {PROPOSE_TIMEOUT:.0f} s. "
                            "Wait for it to finish (or stop it), then run this command again."
                        ) from None
                    if not waited:
                        logging.getLogger("valley").warning(
                            f"waiting: {holder} is proposing a batch for {self.path.parent}; this proposal waits "
                            "for it, so that the two batches differ..."
                        )
                        waited = True
                    time.sleep(0.2)
            try:
                handle.seek(0)
                handle.truncate()
                handle.write(f"process {os.getpid()} (`{_command()}`, since {_now()[11:19]} UTC)")
                handle.flush()
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- the data: the same statements on every backend --------------------------------------

    def add_measurements(self, rows: Sequence[dict[str, Any]], fingerprints: Sequence[str], source: str) -> list[int]:
        """Insert the rows whose fingerprint is not recorded yet; return the positions skipped."""
        now = _now()
        skipped, new = [], []
        with self._transaction() as conn:
            known = set(conn.execute(select(MEASUREMENTS.c.fingerprint)).scalars())
            for i, (row, fp) in enumerate(zip(rows, fingerprints, strict=True)):
                if fp in known:
                    skipped.append(i)
                    continue
                known.add(fp)
                new.append({"added_at": now, "source": source, "fingerprint": fp, "data": json.dumps(row)})
            if new:
                conn.execute(insert(MEASUREMENTS), new)
            detail = {"source": source, "added": len(rows) - len(skipped), "duplicates": len(skipped)}
            _log(conn, now, "add", detail)
        return skipped

    def add_batch(self, method: str, notes: list[str], rows: Sequence[dict[str, Any]]) -> int:
        """Record a batch of proposals; return its id."""
        now = _now()
        with self._transaction() as conn:
            result = conn.execute(insert(BATCHES).values(created_at=now, method=method, notes=json.dumps(notes)))
            batch_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            if rows:
                conn.execute(insert(PROPOSALS), [{"batch_id": batch_id, "data": json.dumps(r)} for r in rows])
            _log(conn, now, "propose", {"batch": batch_id, "method": method, "n": len(rows)})
        return batch_id

    def log(self, kind: str, detail: dict[str, Any]) -> None:
        with self._transaction() as conn:
            _log(conn, _now(), kind, detail)

    def measurements(self) -> pd.DataFrame:
        """One row per measurement: `id`, `added_at`, `source`, then the data."""
        m = MEASUREMENTS.c
        return self._table(select(m.id, m.added_at, m.source, m.data).order_by(m.id))

    def proposals(self) -> pd.DataFrame:
        """One row per proposal: `id`, `batch_id`, `created_at`, `method`, then the data."""
        p, b = PROPOSALS.c, BATCHES.c
        return self._table(
            select(p.id, p.batch_id, b.created_at, b.method, p.data)
            .select_from(PROPOSALS.join(BATCHES, b.id == p.batch_id))
            .order_by(p.id)
        )

    def events(self) -> pd.DataFrame:
        e = EVENTS.c
        return self._table(select(e.id, e.at, e.kind, e.detail.label("data")).order_by(e.id))

    def count_batches(self) -> int:
        with self._reading() as conn:
            return int(conn.execute(select(func.count()).select_from(BATCHES)).scalar_one())

    def rows(self, conn: Connection, name: str) -> list[tuple[Any, ...]]:
        """Every row of table `name` as stored (all columns, by id): for copying a campaign."""
        table = TABLE_OF[name]
        return [tuple(r) for r in conn.execute(select(table).order_by(table.c.id))]

    def _table(self, query: Select[Any]) -> pd.DataFrame:
        with self._reading() as conn:
            result = conn.execute(query)
            names = list(result.keys())
            records = [dict(zip(names[:-1], r[:-1], strict=True)) | json.loads(r[-1]) for r in result]
        return pd.DataFrame.from_records(records, columns=None if records else names[:-1])


def _log(conn: Connection, at: str, kind: str, detail: dict[str, Any]) -> None:
    conn.execute(insert(EVENTS).values(at=at, kind=kind, detail=json.dumps(detail)))


def _command() -> str:
    """This process's command line, shortened (for the lock holder's name)."""
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:120] if sys.argv else "python"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
