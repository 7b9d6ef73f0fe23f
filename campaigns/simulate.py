"""Simulated campaigns: a bundled system plays the lab, Valley proposes, and we keep score."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd

from campaigns.campaign import Campaign
from data import System
from data.ray_simulate import simulate_designs
from data.ray_tasks import RayCluster, ray_session
from design import Objective, limits_hold

RoundCallback = Callable[[int, pd.DataFrame], None]


def run_simulated_campaign(
    system: System,
    directory: str | Path,
    rounds: int = 5,
    batch: int = 4,
    n_initial: int | None = None,
    seed: int = 0,
    initial_df: pd.DataFrame | None = None,
    on_round: RoundCallback | None = None,
    ray: str | RayCluster | None = None,
) -> pd.DataFrame:
    """Run a campaign on `system`'s simulator: an initial design, then `rounds` batches.

    Each proposed batch is "measured" by the simulator with noise and added to the campaign,
    exactly as a lab would add its results. Scores use the noise-free (true) outcomes.

    Args:
        system: A bundled system (`data.get_system`).
        directory: Where the campaign is created (must not hold one already).
        rounds: Number of batches after the initial design.
        batch: Designs per batch.
        n_initial: Size of the initial design; default the number of parameters + 1.
        seed: Seeds the campaign and the measurement noise.
        initial_df: Designs to measure first instead of Valley's own initial design (the
            benchmark gives every method the same ones); `n_initial` is then ignored.
        on_round: Called after each round with the round number and the history so far.
        ray: None simulates each batch here; `"auto"`, a cluster's address or a `RayCluster`
            simulates each design of a batch as one Ray task (`data.ray_simulate`), with the
            noise it would get here: the same history for the same seed. One connection (with
            `"auto"`, one local cluster) serves every batch.

    Returns:
        One row per experiment: `round`, `method`, `seconds` (to propose its batch, per design),
        the parameters, the measured outcomes, `true_<outcome>` for each, `p_safe` and
        `meets_confidence` as proposed (NaN and False for the given initial designs or without
        limits), `predicted_mean` and `predicted_sd` of the first objective as proposed (NaN
        for the given initial designs), `safe` (true outcomes within every safety limit) and
        `best_safe` (best true objective among safe experiments so far, NaN until there is one).
    """
    camp = Campaign.create(directory, {**system.config, "seed": seed})
    cfg = camp.config
    rng = np.random.default_rng(seed)
    n_initial = n_initial or len(cfg.parameters) + 1
    history: list[pd.DataFrame] = []
    with nullcontext() if ray is None else ray_session(ray):  # one cluster for every batch
        for r in range(rounds + 1):
            start = time.perf_counter()
            claimed = None  # P(safe) that Valley claimed for each design of the batch
            predicted = (np.nan, np.nan)  # the objective's predicted mean and sd at each design of the batch
            if r == 0 and initial_df is not None:
                designs, method = initial_df[cfg.parameter_names].reset_index(drop=True), "given"
            else:
                proposals = camp.propose(n_initial if r == 0 else batch)
                designs, method = proposals[cfg.parameter_names].reset_index(drop=True), proposals.attrs["method"]
                if "meets_confidence" in proposals:
                    p_safe, meets = proposals["p_safe"], proposals["meets_confidence"]
                    claimed = p_safe.to_numpy(dtype=float), meets.to_numpy(dtype=bool)
                objective = cfg.objectives[0].name
                if f"{objective}_mean" in proposals and f"{objective}_sd" in proposals:
                    predicted = (
                        proposals[f"{objective}_mean"].to_numpy(float),
                        proposals[f"{objective}_sd"].to_numpy(float),
                    )
            seconds = (time.perf_counter() - start) / max(len(designs), 1)
            measured, true = simulate_designs(system.simulate, designs, [rng, None], ray)
            camp.add_measurements(designs.join(measured), source=f"simulated round {r}")
            true = true.add_prefix("true_")
            rows = designs.join(measured).join(true)
            rows["p_safe"] = claimed[0] if claimed is not None else np.nan
            rows["meets_confidence"] = claimed[1] if claimed is not None else False
            rows["predicted_mean"], rows["predicted_sd"] = predicted
            rows.insert(0, "seconds", seconds)
            rows.insert(0, "method", method)
            rows.insert(0, "round", r)
            history.append(rows)
            scored = _score(pd.concat(history, ignore_index=True), cfg)
            if on_round is not None:
                on_round(r, scored)
    return scored


def _score(df: pd.DataFrame, cfg) -> pd.DataFrame:
    df = df.copy()
    df["safe"] = limits_hold(cfg.safety, df, prefix="true_")
    df["best_safe"] = best_safe_so_far(df[f"true_{cfg.objectives[0].name}"], df["safe"], cfg.objectives[0])
    return df


def best_safe_so_far(values: pd.Series, safe: pd.Series, objective: Objective) -> pd.Series:
    """After each experiment, the best objective value among the safe ones so far (NaN before any)."""
    score = values.astype(float).map(objective.score).where(safe)
    best = score.fillna(-np.inf).cummax().replace(-np.inf, np.nan)  # carry the best across unsafe runs
    return best if objective.goal == "maximize" else -best  # back to the objective's units (target: distance)


def summarize_rounds(history: pd.DataFrame) -> pd.DataFrame:
    """Per round: experiments so far, best safe value so far, unsafe experiments so far."""
    grouped = history.groupby("round")
    return pd.DataFrame(
        {
            "experiments": grouped.size().cumsum(),
            "best_safe": grouped["best_safe"].last(),
            "unsafe": (~history["safe"]).groupby(history["round"]).sum().cumsum(),
            "method": grouped["method"].first(),
        }
    )
