"""Campaign storage: one SQLite file; every write is one transaction.

The contract:
- `measurements` and `events` are append-only (triggers refuse UPDATE and DELETE), so nothing
  recorded is ever lost; `proposals` and `batches` are append-only by convention.
- Each write method runs in one `BEGIN IMMEDIATE` transaction: it either lands whole or not at
  all, and concurrent writers (two `valley add` at once) queue on SQLite's lock instead of
  overwriting each other. Duplicate detection happens inside the same transaction.
- Rows are stored as JSON objects of plain values (no pickle), so any SQLite client can read them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

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


class Store:
    """The SQLite database of one campaign."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def create(cls, path: str | Path) -> Store:
        store = cls(path)
        conn = sqlite3.connect(store.path)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
        finally:
            conn.close()
        return store

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    def add_measurements(self, rows: Sequence[dict[str, Any]], fingerprints: Sequence[str], source: str) -> list[int]:
        """Insert the rows whose fingerprint is not recorded yet; return the positions skipped."""
        now = _now()
        skipped = []
        with self._transaction() as conn:
            known = {r[0] for r in conn.execute("SELECT fingerprint FROM measurements")}
            for i, (row, fp) in enumerate(zip(rows, fingerprints, strict=True)):
                if fp in known:
                    skipped.append(i)
                    continue
                known.add(fp)
                conn.execute(
                    "INSERT INTO measurements (added_at, source, fingerprint, data) VALUES (?, ?, ?, ?)",
                    (now, source, fp, json.dumps(row)),
                )
            detail = {"source": source, "added": len(rows) - len(skipped), "duplicates": len(skipped)}
            _log(conn, now, "add", detail)
        return skipped

    def add_batch(self, method: str, notes: list[str], rows: Sequence[dict[str, Any]]) -> int:
        """Record a batch of proposals; return its id."""
        now = _now()
        with self._transaction() as conn:
            cur = conn.execute(
                "INSERT INTO batches (created_at, method, notes) VALUES (?, ?, ?)",
                (now, method, json.dumps(notes)),
            )
            batch_id = int(cur.lastrowid)  # type: ignore[arg-type]
            conn.executemany(
                "INSERT INTO proposals (batch_id, data) VALUES (?, ?)",
                [(batch_id, json.dumps(r)) for r in rows],
            )
            _log(conn, now, "propose", {"batch": batch_id, "method": method, "n": len(rows)})
        return batch_id

    def log(self, kind: str, detail: dict[str, Any]) -> None:
        with self._transaction() as conn:
            _log(conn, _now(), kind, detail)

    def measurements(self) -> pd.DataFrame:
        """One row per measurement: `id`, `added_at`, `source`, then the data."""
        return self._table("SELECT id, added_at, source, data FROM measurements ORDER BY id")

    def proposals(self) -> pd.DataFrame:
        """One row per proposal: `id`, `batch_id`, `created_at`, `method`, then the data."""
        return self._table(
            "SELECT p.id, p.batch_id, b.created_at, b.method, p.data "
            "FROM proposals p JOIN batches b ON b.id = p.batch_id ORDER BY p.id"
        )

    def events(self) -> pd.DataFrame:
        return self._table("SELECT id, at, kind, detail AS data FROM events ORDER BY id")

    def count_batches(self) -> int:
        conn = sqlite3.connect(self.path, timeout=60.0)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM batches").fetchone()[0])
        finally:
            conn.close()

    def _table(self, sql: str) -> pd.DataFrame:
        conn = sqlite3.connect(self.path, timeout=60.0)
        try:
            cur = conn.execute(sql)
            names = [c[0] for c in cur.description]
            records = [dict(zip(names[:-1], r[:-1], strict=True)) | json.loads(r[-1]) for r in cur]
        finally:
            conn.close()
        return pd.DataFrame.from_records(records, columns=None if records else names[:-1])


def _log(conn: sqlite3.Connection, at: str, kind: str, detail: dict[str, Any]) -> None:
    conn.execute("INSERT INTO events (at, kind, detail) VALUES (?, ?, ?)", (at, kind, json.dumps(detail)))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
