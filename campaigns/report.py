"""Plots and a report page a person would rather look at than read."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # the OO API: no pyplot state, no backend switch

from campaigns.simulate import best_safe_so_far


def plot_progress(
    history: pd.DataFrame,
    objective: str,
    path: str | Path,
    best_known: float | None = None,
    limit: tuple[str, float] | None = None,
    prefix: str = "true_",
) -> Path:
    """Save a PNG of a campaign: the objective per experiment and the best safe value so far.

    Args:
        history: One row per experiment with `round`, `safe`, `best_safe` and the outcome columns
            (as returned by `run_simulated_campaign`, or `campaign_history`).
        objective: The objective outcome's name.
        path: Where to write the PNG.
        best_known: The known optimum under the safety limits, drawn as a dashed line.
        limit: `(outcome, upper)` of a safety limit to plot in a second panel.
        prefix: Prefix of the plotted outcome columns (`"true_"` for simulated truth, `""` for
            measured values).
    """
    panels = 2 if limit else 1
    fig = Figure(figsize=(7, 3.2 * panels))
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    ax = axes[0]
    x = np.arange(1, len(history) + 1)
    safe = history["safe"].to_numpy(dtype=bool)
    y = history[f"{prefix}{objective}"].to_numpy(dtype=float)
    ax.scatter(x[safe], y[safe], s=18, color="tab:blue", label="safe experiment")
    ax.scatter(x[~safe], y[~safe], s=22, marker="x", color="tab:red", label="unsafe or failed")
    ax.step(x, history["best_safe"], where="post", color="black", label="best safe so far")
    if best_known is not None:
        ax.axhline(best_known, ls="--", color="gray", label="best possible (safe)")
    ax.set_ylabel(f"{objective}" + (" (true)" if prefix == "true_" else ""))
    ax.legend(fontsize=8, loc="upper left", framealpha=0.9)
    for first in history.groupby("round").head(1).index[1:]:  # round boundaries
        ax.axvline(first + 0.5, color="0.9", zorder=0)
    if limit:
        name, upper = limit
        axes[1].scatter(x, history[f"{prefix}{name}"], s=18, c=np.where(safe, "tab:blue", "tab:red"))
        axes[1].axhline(upper, color="tab:red", ls="--", label=f"limit {upper:g}")
        axes[1].set_ylabel(name)
        axes[1].legend(fontsize=8)
    axes[-1].set_xlabel("experiment")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


def campaign_history(camp) -> pd.DataFrame:
    """A campaign's measurements in `plot_progress` form; each import is one round."""
    df = camp.measurements.copy()
    df["round"] = pd.factorize(df["source"])[0]
    df["safe"] = camp.safe_successes(df)
    objective = camp.config.objectives[0]
    df["best_safe"] = best_safe_so_far(df[objective.name], df["safe"], objective)
    return df


def plot_pareto(camp, path: str | Path) -> Path:
    """Scatter of the first two objectives, with the measured Pareto front of safe results."""
    first, second = camp.config.objectives[:2]
    df = camp.measurements
    safe = camp.safe_successes(df)
    front = camp.pareto_front().sort_values(first.name)
    fig = Figure(figsize=(5.5, 4.5))
    ax = fig.subplots()
    ax.scatter(df[first.name][safe], df[second.name][safe], s=18, color="tab:blue", label="safe")
    ax.scatter(df[first.name][~safe], df[second.name][~safe], s=22, marker="x", color="tab:red", label="unsafe")
    ax.plot(front[first.name], front[second.name], "o-", color="black", mfc="none", label="Pareto front")
    ax.set_xlabel(f"{first.name} ({first.goal})")
    ax.set_ylabel(f"{second.name} ({second.goal})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


def write_report(camp, out_dir: str | Path) -> Path:
    """Write PNG plots and an `index.html` page that shows them with the key tables."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = camp.config
    limit = next(((s.name, s.upper) for s in cfg.safety if s.upper is not None), None)
    images = [plot_progress(campaign_history(camp), cfg.objectives[0].name, out_dir / "progress.png", None, limit, "")]
    sections = []
    if len(cfg.objectives) > 1:
        images.append(plot_pareto(camp, out_dir / "pareto.png"))
        sections.append(("Pareto front (safe, successful measurements)", camp.pareto_front()))
    best = camp.best()
    if best is not None:
        sections.append(("Best safe result", best.to_frame().T))
    open_df = camp.open_proposals
    if len(open_df):
        sections.append(("Open proposals", open_df))
    body = [f"<h1>{html.escape(cfg.name)}</h1>", f"<p>{len(camp.measurements)} measurement(s).</p>"]
    body += [f'<img src="{p.name}" alt="{p.stem}">' for p in images]
    body += [
        f"<h2>{html.escape(title)}</h2>{table.to_html(index=False, float_format=lambda v: f'{v:.4g}')}"
        for title, table in sections
    ]
    page = out_dir / "index.html"
    page.write_text(
        "<!doctype html><meta charset='utf-8'><title>Valley report</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto}img{max-width:100%}"
        "table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd}</style>\n" + "\n".join(body)
    )
    return page
