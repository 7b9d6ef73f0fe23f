"""PostgreSQL campaigns: the tables, contract and messages of `campaigns.storage`, in a database a lab shares.

A campaign lives in one PostgreSQL database (or one schema of it, named in the URL as
`?options=-csearch_path%3Dmyschema`), given as `postgresql://user[:password]@host[:port]/dbname`;
the driver is psycopg 3 (`pip install 'valley[postgres]'`). The statements are those of
`campaigns.storage.Store`; what differs:

- Write lock: every write transaction first takes `pg_advisory_xact_lock` on a key of the
  campaign (its schema), so writers from any number of machines queue as SQLite's
  `BEGIN IMMEDIATE` makes them queue, and duplicate detection runs inside the transaction. The
  isolation level is READ COMMITTED, so each statement after the lock sees the previous writer's
  commit. A writer that waits says so after `LOCK_NOTICE` seconds and gives up after
  `LOCK_TIMEOUT` (PostgreSQL's `lock_timeout`), naming the holder.
- Who holds the lock: every connection names itself in `application_name` (process, host and
  command); a waiting writer finds the holder in `pg_locks` and `pg_stat_activity`.
- Append-only: statement triggers refuse UPDATE, DELETE and TRUNCATE on `measurements`,
  `events` and `config`.
- Proposals: `proposing()` holds the session lock `pg_advisory_lock` on a second key on its own
  connection while a batch is computed and recorded; the server releases it if the proposer dies.
- What a directory campaign keeps in files: the config is the table `config` (the YAML text
  `valley init` was given, written once); the model cache, the diagnostics cache and the default
  report folder are local to each machine, in `local_folder(url)`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    Table,
    Text,
    create_engine,
    insert,
    inspect,
    make_url,
    select,
)
from sqlalchemy import exc as sa_exc

from campaigns import storage
from campaigns.storage import METADATA, TABLES, Store, _command, _log, _now
from design import InputError

CONFIG = Table(
    "config",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("created_at", Text, nullable=False),
    Column("yaml", Text, nullable=False),
)
ALL_TABLES = (*TABLES, "config")

# Advisory-lock keys: one per campaign (schema) and purpose, computed by the server.
WRITE_KEY = "hashtextextended('valley write ' || current_schema(), 0)"
PROPOSE_KEY = "hashtextextended('valley propose ' || current_schema(), 0)"
INIT_KEY = "hashtextextended('valley init ' || current_schema(), 0)"

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION valley_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' are append-only'; END $$;
CREATE TRIGGER measurements_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON measurements
    FOR EACH STATEMENT EXECUTE FUNCTION valley_append_only();
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION valley_append_only();
CREATE TRIGGER config_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON config
    FOR EACH STATEMENT EXECUTE FUNCTION valley_append_only();
"""

# Who holds advisory lock {key}: the server splits a bigint key into classid (high half) and objid
# (low half). A session lock's holder is idle between statements: its time is its last change of state.
HOLDER = """
SELECT a.application_name, to_char(COALESCE(a.xact_start, a.state_change) AT TIME ZONE 'UTC', 'HH24:MI:SS')
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND ((l.classid::bigint << 32) | l.objid::bigint) = {key} AND l.pid <> pg_backend_pid()
LIMIT 1
"""

_ENGINES: dict[tuple[int, str], Engine] = {}  # per process and URL: connections are pooled and reused


