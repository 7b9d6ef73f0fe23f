"""Were the campaign's claims honest? p_safe and the predicted intervals against what was measured.

Every proposal keeps what `propose` claimed for it (`p_safe`, `<outcome>_mean`, `<outcome>_sd`).
Once a proposed design is measured, the claim can be checked: among proposals that claimed a
p_safe near 0.9, about 90 % should have come back safe (a reliability diagram), and about 95 % of
measured outcomes should fall inside `mean +- 1.96 sd` (the coverage of the 95 % interval).
Failed runs are left out of both: they have no outcome to check.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import binomtest

BINS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99, 1.0)  # p_safe bins: finer where a lab acts on the claim
Z95 = 1.959963984540054


def reliability_table(measured_proposals: pd.DataFrame) -> pd.DataFrame:
    """Per p_safe bin: proposals, mean claimed p_safe, observed safe share and its exact 95 % interval."""
    df = measured_proposals[~measured_proposals["measured_failed"].astype(bool)]
    df = df[df["p_safe"].notna()] if "p_safe" in df else df.iloc[:0]
    rows = []
    for low, high in zip(BINS[:-1], BINS[1:], strict=True):
        inside = df[(df["p_safe"] >= low) & ((df["p_safe"] < high) | (high == 1.0))]
        if inside.empty:
            continue
        safe = int(inside["measured_safe"].astype(bool).sum())
        interval = binomtest(safe, len(inside)).proportion_ci(0.95)
        rows.append(
            {
                "p_safe_bin": f"[{low:g}, {high:g}{']' if high == 1.0 else ')'}",
                "n": len(inside),
                "claimed": float(inside["p_safe"].mean()),
                "observed_safe": safe / len(inside),
                "low_95": interval.low,
                "high_95": interval.high,
            }
        )
    return pd.DataFrame(rows, columns=["p_safe_bin", "n", "claimed", "observed_safe", "low_95", "high_95"])


def coverage_table(measured_proposals: pd.DataFrame, outcomes: list[str]) -> pd.DataFrame:
    """Per outcome: measured proposals and the share inside the predicted 95 % interval (`mean +- 1.96 sd`)."""
    df = measured_proposals[~measured_proposals["measured_failed"].astype(bool)]
    rows = []
    for name in outcomes:
        if f"{name}_mean" not in df or f"measured_{name}" not in df:
            continue
        mean, sd = df[f"{name}_mean"].astype(float), df[f"{name}_sd"].astype(float)
        y = df[f"measured_{name}"].astype(float)
        ok = mean.notna() & sd.notna() & y.notna()
        if ok.any():
            inside = (y[ok] - mean[ok]).abs() <= Z95 * sd[ok]
            rows.append({"outcome": name, "n": int(ok.sum()), "coverage_95": float(inside.mean())})
    return pd.DataFrame(rows, columns=["outcome", "n", "coverage_95"])


def plot_reliability(table: pd.DataFrame, path: str | Path) -> Path:
    """Claimed p_safe against the observed safe share per bin, with exact binomial intervals."""
    fig = Figure(figsize=(4.8, 4.2))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], ls="--", color="gray", label="claims = outcomes")
    errors = [table["observed_safe"] - table["low_95"], table["high_95"] - table["observed_safe"]]
    ax.errorbar(table["claimed"], table["observed_safe"], yerr=errors, fmt="o", color="tab:blue", capsize=3)
    for _, row in table.iterrows():
        ax.annotate(
            f"n={int(row['n'])}",
            (row["claimed"], row["observed_safe"]),
            fontsize=7,
            xytext=(4, -10),
            textcoords="offset points",
        )
    ax.set_xlabel("claimed p_safe (mean in bin)")
    ax.set_ylabel("share measured safe")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.05)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


def claims_section(camp, out_dir: Path) -> list[str]:  # noqa: ANN001 - a Campaign
    """The report's HTML lines on the honesty of p_safe and of the predicted intervals."""
    cfg = camp.config
    done = camp.measured_proposals()
    title = "<h2>Were the claims honest?</h2>"
    if done.empty:
        return [title, "<p>No proposal has been measured yet: nothing to check.</p>"]
    lines = [title]
    coverage = coverage_table(done, cfg.regression_outcomes)
    if len(coverage):
        lines += [
            "<p>Measured proposals inside the 95 % interval that <code>propose</code> predicted for them "
            "(about 95 % is honest; far less means the model was overconfident there).</p>",
            _table(coverage),
        ]
    if cfg.safety:
        table = reliability_table(done)
        if len(table):
            png = plot_reliability(table, out_dir / "reliability.png")
            lines += [
                "<p>p_safe as claimed at proposal time against the share that came back safe, per bin, with exact "
                "binomial 95 % intervals: points below the diagonal are claims that were too optimistic.</p>",
                _table(table),
                f'<img src="{png.name}" alt="reliability of p_safe">',
            ]
    return lines


def _table(df: pd.DataFrame) -> str:
    return f"<div class='scroll'>{df.to_html(index=False, float_format=lambda v: f'{v:.3g}')}</div>"
