"""Large campaigns: GPs learn from a local-plus-global subset, and proposals stay valid and safe-flagged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from campaigns.config import load_config
from campaigns.large_data import HYPER_ROWS, gp_rows, hyperparameter_rows
from campaigns.propose import make_proposals
from tests.campaigns.test_propose import PARAMS, SMALL, assert_valid, measure


def test_gp_rows_keep_the_neighbourhood_of_the_best_and_a_random_rest():
    X = torch.rand(2000, 2, dtype=torch.double, generator=torch.Generator().manual_seed(0))
    score = -(X - 0.3).norm(dim=-1).numpy()  # best at (0.3, 0.3)
    good = np.ones(2000, dtype=bool)
    rows = gp_rows(X, score, good, max_rows=400, seed=1)
    assert len(rows) == len(set(rows)) == 400 and (np.diff(rows) > 0).all()
    near = (X - 0.3).norm(dim=-1).numpy() < 0.05
    assert set(np.flatnonzero(near)) <= set(rows)  # every row around the best is kept
    far = (X[rows] - 0.3).norm(dim=-1).numpy() > 0.5
    assert far.sum() > 20  # and the model still sees the rest of the space
    assert np.array_equal(rows, gp_rows(X, score, good, max_rows=400, seed=1))


def test_gp_rows_centre_on_safe_rows_and_skip_failed_ones():
    X = torch.tensor([[0.0], [0.1], [0.5], [0.9], [1.0]], dtype=torch.double).repeat(40, 1)
    X = X + 1e-3 * torch.arange(200, dtype=torch.double).unsqueeze(-1) / 200
    score = np.tile([5.0, 1.0, 0.0, np.nan, 9.0], 40)  # the best (9 at x=1) is unsafe; x=0.9 failed
    good = np.tile([True, True, True, True, False], 40)
    rows = gp_rows(X, score, good, max_rows=40, seed=0)
    local = rows[np.argsort((X[rows, 0] - 0.0).abs().numpy())][:20]
    assert (X[local, 0] < 0.05).all()  # centred on the best safe design (x = 0), not the unsafe one
    assert gp_rows(X, np.full(200, np.nan), good, max_rows=40).shape == (40,)  # all failed: a random subset


def test_small_campaigns_keep_every_row():
    assert hyperparameter_rows(HYPER_ROWS) is None
    assert len(hyperparameter_rows(HYPER_ROWS + 1)) == HYPER_ROWS
    X = torch.rand(50, 2, dtype=torch.double)
    assert np.array_equal(gp_rows(X, np.zeros(50), np.ones(50, dtype=bool), max_rows=50), np.arange(50))


def test_a_3000_row_campaign_proposes_valid_safe_flagged_designs():
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(6000, 2))
    designs = pd.DataFrame(X[X.sum(axis=1) <= 1.2][:3000], columns=PARAMS)
    measured = measure(designs)
    measured["y"] += 0.01 * rng.standard_normal(len(measured))
    cfg = load_config(SMALL)
    proposal = make_proposals(cfg, measured, measured.iloc[:0][PARAMS], 3, seed=0)
    assert any("3000 measurements: the GPs learn from 500" in note for note in proposal.notes)
    assert any("fitted to 200 of the 500 rows" in note for note in proposal.notes)
    table = proposal.table
    assert_valid(table, 3)
    assert table["meets_confidence"].all() and (table["p_safe"] >= 0.9).all()
    assert (table["x1"] <= 0.9).all()  # truly safe: `s` is x1, limit 0.9
    assert (table["y_mean"] > -0.05).all()  # near the best feasible design (y = -0.045 at (0.65, 0.55))
