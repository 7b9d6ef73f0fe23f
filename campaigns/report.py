"""Plots a person would rather look at than read: campaign progress."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or assumed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def plot_progress(
    history: pd.DataFrame,
    objective: str,
    path: str | Path,
    best_known: float | None = None,
    limit: tuple[str, float] | None = None,
) -> Path:
    """Save a PNG of a simulated campaign: the objective per experiment and the best safe so far.

    Args:
        history: Output of `run_simulated_campaign`.
        objective: The objective outcome's name.
        path: Where to write the PNG.
        best_known: The known optimum under the safety limits, drawn as a dashed line.
        limit: `(outcome, upper)` of a safety limit to plot in a second panel.
    """
    panels = 2 if limit else 1
    fig, axes = plt.subplots(panels, 1, figsize=(7, 3.2 * panels), sharex=True, squeeze=False)
    ax = axes[0, 0]
    x = np.arange(1, len(history) + 1)
    safe = history["safe"].to_numpy(dtype=bool)
    y = history[f"true_{objective}"].to_numpy()
    ax.scatter(x[safe], y[safe], s=18, color="tab:blue", label="safe experiment")
    ax.scatter(x[~safe], y[~safe], s=22, marker="x", color="tab:red", label="unsafe experiment")
    ax.step(x, history["best_safe"], where="post", color="black", label="best safe so far")
    if best_known is not None:
        ax.axhline(best_known, ls="--", color="gray", label="best possible (safe)")
    ax.set_ylabel(f"{objective} (true)")
    ax.legend(fontsize=8, loc="upper left", framealpha=0.9)
    for first in history.groupby("round").head(1).index[1:]:  # round boundaries
        ax.axvline(first + 0.5, color="0.9", zorder=0)
    if limit:
        name, upper = limit
        ax2 = axes[1, 0]
        ax2.scatter(x, history[f"true_{name}"], s=18, c=["tab:blue" if s else "tab:red" for s in safe])
        ax2.axhline(upper, color="tab:red", ls="--", label=f"limit {upper:g}")
        ax2.set_ylabel(f"{name} (true)")
        ax2.legend(fontsize=8)
    axes[-1, 0].set_xlabel("experiment")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
