"""Surrogate diagnostics for people: parity and calibration plots, and an HTML page with the CV table."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # the OO API: no pyplot state, no backend switch
from scipy.stats import norm


def _panels(oof_df: pd.DataFrame, width: float = 4.0) -> tuple[Figure, list, list[str]]:
    outcomes = list(dict.fromkeys(oof_df["outcome"]))
    fig = Figure(figsize=(width * len(outcomes), width))
    axes = fig.subplots(1, len(outcomes), squeeze=False)[0]
    return fig, list(axes), outcomes


def plot_parity(oof_df: pd.DataFrame, path: str | Path) -> Path:
    """Save a PNG of held-out measured vs predicted values, with 95 % error bars, one panel per outcome.

    Args:
        oof_df: Out-of-fold predictions, the second table `cross_validate` returns (columns `outcome`,
            `y`, `mean`, `sd`).
        path: Where to write the PNG.
    """
    fig, axes, outcomes = _panels(oof_df)
    for ax, name in zip(axes, outcomes, strict=True):
        group = oof_df[oof_df["outcome"] == name]
        ax.errorbar(
            group["mean"],
            group["y"],
            xerr=1.96 * group["sd"],
            fmt="o",
            ms=3,
            alpha=0.7,
            color="tab:blue",
            ecolor="0.75",
            label="held-out (95% interval)",
        )
        low, high = np.nanmin(group[["y", "mean"]].to_numpy()), np.nanmax(group[["y", "mean"]].to_numpy())
        ax.plot([low, high], [low, high], "--", color="gray", label="y = prediction")
        ax.set_xlabel(f"predicted {name}")
        ax.set_ylabel(f"measured {name}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


def plot_calibration(oof_df: pd.DataFrame, path: str | Path) -> Path:
    """Save a PNG of observed vs nominal coverage of central predictive intervals, per outcome.

    A calibrated model sits on the diagonal; below it, intervals are too narrow (overconfident).

    Args:
        oof_df: Out-of-fold predictions, as for `plot_parity`.
        path: Where to write the PNG.
    """
    levels = np.linspace(0.05, 0.99, 30)
    fig = Figure(figsize=(4.5, 4.2))
    ax = fig.subplots()
    for name, group in oof_df.groupby("outcome", sort=False):
        z = np.abs(group["y"] - group["mean"]).to_numpy() / group["sd"].to_numpy()
        observed = [(z <= norm.ppf(0.5 + level / 2)).mean() for level in levels]
        ax.plot(levels, observed, "o-", ms=3, label=str(name))
    ax.plot([0, 1], [0, 1], "--", color="gray", label="calibrated")
    ax.set_xlabel("nominal coverage of the central interval")
    ax.set_ylabel("observed coverage (held-out)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


def write_diagnostics_html(out_dir: str | Path, cv_df: pd.DataFrame, pngs: Sequence[str | Path]) -> Path:
    """Write `diagnostics.html` in `out_dir`: the cross-validation table, verdicts and the images.

    The page is self-contained apart from the PNGs, which it links by file name (put them in
    `out_dir`, as `plot_parity(..., out_dir / "parity.png")` does).

    Args:
        out_dir: Directory of the page (created if missing).
        cv_df: The table from `surrogates.diagnostics.cross_validate`.
        pngs: Paths of the images to show.

    Returns:
        The path of the page.

    Example:
        >>> cv_df, oof_df = cross_validate(fit_predict_gp, X, Y)
        >>> pngs = [plot_parity(oof_df, "out/parity.png"), plot_calibration(oof_df, "out/calibration.png")]
        >>> write_diagnostics_html("out", cv_df, pngs)
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = cv_df.drop(columns=["verdict"], errors="ignore")
    verdicts = [f"<li>{html.escape(str(v))}</li>" for v in cv_df.get("verdict", [])]
    body = [
        "<h1>Surrogate diagnostics</h1>",
        "<p>k-fold cross-validation: each measurement is predicted by a model that did not see it. "
        "A calibrated model's 68% and 95% intervals hold about 68% and 95% of held-out measurements.</p>",
        table.to_html(index=False, float_format=lambda v: f"{v:.4g}"),
    ]
    if verdicts:
        body.append("<ul>" + "".join(verdicts) + "</ul>")
    body += [f'<img src="{html.escape(Path(p).name)}" alt="{html.escape(Path(p).stem)}">' for p in pngs]
    page = out_dir / "diagnostics.html"
    page.write_text(
        "<!doctype html><meta charset='utf-8'><title>Valley surrogate diagnostics</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto}img{max-width:100%}"
        "table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd}</style>\n" + "\n".join(body)
    )
    return page
