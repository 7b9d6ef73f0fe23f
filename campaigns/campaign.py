"""A design campaign: a directory with its config and its database, and the verbs on it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml
from botorch.utils.multi_objective.pareto import is_non_dominated

from campaigns.campaign_model import FAILED
from campaigns.config import CampaignConfig, dump_config, load_config
from campaigns.model_cache import ModelCache
from campaigns.propose import make_proposals
from campaigns.storage import Store, database_url
from design import InputError, limits_hold, validate_designs
from design.errors import shown
from design.validation import not_a_number, to_numbers

CONFIG_FILE = "config.yaml"
DB_FILE = "campaign.db"


@dataclass
class ImportReport:
    """What `add_measurements` did with a table."""

    added: int
    duplicates: list[str] = field(default_factory=list)
    failed: int = 0
    warnings: list[str] = field(default_factory=list)


def prediction_columns(config: CampaignConfig) -> list[str]:
    """The columns a proposal carries besides its design, in the order `propose` writes them."""
    names = [f"p_{name}" for name in config.binary_outcomes]
    names += [f"{o}_{part}" for o in config.regression_outcomes for part in ("mean", "sd")]
    return names + ["p_safe", "meets_confidence", "p_feasible", "role"]


class Campaign:
    """A campaign stored in a directory: `config.yaml` and `campaign.db` (SQLite).

    Or in a PostgreSQL database given as a URL (`campaigns.postgres`): the config is a table of
    the database, and `path` is this machine's folder for the model cache and reports.

    Example:
        >>> camp = Campaign.create("runs/np", "np.yaml")
        >>> camp.add_measurements(measured_df)
        >>> proposals_df = camp.propose(n=4)
    """

    def __init__(self, path: Path, config: CampaignConfig, store: Store):
        self.path = path
        self.config = config
        self.store = store

    @classmethod
    def create(cls, path: str | Path, config: str | Path | dict[str, Any]) -> Campaign:
        """Create a new campaign directory (or PostgreSQL database); refuses to touch an existing campaign."""
        cfg = load_config(config)
        url = database_url(path)
        if url is not None:  # psycopg is imported only for a URL
            from campaigns.postgres import PostgresStore

            shared = PostgresStore.create(url, dump_config(cfg), cfg.name)
            return cls(shared.path, cfg, shared)
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise InputError(f"{path}: is a file, not a directory. Choose a new or empty directory for the campaign.")
        if (path / DB_FILE).exists() or (path / CONFIG_FILE).exists():
            raise InputError(f"{path}: a campaign already exists there. Open it, or choose another directory.")
        if path.exists() and any(path.iterdir()):
            raise InputError(f"{path}: the directory is not empty. Choose a new or empty directory.")
        made = not path.exists()
        try:
            path.mkdir(parents=True, exist_ok=True)
            (path / CONFIG_FILE).write_text(dump_config(cfg))
            store = Store.create(path / DB_FILE)
            store.log("create", {"name": cfg.name})
        except BaseException as error:
            if made:
                shutil.rmtree(path, ignore_errors=True)
            else:  # it was empty: leave it empty again
                for entry in path.iterdir():
                    if entry.is_dir():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)
            if isinstance(error, OSError):
                raise InputError(
                    f"{path}: cannot create the campaign there ({error.strerror or error}). Choose a directory "
                    "you can write to, whose parent folders are directories."
                ) from None
            raise
        return cls(path, cfg, store)

    @classmethod
    def open(cls, path: str | Path) -> Campaign:
        """Open an existing campaign directory (or PostgreSQL database)."""
        url = database_url(path)
        if url is not None:
            from campaigns.postgres import PostgresStore

            shared = PostgresStore(url)
            shared.check()
            return cls(shared.path, load_config(yaml.safe_load(shared.config())), shared)
        path = Path(path)
        if not (path / DB_FILE).is_file() or not (path / CONFIG_FILE).is_file():
            raise InputError(
                f"{path}: not a Valley campaign (no {CONFIG_FILE} and {DB_FILE}). Create one with `valley init`."
            )
        store = Store(path / DB_FILE)
        store.check()
        return cls(path, load_config(path / CONFIG_FILE), store)

    # -- data in ---------------------------------------------------------------------------

    def add_measurements(self, df: pd.DataFrame, source: str = "table") -> ImportReport:
        """Validate and record measured designs; all or nothing.

        `df` holds one column per parameter and per outcome; an empty outcome cell is a failed
        run (kept and counted). Rows already recorded (same parameters and outcomes) are
        skipped. Rows are named by `df`'s index in messages.

        Raises:
            InputError: naming the row and column, with the campaign left unchanged.
        """
        cfg = self.config
        weight = cfg.weight_column
        known = set(cfg.parameter_names) | set(cfg.outcomes) | {FAILED, weight}
        _check_shape(df, source)
        for column in df.columns:
            if not isinstance(column, str) or column not in known:
                raise InputError(
                    f"{source}: column {shown(column)} is neither a parameter nor an outcome of this campaign. "
                    f"Rename it to one of {shown(sorted(known), 300)} or remove it."
                )
        for name in cfg.outcomes:
            if name not in df.columns:
                raise InputError(f"{source}: column {name!r} is missing. Add it; leave cells empty for failed runs.")
        designs_df, warnings = validate_designs(self.config.space(), df, source)
        outcomes_df = _numeric_outcomes(df[cfg.outcomes], source)
        _check_binary(outcomes_df[cfg.binary_outcomes], source)
        flags = _failed_flags(df[FAILED], source) if FAILED in df else pd.Series(False, index=df.index)
        trust = _trust_weights(df[weight], source, weight) if weight in df else pd.Series(1.0, index=df.index)
        rows = [
            _plain(d) | _plain(o) | {FAILED: bool(f)} | ({} if w == 1.0 else {weight: float(w)})
            for d, o, f, w in zip(
                designs_df.to_dict("records"), outcomes_df.to_dict("records"), flags, trust, strict=True
            )
        ]
        skipped = self.store.add_measurements(rows, [_fingerprint(r) for r in rows], source)
        labels = list(df.index)
        inserted = np.ones(len(rows), dtype=bool)
        inserted[skipped] = False
        failed = int((outcomes_df.isna().any(axis=1) | flags).to_numpy()[inserted].sum())
        duplicates = [f"{source}, row {labels[i]}: already recorded, skipped." for i in skipped]
        return ImportReport(len(rows) - len(skipped), duplicates, failed, warnings)

    # -- proposals --------------------------------------------------------------------------

    def propose(self, n: int = 4, candidates: pd.DataFrame | None = None) -> pd.DataFrame:
        """Propose and record the next `n` experiments.

        Args:
            n: Batch size.
            candidates: Optional pool of available designs (parameter columns); the best `n`
                rows are returned, keeping the pool's index.

        Returns:
            One row per design: parameter columns in user units, `<outcome>_mean` and
            `<outcome>_sd` for every outcome; with safety limits `p_safe`, `meets_confidence`
            and `role`; once runs have failed, `p_feasible`. `attrs` holds `method`, `notes`
            and `batch_id`.
        """
        if n < 1:
            raise InputError(f"n must be a positive number of experiments. Got {n} instead.")
        pool = None
        if candidates is not None:
            space = self.config.space()
            pool, _ = validate_designs(space, candidates, "candidates")
            feasible = space.feasible(pool)
            pool = pool[feasible & ~pool.duplicated().to_numpy()]  # a design listed twice is one choice
            if pool.empty:
                raise InputError("candidates: no row satisfies the campaign's constraints. Check the pool.")
        # One proposer at a time per campaign: concurrent callers (lab members, robots) each see the
        # batches recorded before theirs as pending, so no two batches repeat a design.
        with self.store.proposing():
            measured = self.measurements
            seed = self._next_seed()
            with torch_threads(1):  # small GPs run several times faster on one thread
                proposal = make_proposals(
                    self.config,
                    measured,
                    self.open_proposals,
                    n,
                    pool,
                    seed,
                    cache=ModelCache(self.path),
                    claims_df=self.measured_proposals() if self.config.safety else None,
                )
            if candidates is not None and not feasible.all():
                proposal.notes.insert(
                    0, f"candidates: skipped {int((~feasible).sum())} row(s) that break a constraint."
                )
            table = proposal.table
            rows = [_plain(r) for r in table.to_dict("records")]
            batch_id = self.store.add_batch(proposal.method, proposal.notes, rows)
        table.attrs.update(method=proposal.method, notes=proposal.notes, batch_id=batch_id)
        return table

    # -- views ------------------------------------------------------------------------------

    @property
    def measurements(self) -> pd.DataFrame:
        """Every recorded measurement: parameters, outcomes, `failed`, then `id`, `added_at`, `source`.

        Once any row was recorded with a trust weight other than 1, a `weight` column (1 where
        none was given) follows `failed`.
        """
        df = self.store.measurements()
        columns = self.config.parameter_names + self.config.outcomes + [FAILED]
        if df.empty:
            return pd.DataFrame(columns=columns + ["id", "added_at", "source"])
        weight = self.config.weight_column
        if weight in df:
            df[weight] = pd.to_numeric(df[weight]).fillna(1.0).astype(float)
            columns.append(weight)
        if FAILED not in df:  # campaigns recorded before the `failed` column existed
            df[FAILED] = False
        df[FAILED] = df[FAILED].fillna(False).astype(bool)
        for name in self.config.outcomes:  # a never-measured outcome comes back as None
            df[name] = pd.to_numeric(df[name]).astype(float)
        return df[columns + ["id", "added_at", "source"]].reset_index(drop=True)

    @property
    def proposals(self) -> pd.DataFrame:
        """Every proposal ever made, with `batch_id`, `created_at`, `method` and `status` (open/measured)."""
        df = self.store.proposals()
        if df.empty:
            return df
        measured = _was_measured(self.config.space(), df, self.store.measurements())
        df["status"] = np.where(measured, "measured", "open")
        return df

    @property
    def open_proposals(self) -> pd.DataFrame:
        """Proposals not measured yet (they are pending points for the next batch)."""
        df = self.proposals
        if df.empty:
            return pd.DataFrame(columns=self.config.parameter_names)
        return df[df["status"] == "open"][self.config.parameter_names].reset_index(drop=True)

    def open_proposal_details(self) -> pd.DataFrame:
        """The open proposals with what `propose` predicted for them: batch, design, means, sds, p_safe, role."""
        df = self.proposals
        if df.empty:
            return pd.DataFrame(columns=["batch_id", *self.config.parameter_names])
        predicted = [c for c in prediction_columns(self.config) if c in df]
        columns = ["batch_id", *self.config.parameter_names, *predicted]
        return df[df["status"] == "open"][columns].reset_index(drop=True)

    def measured_proposals(self) -> pd.DataFrame:
        """Each proposal that was measured: what `propose` predicted beside what was measured.

        Columns: the proposal's own (`batch_id`, design, `<outcome>_mean`, `_sd`, `p_safe`, ...),
        then `measured_<outcome>` per outcome, `measured_failed` and `measured_safe` (succeeded
        and within every limit) of the first measurement of that design.
        """
        proposals, measured = self.store.proposals(), self.measurements
        match = _first_match(self.config.space(), proposals, measured)
        done = proposals[match >= 0].reset_index(drop=True)
        rows = measured.iloc[match[match >= 0]].reset_index(drop=True)
        for name in self.config.outcomes:
            done[f"measured_{name}"] = rows[name].to_numpy()
        done["measured_failed"] = (rows[self.config.outcomes].isna().any(axis=1) | rows[FAILED].astype(bool)).to_numpy()
        done["measured_safe"] = self.safe_successes(rows) if len(rows) else np.zeros(0, dtype=bool)
        return done

    def best(self) -> pd.Series | None:
        """The best successful measurement (first objective) that respects every safety limit, or None."""
        df = self.measurements
        ok = self.safe_successes(df)
        if not ok.any():
            return None
        objective = self.config.objectives[0]
        scores = df[objective.name][ok].astype(float).map(objective.score)
        return df.loc[scores.idxmax()]

    def pareto_front(self) -> pd.DataFrame:
        """The successful, safe measurements that no other such measurement beats on every objective."""
        df = self.measurements
        safe = df[self.safe_successes(df)]
        if safe.empty:
            return safe
        scores = torch.tensor(
            np.stack([safe[o.name].astype(float).map(o.score).to_numpy() for o in self.config.objectives], axis=-1)
        )
        return safe[is_non_dominated(scores, deduplicate=False).numpy()]

    def safe_successes(self, df: pd.DataFrame) -> np.ndarray:
        """Mask of the measurements (rows of `self.measurements`) that succeeded and respect every limit."""
        succeeded = (df[self.config.outcomes].notna().all(axis=1) & ~df[FAILED].astype(bool)).to_numpy()
        return succeeded & limits_hold(self.config.safety, df)

    def _next_seed(self) -> int:
        return self.config.seed + self.store.count_batches()


def _check_shape(df: object, source: str) -> None:
    """A table of measurements: a DataFrame with distinct column names and distinct row labels."""
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"{source}: measurements must be a pandas DataFrame. Got {type(df).__name__} instead.")
    repeated = df.columns[df.columns.duplicated()]
    if len(repeated):
        raise InputError(
            f"{source}: column {shown(repeated[0])} appears more than once. Give every column its own name."
        )
    repeated = df.index[df.index.duplicated()]
    if len(repeated):
        raise InputError(
            f"{source}: row label {shown(repeated[0])} appears more than once (messages name rows by the index). "
            "Give every row its own label, e.g. with df.reset_index(drop=True)."
        )


def _numeric_outcomes(df: pd.DataFrame, source: str) -> pd.DataFrame:
    out = {}
    for name in df.columns:
        col = df[name]
        numbers, text = to_numbers(col)
        bad = text | np.isinf(numbers.to_numpy())
        if bad.any():
            row = col.index[bad.argmax()]
            raise InputError(
                f"{source}, row {row}, column {shown(name)}: {not_a_number(col[row])}. "
                "Enter a finite number, or leave the cell empty for a failed run."
            )
        out[name] = numbers
    return pd.DataFrame(out, index=df.index)


def _check_binary(df: pd.DataFrame, source: str) -> None:
    """A binary outcome holds 0 or 1 (empty: a failed run)."""
    for name in df.columns:
        col = df[name]
        bad = col.notna() & ~col.isin([0.0, 1.0])
        if bad.any():
            row = col.index[bad.to_numpy().argmax()]
            raise InputError(
                f"{source}, row {row}, column {name!r}: {float(col[row]):g} is not 0 or 1 ({name} is a binary "
                "outcome). Enter 1 (yes) or 0 (no), or leave the cell empty for a failed run."
            )


def _trust_weights(col: pd.Series, source: str, name: str) -> pd.Series:
    """Parse the optional trust-weight column: positive numbers, empty meaning 1."""
    numbers, text = to_numbers(col)
    bad = text | ~np.isfinite(numbers.fillna(1.0).to_numpy()) | (numbers <= 0).to_numpy()
    if bad.any():
        row = col.index[bad.argmax()]
        raise InputError(
            f"{source}, row {row}, column {name!r}: {_not_positive(col[row])}. Enter a trust weight "
            "> 0 (1 = a measurement as trusted as any; 0.25 counts as twice the noise sd), or leave it empty for 1."
        )
    return numbers.fillna(1.0)


def _not_positive(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return not_a_number(value)  # "True is a yes/no value, not a number"
    return f"{shown(value)} is not a positive number"


def _failed_flags(col: pd.Series, source: str) -> pd.Series:
    """Parse the optional `failed` column: empty, 0/1, true/false, yes/no."""
    words = {"": False, "0": False, "false": False, "no": False, "1": True, "true": True, "yes": True}
    text = col.astype(object).where(col.notna(), "").astype(str).str.strip().str.lower()
    text = text.replace({"nan": "", "none": "", "0.0": "0", "1.0": "1"})
    bad = ~text.isin(list(words))
    if bad.any():
        row = col.index[bad.argmax()]
        raise InputError(
            f"{source}, row {row}, column {FAILED!r}: {shown(col[row])} is not yes/no. Use 1/0, true/false or yes/no."
        )
    return text.map(words).astype(bool)


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready values: numpy scalars to Python, NaN to None."""
    out = {}
    for k, v in record.items():
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and v != v:
            v = None
        out[k] = v
    return out


