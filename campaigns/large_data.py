"""Campaigns with thousands of rows: GPs fitted to a sample, conditioned on a local-plus-global subset.

An exact GP costs `O(n^3)` per likelihood evaluation and `O(n^2)` memory, and fitting one
evaluates its likelihood a few hundred times: on 2 cores a mixed-space GP took 42 s to fit at
300 rows and 72 s at 500 (a busy machine). Two steps keep that in check:

1. Above `HYPER_ROWS` rows the hyperparameters are fitted to a random sample of that many
   (`hyperparameter_rows`), and the GP then conditions on all rows it is given: one Cholesky.
2. Above `MAX_GP_ROWS` rows the GP is given `MAX_GP_ROWS` of them, in the spirit of TuRBO's
   local models (Eriksson et al., NeurIPS 2019):

- half are the rows nearest the best designs so far (the `CENTRES` best measured-safe rows,
  or the best rows if none is safe): where the next proposals are likely to be, the model
  sees every measurement there is;
- the other half are drawn at random from the rest, so the model still knows the whole space,
  with the density of the data.

Failed runs (no outcome) go into the same subset when they are picked, so the failure
classifier learns from the same rows. Away from the rows kept, the GP has less data than the
campaign holds, so it is typically less sure there than a GP on every row: P(safe) errs low.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from design import Objective, objective_function

# Chosen from measurements on the nanoparticle config at 1,000 rows (seeds 0-3, one thread, a
# quiet machine). The acquisition's every evaluation multiplies by an `n x n` root of the
# kernel matrix, so its cost grows as `n^2`: a proposal took 23-29 s with 1,000 rows kept and
# 15-17 s with 500, and the batches were as good (best true activation 6.94-7.00 against
# 6.93-7.10, every design truly safe, p_safe >= 0.98 on both). Held-out RMSE over the whole
# space rose from 0.074-0.085 to 0.085-0.100, and near the best designs it stayed at 0.18-0.22,
# mostly the measurement noise; 95 % intervals covered 93-97 % on both.
MAX_GP_ROWS = 500  # rows a GP conditions on (one Cholesky of this size per proposal)
# Hyperparameters from 200 rows instead of 300: fitting took 5.0-6.4 s instead of 8.2-9.8 s for
# the two GPs (at 200 L-BFGS steps; now 100, see `surrogates.gp.fit_steps`), with the same
# held-out RMSE (0.076 / 0.089 against 0.074 / 0.085) and coverage.
HYPER_ROWS = 200  # rows its hyperparameters are fitted to (hundreds of likelihood evaluations)
CENTRES = 10


def hyperparameter_rows(n: int, seed: int = 0, max_rows: int = HYPER_ROWS) -> np.ndarray | None:
    """Sorted indices of `max_rows` of `n` rows drawn at random to fit hyperparameters to, or None if `n` is small.

    The marginal likelihood's optimizer evaluates it and its gradient a few hundred times, each
    `O(n^3)`; a few hundred rows pin down a handful of lengthscales, an amplitude and a noise
    level as well as thousands do.
    """
    if n <= max_rows:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))


def gp_rows(X: Tensor, score: np.ndarray, good: np.ndarray, max_rows: int = MAX_GP_ROWS, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most `max_rows` rows of `X`: the nearest to the best, then random ones.

    Args:
        X: `n x d` encoded designs (unit cube).
        score: `n` values, higher is better (NaN for rows that cannot be a centre: failed runs).
        good: `n` booleans, rows allowed as centres when any is (measured safe); else any scored row.
        max_rows: How many rows to keep.
        seed: Seeds the random half.
    """
    n = X.shape[0]
    if n <= max_rows:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    scored = ~np.isnan(score)
    if not scored.any():
        return np.sort(rng.choice(n, size=max_rows, replace=False))
    allowed = good & scored if (good & scored).any() else scored
    ranked = np.where(allowed, np.nan_to_num(score, nan=-np.inf), -np.inf)
    centres = np.argsort(-ranked, kind="stable")[: min(CENTRES, int(allowed.sum()))]
    near = torch.cdist(X, X[torch.as_tensor(centres)]).min(dim=1).values.numpy()
    local = np.argsort(near, kind="stable")[: max_rows // 2]
    rest = np.setdiff1d(np.arange(n), local)
    spread = rng.choice(rest, size=max_rows - len(local), replace=False)
    return np.sort(np.concatenate([local, spread]))


def goal_score(objectives: list[Objective], outcomes: list[str], Y: Tensor) -> np.ndarray:
    """Higher is better per row: the objective's score, or with several the mean of their rank shares (NaN: failed)."""
    scores = torch.stack([objective_function(o, outcomes)(Y) for o in objectives], dim=-1).numpy()
    if scores.shape[-1] == 1:
        return scores[:, 0]
    return pd.DataFrame(scores).rank(pct=True).mean(axis=1, skipna=False).to_numpy()
