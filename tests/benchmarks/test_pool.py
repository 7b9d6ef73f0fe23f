"""The pool benchmark: its targets, its methods' picks and its count of experiments."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.pool import RUNNERS, initial_rows, make_pool, run_pool, summarize
from campaigns.config import load_config
from data import get_system


def test_the_targets_are_the_best_safe_rows_of_the_pool():
    system = get_system("gardner")
    pool_df, targets, safe = make_pool(system, 300, seed=0)
    assert targets.sum() == 3 and safe[targets].all()
    objective = load_config(system.config).objectives[0]
    score = system.simulate(pool_df, None)[objective.name].map(objective.score).to_numpy()
    assert score[targets].min() >= score[safe & ~targets].max()


def test_every_method_picks_distinct_rows_it_has_not_measured(tmp_path):  # valley is given the whole pool
    system = get_system("gardner")
    pool_df, _, safe = make_pool(system, 80, seed=1)
    rows = initial_rows(safe, 2, seed=1)
    assert safe[rows[0]] and len(set(rows)) == 3
    rest = [i for i in range(80) if i not in rows]
    for method, make in RUNNERS.items():
        if method in ("valley-0.8", "baybe"):  # valley's class again; BayBE's import alone takes seconds
            continue
        runner = make(system, pool_df, tmp_path / method, 1)
        runner.measured(rows, system.simulate(pool_df.loc[rows], np.random.default_rng(0)))
        picked = runner.pick(rest, 3)
        assert len(set(picked)) == 3 and set(picked) <= set(rest), method


def test_experiments_count_to_the_first_target_measured(tmp_path):
    found = run_pool("gardner", "random", seed=0, workdir=tmp_path, size=40, budget=40, batch=4)
    assert found["measured"] >= found["experiments"] >= 1  # one target in 40 rows: random reaches it
    before = int(found["experiments"]) - 1
    short = run_pool("gardner", "random", seed=0, workdir=tmp_path, size=40, budget=before, batch=4)
    assert np.isnan(short["experiments"]) and short["measured"] == before
    table = summarize(pd.DataFrame([found, short]), budget=40)
    assert table["found"].tolist() == ["50%"]
