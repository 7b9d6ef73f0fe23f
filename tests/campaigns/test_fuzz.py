"""Property-based tests (hypothesis) of the importer and the config loader: no crash, no bad row or config accepted.

Bounded for `make test`; for the long run (10,000 cases per test):

    VALLEY_FUZZ_EXAMPLES=10000 OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/campaigns/test_fuzz.py -p no:cacheprovider
"""

from __future__ import annotations

import copy
import math
import os

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from campaigns import Campaign
from campaigns.config import MAX_SEED, MIN_ROOM, dump_config, load_config
from design import InputError

EXAMPLES = int(os.environ.get("VALLEY_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=EXAMPLES <= 100,  # the bounded run is the same every time
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

CONFIG = {
    "name": "fuzz",
    "seed": 3,
    "parameters": [
        {"name": "x", "type": "continuous", "bounds": [0, 10]},
        {"name": "n", "type": "integer", "bounds": [1, 5]},
        {"name": "c", "type": "categorical", "values": ["a", "b"]},
        {"name": "d", "type": "continuous", "bounds": [0.1, 100], "log": True},
    ],
    "constraints": ["x + 2 * n <= 12"],
    "objectives": [{"name": "y", "goal": "maximize"}],
    "safety": [{"name": "s", "upper": 1.0, "confidence": 0.9}],
}
NUMERIC = {"x": (0.0, 10.0), "n": (1, 5), "d": (0.1, 100.0)}
OUTCOMES = ["y", "s"]
KNOWN = ["x", "n", "c", "d", "y", "s", "failed", "weight"]
YES_NO = {"", "0", "false", "no", "1", "true", "yes", "nan", "none", "0.0", "1.0"}


def _message_ok(error: Exception) -> None:
    message = str(error)
    assert message and "\n" not in message, message
    assert len(message) < 1500, message[:200]
    assert "np.float" not in message and "np.int" not in message and "np.str" not in message, message


# -- the importer ------------------------------------------------------------------------------------------

wild = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e-300, max_value=1e-300),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.integers(min_value=-3, max_value=12),
    st.booleans(),
    st.none(),
    st.sampled_from(["", " ", "nan", "inf", "-inf", "1e400", "1" * 500, "1,5", "TRUE", "yes", "a", "b", " a ", "é"]),
    st.text(max_size=20),
    st.floats(min_value=-20, max_value=120).map(str),
    st.sampled_from([np.float64(np.inf), np.int64(3), np.bool_(True), np.float32(2.5), pd.NaT, pd.NA]),
)


def _valid(column: str, rng: np.random.Generator) -> object:
    """A good cell for `column` (bounds themselves included)."""
    if column in NUMERIC:
        low, high = NUMERIC[column]
        if column == "n":
            return int(rng.integers(low, high + 1))
        return float(rng.choice([low, high])) if rng.random() < 0.1 else float(rng.uniform(low, high))
    if column == "c":
        return str(rng.choice(["a", "b"]))
    if column == "weight":
        return float(rng.uniform(0.01, 10))
    if column == "failed":
        return [0, 1, "yes", "no", True, False, ""][int(rng.integers(7))]
    return None if rng.random() < 0.2 else float(rng.normal())


