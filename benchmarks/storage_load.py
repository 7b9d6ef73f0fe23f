"""Load test of a PostgreSQL campaign: concurrent writers and proposers for a bounded time.

`valley benchmark storage-load URL --writers 8 --proposers 4 --seconds 30` creates a campaign in
a new schema of the database at URL (dropped afterwards unless `--keep`), starts the writer and
proposer processes, lets them run for the given time, then checks the tables:

- rows lost: per writer, the rows `add_measurements` said it added, minus the rows of that
  writer found in `measurements` (must be 0; more found than told would count too);
- duplicate proposals: proposed designs equal to an earlier proposal (must be 0: each proposer
  waits for the one before and sees its batch as pending);
- the median and 95th percentile latency of a write (one row per transaction) and of a proposal
  (including the wait for the proposal lock).

Writers record failed runs (no outcome), so no model can be fitted and every batch is a
space-filling design: the test loads the locking and the storage, not the GP fits. The report
says which methods the batches used.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

CONFIG: dict[str, Any] = {
    "name": "storage-load",
    "seed": 0,
    "parameters": [{"name": f"x{i}", "type": "continuous", "bounds": [0, 1]} for i in (1, 2, 3)],
    "objectives": [{"name": "y", "goal": "maximize"}],
    "safety": [{"name": "s", "upper": 0.8}],
}
BATCH = 2  # designs per proposal


@dataclass
class LoadResult:
    """What the writers and proposers did, and what the tables hold afterwards."""

    url: str
    writers: int
    proposers: int
    seconds: float
    told: dict[int, int] = field(default_factory=dict)  # per writer: rows add_measurements said it added
    found: dict[int, int] = field(default_factory=dict)  # per writer: its rows in the table
    skipped: int = 0
    write_latency: list[float] = field(default_factory=list)
    propose_latency: list[float] = field(default_factory=list)
    methods: dict[str, int] = field(default_factory=dict)
    batches_told: list[int] = field(default_factory=list)
    batches_found: int = 0
    proposals_found: int = 0
    duplicate_proposals: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return sum(abs(self.told.get(w, 0) - self.found.get(w, 0)) for w in set(self.told) | set(self.found))

    @property
    def ok(self) -> bool:
        distinct = len(set(self.batches_told)) == len(self.batches_told) == self.batches_found
        return self.lost == 0 and self.duplicate_proposals == 0 and distinct and not self.errors

    def summary(self) -> str:
        w, p = np.asarray(self.write_latency), np.asarray(self.propose_latency)
        methods = ", ".join(f"{m}: {n}" for m, n in sorted(self.methods.items())) or "none"
        lines = [
            f"storage load on {self.url}: {self.writers} writer and {self.proposers} proposer processes for "
            f"{self.seconds:g} s",
            f"writes:    {sum(self.told.values())} rows written (as the writers were told), "
            f"{sum(self.found.values())} in the table, {self.lost} lost; {self.skipped} skipped as duplicates; "
            f"{len(w) / self.seconds:.1f} writes/s; latency p50 {_ms(w, 50)}, p95 {_ms(w, 95)}",
            f"proposals: {len(self.batches_told)} batches of {BATCH} ({methods}); {self.batches_found} batches and "
            f"{self.proposals_found} proposals in the tables; {self.duplicate_proposals} duplicate proposals; "
            f"latency p50 {_ms(p, 50)}, p95 {_ms(p, 95)}",
        ]
        lines += [f"error: {e}" for e in self.errors]
        lines.append("verdict: " + ("OK: no row lost, no duplicate proposal" if self.ok else "FAILED"))
        return "\n".join(lines)


def _ms(values: np.ndarray, q: float) -> str:
    return f"{np.percentile(values, q) * 1000:.0f} ms" if len(values) else "n/a"


def run_storage_load(url: str, writers: int = 8, proposers: int = 4, seconds: float = 30.0, keep: bool = False):
    """Run the load test on a new schema of the database at `url`; return (LoadResult, schema name)."""
    from sqlalchemy import make_url

    from campaigns import Campaign
    from campaigns.postgres import PostgresStore
    from campaigns.storage import database_url

    base = database_url(url)
    if base is None:
        raise ValueError(f"{url}: not a PostgreSQL URL. Write it as postgresql://user@host:port/dbname.")
    admin = PostgresStore(base)
    schema = f"valley_load_{uuid.uuid4().hex[:8]}"
    campaign_url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    target = campaign_url.render_as_string(hide_password=False)
    with admin._errors(), admin.engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        conn.commit()
    result = LoadResult(admin.where, writers, proposers, seconds)
    try:
        Campaign.create(target, CONFIG)
        ctx = multiprocessing.get_context("spawn")
        ready = ctx.Barrier(writers + proposers + 1)
        queue = ctx.Queue()
        procs = [ctx.Process(target=_writer, args=(target, k, seconds, ready, queue)) for k in range(writers)]
        procs += [ctx.Process(target=_proposer, args=(target, k, seconds, ready, queue)) for k in range(proposers)]
        for proc in procs:
            proc.start()
        ready.wait(timeout=600)  # every process has imported Valley and opened the campaign
        reports = [queue.get(timeout=seconds + 1800) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
        for report in reports:
            result.errors += report["errors"]
            if report["kind"] == "writer":
                result.told[report["k"]] = report["told"]
                result.skipped += report["skipped"]
                result.write_latency += report["latency"]
            else:
                result.propose_latency += report["latency"]
                result.batches_told += report["batches"]
                for method in report["methods"]:
                    result.methods[method] = result.methods.get(method, 0) + 1
        camp = Campaign.open(target)
        measured = camp.store.measurements()
        counts = measured["source"].value_counts() if len(measured) else pd.Series(dtype=int)
        result.found = {int(s.split()[-1]): int(n) for s, n in counts.items()}
        proposals = camp.store.proposals()
        result.proposals_found = len(proposals)
        result.batches_found = camp.store.count_batches()
        if len(proposals):
            designs = proposals[camp.config.parameter_names].round(12)
            result.duplicate_proposals = int(designs.duplicated().sum())
    finally:
        if not keep:
            with admin._errors(), admin.engine.connect() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
                conn.commit()
    return result, schema


def _writer(url: str, k: int, seconds: float, ready, queue) -> None:  # noqa: ANN001 - multiprocessing objects
    """Add one new failed run per transaction until the time is up; report what `add_measurements` said."""
    from campaigns import Campaign

    logging.getLogger("valley").setLevel(logging.ERROR)  # waiting for the lock is the point here, not news
    told, skipped, latency, errors = 0, 0, [], []
    try:
        camp = Campaign.open(url)
        rng = np.random.default_rng(k)
    except Exception as error:  # noqa: BLE001 - reported in the summary
        errors.append(f"writer {k}: {error}")
    ready.wait(timeout=600)
    deadline = time.monotonic() + seconds
    i = 0
    while not errors and time.monotonic() < deadline:
        row = pd.DataFrame({"x1": [rng.random()], "x2": [i / 1e6], "x3": [k / 100], "y": [np.nan], "s": [np.nan]})
        start = time.perf_counter()
        try:
            report = camp.add_measurements(row, source=f"writer {k}")
        except Exception as error:  # noqa: BLE001
            errors.append(f"writer {k}: {error}")
            break
        latency.append(time.perf_counter() - start)
        told += report.added
        skipped += len(report.duplicates)
        i += 1
    queue.put({"kind": "writer", "k": k, "told": told, "skipped": skipped, "latency": latency, "errors": errors})


def _proposer(url: str, k: int, seconds: float, ready, queue) -> None:  # noqa: ANN001
    """Propose batches of `BATCH` until the time is up; report their ids, methods and latencies."""
    from campaigns import Campaign

    logging.getLogger("valley").setLevel(logging.ERROR)
    batches, methods, latency, errors = [], [], [], []
    try:
        camp = Campaign.open(url)
    except Exception as error:  # noqa: BLE001
        errors.append(f"proposer {k}: {error}")
    ready.wait(timeout=600)
    deadline = time.monotonic() + seconds
    while not errors and time.monotonic() < deadline:
        start = time.perf_counter()
        try:
            table = camp.propose(n=BATCH)
        except Exception as error:  # noqa: BLE001
            errors.append(f"proposer {k}: {error}")
            break
        latency.append(time.perf_counter() - start)
        batches.append(int(table.attrs["batch_id"]))
        methods.append(str(table.attrs["method"]))
    queue.put(
        {"kind": "proposer", "k": k, "batches": batches, "methods": methods, "latency": latency, "errors": errors}
    )