def shown_url(url: str) -> str:
    """`url` with its password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (sa_exc.ArgumentError, ValueError):
        return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)


def local_folder(url: str) -> Path:
    """This machine's folder for a PostgreSQL campaign's model cache and reports.

    `$VALLEY_CACHE_DIR/<host>-<port>-<database>` (default `~/.cache/valley/...`, or under
    `$XDG_CACHE_HOME`); a URL with options (a schema) gets a short hash of them appended.
    """
    parsed = make_url(url)
    base = os.environ.get("VALLEY_CACHE_DIR") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "valley"
    )
    name = f"{parsed.host or 'local'}-{parsed.port or 5432}-{parsed.database or parsed.username or 'postgres'}"
    if parsed.query:
        name += "-" + hashlib.sha256(repr(sorted(parsed.query.items())).encode()).hexdigest()[:8]
    return Path(base) / re.sub(r"[^A-Za-z0-9._@-]", "_", name)


class PostgresStore(Store):
    """The PostgreSQL database of one campaign (see the module's docstring); `path` is `local_folder(url)`."""

    def __init__(self, url: str):
        self.url = url
        self.where = shown_url(url)
        try:
            self.path = local_folder(url)
        except (sa_exc.ArgumentError, ValueError) as error:
            raise InputError(
                f"{self.where}: not a valid PostgreSQL URL ({error}). Write it as postgresql://user@host:port/dbname."
            ) from None
        self._engine_ = None

    @property
    def engine(self) -> Engine:
        """The process's pooled engine for the URL (psycopg 3, READ COMMITTED)."""
        key = (os.getpid(), self.url)
        if key not in _ENGINES:
            try:
                import psycopg  # noqa: F401 - only to say what is missing
            except ImportError:
                raise InputError(
                    f"{self.where}: PostgreSQL campaigns need the psycopg driver. Install it with "
                    "pip install 'valley[postgres]'."
                ) from None
            name = f"valley {os.getpid()}@{socket.gethostname()} {_secret_free(_command())}"
            try:
                url = make_url(self.url).set(drivername="postgresql+psycopg")
                _ENGINES[key] = create_engine(
                    url,
                    isolation_level="READ COMMITTED",
                    pool_pre_ping=True,
                    pool_size=2,
                    connect_args={"application_name": name[:63], "connect_timeout": 10},
                )
            except (sa_exc.ArgumentError, ValueError) as error:
                raise InputError(
                    f"{self.where}: not a valid PostgreSQL URL ({error}). Write it as "
                    "postgresql://user@host:port/dbname."
                ) from None
        return _ENGINES[key]

    def check(self) -> None:
        """Raise `InputError` unless the database (schema) holds a Valley campaign (reads only)."""
        with self._reading() as conn:
            found = set(inspect(conn).get_table_names())
        missing = [t for t in ALL_TABLES if t not in found]
        if missing:
            raise InputError(
                f"{self.where}: not a Valley campaign (no table {missing[0]!r}). Create one there with "
                "`valley init URL --config FILE`, or check the database name in the URL."
            )
        self._make_local_folder()

    @classmethod
    def create(cls, url: str | Path, config_yaml: str = "", name: str = "") -> PostgresStore:
        """Create the campaign's tables and record its config, in one transaction; refuses an existing campaign."""
        store = cls(str(url))
        with store._errors(), store.engine.connect() as conn:
            store.create_schema(conn, config_yaml)
            _log(conn, _now(), "create", {"name": name})
            conn.commit()
        store._make_local_folder()
        return store

    def _make_local_folder(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # the model cache then refits each time; a report names its own folder

    def create_schema(self, conn: Connection, config_yaml: str) -> None:
        """Within `conn`'s transaction: the tables, their triggers and the config (refuses an existing campaign)."""
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({INIT_KEY})")  # two `valley init` at once: one wins
        existing = [t for t in ALL_TABLES if t in set(inspect(conn).get_table_names())]
        if existing:
            raise InputError(
                f"{self.where}: a campaign already exists there (table {existing[0]!r}). Open it, or choose another "
                "database (or schema)."
            )
        METADATA.create_all(conn)
        conn.exec_driver_sql(APPEND_ONLY)
        conn.execute(insert(CONFIG).values(created_at=_now(), yaml=config_yaml))

    def config(self) -> str:
        """The config's YAML text, as `valley init` recorded it."""
        with self._reading() as conn:
            text = conn.execute(select(CONFIG.c.yaml).order_by(CONFIG.c.id).limit(1)).scalar()
        if text is None:
            raise InputError(f"{self.where}: the campaign has no config (table 'config' is empty). Create it again.")
        return str(text)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """PostgreSQL's errors as one `InputError` line naming the (password-free) URL and what to do."""
        try:
            yield
        except sa_exc.SQLAlchemyError as error:
            orig = getattr(error, "orig", None) or error
            text = " ".join(str(orig).split())  # psycopg's messages span lines
            state = getattr(orig, "sqlstate", None)
            if state == "55P03":  # lock_not_available: lock_timeout ran out
                raise InputError(
                    f"{self.where}: the campaign is still locked after {storage.LOCK_TIMEOUT:.0f} s by "
                    f"{self._holder()}. Wait for that command to finish (or stop it), then run this one again."
                ) from None
            if state == "42P01":  # undefined_table
                raise InputError(
                    f"{self.where}: not a Valley campaign ({text}). Create one there with `valley init URL --config "
                    "FILE`, or check the database name in the URL."
                ) from None
            if state == "42501":  # insufficient_privilege
                raise InputError(
                    f"{self.where}: the campaign database cannot be written ({text}). Ask the database's owner to "
                    "grant your user access to the campaign's tables."
                ) from None
            if state is None or state.startswith("08") or state in ("3D000", "28000", "28P01"):
                raise InputError(
                    f"{self.where}: cannot reach the campaign's PostgreSQL server ({text}). Check the host, port, "
                    "user, password and database name in the URL, and that the server is running."
                ) from None
            raise InputError(f"{self.where}: the campaign database refused the operation ({text}).") from None

    def _begin(self, conn: Connection) -> None:
        """Take the campaign's write lock; if another writer holds it, say so and wait up to `LOCK_TIMEOUT`."""
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(storage.LOCK_NOTICE * 1000)}")
        try:
            with conn.begin_nested():  # a savepoint: a timed-out wait leaves the transaction usable
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_KEY})")
            return
        except sa_exc.OperationalError as error:
            if getattr(error.orig, "sqlstate", None) != "55P03":
                raise
        logging.getLogger("valley").warning(
            f"waiting: {self.where} is locked by {self._holder()}; trying again for up to "
            f"{storage.LOCK_TIMEOUT:.0f} s..."
        )
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int((storage.LOCK_TIMEOUT - storage.LOCK_NOTICE) * 1000)}")
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_KEY})")

    def _write_holder(self) -> None:
        pass  # the server knows the holder: `_holder` asks it

    def _clear_holder(self) -> None:
        pass

    def _holder(self, key: str = WRITE_KEY) -> str:
        """Who holds the lock `key`, from the server's lock table (best effort)."""
        try:
            with self.engine.connect() as conn:
                row = conn.exec_driver_sql(HOLDER.format(key=key)).first()
        except sa_exc.SQLAlchemyError:
            row = None
        if row is None or not str(row[0] or "").startswith("valley "):
            return "another process (a running `valley add` or `valley propose`?)"
        who, _, command = str(row[0])[len("valley ") :].partition(" ")
        return f"process {who} (`{command}`, since {row[1]} UTC)"

    @contextmanager
    def proposing(self) -> Iterator[None]:
        """Hold the campaign's proposal lock (`pg_advisory_lock`): one `propose` at a time computes and records.

        A second caller waits (saying so, after `LOCK_NOTICE` seconds) until the first has
        recorded its batch, then sees it as pending; after `PROPOSE_TIMEOUT` seconds it gives up.
        """
        with self._errors():
            conn = self.engine.connect()
        try:
            with self._errors():
                self._lock_for_proposal(conn)
            try:
                yield
            finally:
                with self._errors():
                    conn.exec_driver_sql(f"SELECT pg_advisory_unlock({PROPOSE_KEY})")
                    conn.commit()
        finally:
            conn.close()

    def _lock_for_proposal(self, conn: Connection) -> None:
        if conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({PROPOSE_KEY})").scalar():
            conn.commit()
            return
        conn.rollback()
        holder = self._holder(PROPOSE_KEY)
        deadline = time.monotonic() + storage.LOCK_NOTICE  # a short wait passes without a word
        while time.monotonic() < deadline:
            time.sleep(0.02)
            if conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({PROPOSE_KEY})").scalar():
                conn.commit()
                return
            conn.rollback()
        logging.getLogger("valley").warning(
            f"waiting: {holder} is proposing a batch for {self.where}; this proposal waits for it, so that the two "
            "batches differ..."
        )
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(storage.PROPOSE_TIMEOUT * 1000)}")
        try:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({PROPOSE_KEY})")  # a session lock: it outlives COMMIT
        except sa_exc.OperationalError as error:
            if getattr(error.orig, "sqlstate", None) != "55P03":
                raise
            raise InputError(
                f"{self.where}: {self._holder(PROPOSE_KEY)} has been proposing for over "
                f"{storage.PROPOSE_TIMEOUT:.0f} s. Wait for it to finish (or stop it), then run this command again."
            ) from None
        conn.commit()


def _secret_free(text: str) -> str:
    """`text` with any URL password masked (a command line shown to other users of the server)."""
    return re.sub(r"(//[^:/@\s]*:)[^@/\s]*@", r"\1***@", text)