@st.composite
def tables(draw) -> pd.DataFrame:
    """Tables near the campaign's shape: good cells and a few wild ones; odd names, duplicates, dtypes.

    The good cells come from a seeded numpy generator (cheap); hypothesis draws the shape and the wild cells.
    """
    names = ["x", "n", "c", "d", "y", "s"] + draw(st.lists(st.sampled_from(["failed", "weight"]), max_size=2))
    if draw(st.integers(0, 4)) == 0:
        names = draw(st.lists(st.one_of(st.sampled_from(KNOWN), st.text(max_size=8), st.integers(0, 3)), max_size=9))
    n_rows = draw(st.integers(0, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows = [[_valid(str(name), rng) for name in names] for _ in range(n_rows)]
    if n_rows and names:
        for _ in range(draw(st.integers(0, 4))):
            rows[draw(st.integers(0, n_rows - 1))][draw(st.integers(0, len(names) - 1))] = draw(wild)
    labels = st.lists(st.integers(0, 3), min_size=n_rows, max_size=n_rows)
    index = draw(st.one_of(st.just(list(range(2, n_rows + 2))), labels))
    df = pd.DataFrame(rows, columns=pd.Index(names, dtype=object), index=index, dtype=object)
    if draw(st.booleans()):
        df = df.infer_objects()  # float, int and bool columns, as read_csv would give
    return df


def _number(v: object) -> float | None:
    """The reference reading of a number cell: NaN if empty, None if not a number."""
    if v is None or v is pd.NA or v is pd.NaT:
        return math.nan
    if isinstance(v, bool | np.bool_):
        return None
    if isinstance(v, int | np.integer):
        return float(v) if abs(int(v)) < 10**308 else math.inf
    if isinstance(v, float | np.floating):
        return float(v)
    if isinstance(v, str):
        if not v.strip():
            return math.nan
        try:
            return float(v.strip())
        except ValueError:
            return None
    return None


def _acceptable(df: pd.DataFrame) -> bool:
    """An independent check of what the importer must accept."""
    names = list(df.columns)
    if len(set(names)) != len(names) or df.index.has_duplicates:
        return False
    if not all(isinstance(n, str) and n in KNOWN for n in names) or not set(OUTCOMES) <= set(names):
        return False
    if not {"x", "n", "c", "d"} <= set(names):
        return False
    for name in names:
        for v in df[name].astype(object):
            if name == "c":
                if str(v).strip() not in ("a", "b") or v is None or (isinstance(v, float) and v != v):
                    return False
                continue
            if name == "failed":
                empty = v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)
                text = "" if empty else str(v).strip().lower()
                if text not in YES_NO:
                    return False
                continue
            x = _number(v)
            if x is None:
                return False
            if name in NUMERIC:
                low, high = NUMERIC[name]
                if not (math.isfinite(x) and low <= x <= high) or (name == "n" and x != round(x)):
                    return False
            elif name == "weight":
                if x == x and not (math.isfinite(x) and x > 0):
                    return False
            elif math.isinf(x):
                return False
    return True


class _Recorder:
    """Stands in for the campaign's store: keeps the rows the importer would write."""

    def __init__(self):
        self.rows: list[dict] = []

    def add_measurements(self, rows, fingerprints, source):
        self.rows = list(rows)
        return []


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    camp = Campaign.create(tmp_path_factory.mktemp("fuzz") / "camp", CONFIG)
    camp.store = _Recorder()
    return camp


@FUZZ
@given(df=tables())
def test_the_importer_never_crashes_and_accepts_only_good_rows(campaign, df):
    campaign.store.rows = []
    try:
        report = campaign.add_measurements(df)
    except InputError as error:
        _message_ok(error)
        assert not _acceptable(df), f"refused a good table: {error}"
        event("table refused")
        return
    assert _acceptable(df), "accepted a bad table"
    event("table accepted")
    assert report.added == len(df) == len(campaign.store.rows)
    for row in campaign.store.rows:
        for name, (low, high) in NUMERIC.items():
            assert type(row[name]) is (int if name == "n" else float) and low <= row[name] <= high
        assert row["c"] in ("a", "b") and type(row["failed"]) is bool
        for name in OUTCOMES:
            assert row[name] is None or (type(row[name]) is float and math.isfinite(row[name]))
        assert "weight" not in row or (type(row["weight"]) is float and 0 < row["weight"] < math.inf)


# -- the config loader -------------------------------------------------------------------------------------

leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["x", "y", "s", "continuous", "integer", "categorical", "maximize", "target", "x <= 5", "gp"]),
)
values = st.recursive(
    leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
MUTABLE_CONFIG = {
    **CONFIG,
    "parameters": [*CONFIG["parameters"], {"name": "z", "type": "continuous", "bounds": [-1, 1]}],
    "constraints": ["x + 2 * n <= 12", "z - x >= -10"],
    "objectives": [{"name": "y", "goal": "target", "target": 2.0, "reference": 0.0}],
    "safety": [{"name": "s", "lower": -1.0, "upper": 1.0, "confidence": 0.9, "noise_sd": 0.1}],
    "surrogate": {"kind": "gp"},
    "acquisition": {"num_restarts": 2, "raw_samples": 32, "mc_samples": 32},
}


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


ALL_PATHS = [p for p in _paths(MUTABLE_CONFIG) if p]
NEAR_TEXT = ["x", "n", "c", "d", "z", "y", "s", "w", "x + z <= 3", "x - 2 * z >= 9.5", "n == 2", "z == 0.5", "x <= 0"]
NEAR_TEXT += ["continuous", "integer", "categorical", "maximize", "minimize", "target", "ensemble", "auto", ""]


@st.composite
def mutated_configs(draw) -> dict:
    """A valid config with one to three fields replaced, removed or added."""
    config = copy.deepcopy(MUTABLE_CONFIG)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(ALL_PATHS))
        parent = config
        try:
            for key in path[:-1]:
                parent = parent[key]
            action = draw(st.sampled_from(["replace", "nudge", "nudge", "delete", "add"]))
            current = parent[path[-1]]
            if action == "nudge" and isinstance(current, int | float) and not isinstance(current, bool):
                parent[path[-1]] = draw(st.one_of(st.integers(-20, 20), st.floats(-100, 100), st.floats(-1e-6, 1e-6)))
            elif action == "nudge" and isinstance(current, str):
                parent[path[-1]] = draw(st.sampled_from(NEAR_TEXT))
            elif action == "delete" and isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif action == "add" and isinstance(parent, dict):
                parent[draw(st.text(max_size=6))] = draw(values)
            else:
                parent[path[-1]] = draw(values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed that path
    return config


def _sound(config) -> None:
    """What an accepted config must give: a searchable space and finite goals, stored and read back equal."""
    assert 0 <= config.seed <= MAX_SEED
    space = config.space()
    room = space.room()
    assert room is not None and (room >= MIN_ROOM or not config.constraints)
    for goal in [*config.objectives, *config.safety]:
        for field in ("target", "reference", "lower", "upper", "noise_sd"):
            value = getattr(goal, field, None)
            assert value is None or math.isfinite(value)
    for p in config.parameters:
        if hasattr(p, "bounds"):
            assert all(math.isfinite(b) for b in p.bounds) and p.bounds[0] < p.bounds[1]
    assert load_config(yaml.safe_load(dump_config(config))) == config  # `init` stores it, `open` reads it


def _load(source):
    try:
        config = load_config(source)
    except InputError as error:
        _message_ok(error)
        event("config refused")
        return None
    _sound(config)
    event("config accepted")
    return config


@FUZZ
@given(config=mutated_configs())
def test_mutated_configs_load_or_give_one_line(config):
    _load(config)


@FUZZ
@given(source=st.one_of(values, st.dictionaries(st.sampled_from([*CONFIG, "x"]), values, max_size=8)))
def test_random_values_load_or_give_one_line(source):
    _load(source)


@FUZZ
@given(
    text=st.one_of(
        st.text(st.characters(exclude_categories=("Cs",)), max_size=200),
        st.tuples(st.builds(yaml.safe_dump, mutated_configs()), st.floats(0.3, 1.0)).map(
            lambda pair: pair[0][: int(len(pair[0]) * pair[1])]  # cut anywhere, as a truncated file would be
        ),
    )
)
def test_random_yaml_text_loads_or_gives_one_line(tmp_path_factory, text):
    path = tmp_path_factory.getbasetemp() / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    _load(path)


def test_the_reference_check_agrees_on_simple_tables():
    good = pd.DataFrame({"x": [1.0], "n": [2], "c": ["a"], "d": [1.0], "y": [None], "s": [0.5]})
    assert _acceptable(good)
    assert not _acceptable(good.assign(x=[True]))
    assert not _acceptable(good.assign(y=[math.inf]))
    assert not _acceptable(good.set_axis(["x", "n", "c", "d", "y", "y"], axis=1))
