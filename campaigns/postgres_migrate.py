"""`valley migrate DIR URL`: a directory campaign (SQLite) copied into an empty PostgreSQL database.

Every row of every table is copied with its id and its timestamps, and the config with it, in
one PostgreSQL transaction that also creates the tables and triggers. Before it commits, the
copy is read back and compared with the source, table by table (counts and every value): any
difference rolls the whole copy back. The source is read inside its own write transaction, so
no `valley add` lands halfway; it is left exactly as it was.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import insert

from campaigns.campaign import CONFIG_FILE, Campaign
from campaigns.postgres import PostgresStore
from campaigns.storage import TABLE_OF, database_url
from design import InputError

ORDER = ("measurements", "batches", "proposals", "events")  # batches before the proposals that refer to them


def migrate(directory: str | Path, url: str) -> tuple[dict[str, int], str]:
    """Copy the campaign in `directory` into the empty database at `url`; the rows copied per table, and the URL shown.

    Raises:
        InputError: one line (not a campaign, not a URL, the server unreachable, a campaign
            already there, a copy that differs); the database is then left as it was.
    """
    target_url = database_url(url)
    if target_url is None:
        raise InputError(f"{url}: not a PostgreSQL URL. Write it as postgresql://user@host:port/dbname.")
    if database_url(directory) is not None:
        raise InputError(f"{directory}: the source must be a campaign directory (SQLite), not a URL.")
    source = Campaign.open(directory)  # one-line errors for a missing or damaged campaign
    config_yaml = (Path(directory) / CONFIG_FILE).read_text(encoding="utf-8")
    target = PostgresStore(target_url)
    with source.store._transaction() as src:  # the source's write lock: nothing is added while we copy
        rows = {name: source.store.rows(src, name) for name in ORDER}
        with target._errors(), target.engine.connect() as dst:
            target.create_schema(dst, config_yaml)
            for name in ORDER:
                table = TABLE_OF[name]
                if rows[name]:
                    dst.execute(insert(table), [dict(zip(table.c.keys(), r, strict=True)) for r in rows[name]])
                next_id = f"SELECT COALESCE(MAX(id), 0) + 1 FROM {name}"  # later rows continue after the copied ids
                dst.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), ({next_id}), false)")
            for name in ORDER:
                copied = target.rows(dst, name)
                if copied != rows[name]:
                    raise InputError(
                        f"{target.where}: the copy of table {name!r} differs from {directory} ({len(copied)} rows "
                        f"read back, {len(rows[name])} copied); nothing was kept. Run the command again."
                    )
            dst.commit()
    return {name: len(rows[name]) for name in ORDER}, target.where