def _fingerprint(record: dict[str, Any]) -> str:
    """A canonical text key of a whole row, floats to 10 significant digits (for duplicates)."""
    return json.dumps({k: float(f"{v:.10g}") if isinstance(v, float) else v for k, v in record.items()}, sort_keys=True)


# A lab may record what it made to fewer digits than proposed: a measurement within this
# fraction of every continuous parameter's range (categories and integers exact) closes a proposal.
MATCH_TOLERANCE = 1e-3


def _was_measured(space, proposals_df: pd.DataFrame, measured_df: pd.DataFrame) -> np.ndarray:
    return _first_match(space, proposals_df, measured_df) >= 0


def _first_match(space, proposals_df: pd.DataFrame, measured_df: pd.DataFrame) -> np.ndarray:
    """Per proposal, the position of the first measurement of that design (within `MATCH_TOLERANCE`), or -1."""
    if measured_df.empty or proposals_df.empty:
        return np.full(len(proposals_df), -1)
    P, M = space.encode(proposals_df), space.encode(measured_df)
    tolerance = torch.full((space.d,), MATCH_TOLERANCE, dtype=P.dtype)
    tolerance[list(space.cat_dims) + list(space.discrete_dims)] = 1e-9
    close = ((P[:, None, :] - M[None, :, :]).abs() <= tolerance).all(dim=-1)
    return torch.where(close.any(dim=1), close.int().argmax(dim=1), -1).numpy()


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Torch on `n` threads for the duration."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
