"""Plots and a report page a person would rather look at than read."""

from __future__ import annotations

import hashlib
import html
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure  # the OO API: no pyplot state, no backend switch
from scipy.stats import binom
from torch import Tensor

from campaigns.campaign_model import FAILED, campaign_tensors, fit_outcomes, outcome_warp
from campaigns.claims_report import claims_section
from campaigns.config import dump_config
from campaigns.diagnostics_report import plot_calibration, plot_parity, write_diagnostics_html
from campaigns.identifiability_report import identifiability_section
from campaigns.simulate import best_safe_so_far
from surrogates import cross_validate
from surrogates.diagnostics import calibration_verdict

DIAGNOSTICS_CACHE = ".diagnostics.json"  # in the campaign directory: the last cross-validation and its key
PIPELINE = "fit_outcomes-2"  # part of that key: a cached result of an older pipeline is not shown
STATUS_CV_MAX_ROWS = 500  # `valley status` cross-validates GPs itself up to this many rows; else uses the cache


def plot_progress(
    history: pd.DataFrame,
    objective: str,
    path: str | Path,
    best_known: float | None = None,
    limit: tuple[str, float] | None = None,
    prefix: str = "true_",
) -> Path:
    """Save a PNG of a campaign (`progress_figure`); its path."""
    path = Path(path)
    progress_figure(history, objective, best_known, limit, prefix).savefig(path, dpi=110)
    return path


def progress_figure(
    history: pd.DataFrame,
    objective: str,
    best_known: float | None = None,
    limit: tuple[str, float] | None = None,
    prefix: str = "true_",
) -> Figure:
    """A campaign's objective per experiment and the best safe value so far; failed runs marked below.

    Args:
        history: One row per experiment with `round`, `safe`, `best_safe` and the outcome columns
            (as returned by `run_simulated_campaign`, or `campaign_history`).
        objective: The objective outcome's name.
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
    flagged = history["failed"].to_numpy(dtype=bool) if "failed" in history else np.zeros(len(x), dtype=bool)
    failed = flagged | np.isnan(y)
    ax.scatter(x[safe], y[safe], s=18, color="tab:blue", label="safe experiment")
    unsafe = ~safe & ~failed
    ax.scatter(x[unsafe], y[unsafe], s=22, marker="x", color="tab:red", label="unsafe")
    if failed.any():  # no value to plot: a mark on the bottom edge, where each failed run happened
        ax.scatter(
            x[failed],
            np.zeros(int(failed.sum())),
            s=30,
            marker="v",
            color="tab:gray",
            label="failed (no result)",
            transform=ax.get_xaxis_transform(),
            clip_on=False,
        )
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
    return fig


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


def write_report(camp, out_dir: str | Path, diagnostics: bool = True) -> Path:
    """Write PNG plots and an `index.html` page that shows them with the key tables.

    With `diagnostics`, the surrogate is also cross-validated (`surrogate_diagnostics`):
    `parity.png`, `calibration.png` and `diagnostics.html` are written and the page shows the
    table and verdicts.
    """
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
    if best is not None:  # one row of many columns reads better as a column of values
        sections.append(("Best safe result", best.rename("value").rename_axis("field").reset_index()))
    open_df = camp.open_proposal_details()
    if len(open_df):
        sections.append(("Open proposals: what to run next, and what the model expects", open_df))
    body = [f"<h1>{html.escape(cfg.name)}</h1>", f"<p>{len(camp.measurements)} measurement(s).</p>"]
    body += [f'<img src="{p.name}" alt="{p.stem}">' for p in images]
    body += [f"<h2>{html.escape(title)}</h2>{_html_table(table)}" for title, table in sections]
    body += claims_section(camp, out_dir)
    body += identifiability_section(camp)
    if diagnostics:
        body += _diagnostics_section(camp, out_dir)
    page = out_dir / "index.html"
    page.write_text(
        "<!doctype html><meta charset='utf-8'><title>Valley report</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto;padding:0 1em}img{max-width:100%}"
        ".scroll{overflow-x:auto;max-width:100%}table{border-collapse:collapse;font-size:90%}"
        "h1,h2,p,li{overflow-wrap:anywhere}"  # a long name without spaces wraps instead of widening the page
        "td,th{padding:2px 8px;border-bottom:1px solid #ddd}</style>\n" + "\n".join(body)
    )
    return page


def _html_table(table: pd.DataFrame) -> str:
    """A table that scrolls sideways inside the page instead of running off it."""
    return f"<div class='scroll'>{table.to_html(index=False, float_format=lambda v: f'{v:.4g}')}</div>"


# -- surrogate diagnostics --------------------------------------------------------------------------


def cv_rows_needed(d: int) -> int:
    """Fewest successful rows for k-fold CV (k = min(5, n)) where every training fold has `d + 1` rows."""
    n = 2
    while n - math.ceil(n / min(5, n)) < d + 1:
        n += 1
    return n


def surrogate_diagnostics(camp, compute: bool = True) -> tuple[pd.DataFrame, pd.DataFrame, str] | None:
    """k-fold cross-validation of the campaign's configured surrogate on its continuous outcomes.

    `k = min(5, n)` over the `n` successful measurements (`KFold`, shuffled with the config's
    seed). Each fold refits the pipeline that `propose` uses (`campaigns.campaign_model.fit_outcomes`:
    the outcomes' scales, the GPs with the config's mean function, known noise, trust weights and
    the leave-one-out widening of the safety outcomes, or the neural ensemble with its physics
    terms and weights); the predictive mean and sd of a new measurement that `propose` would show,
    in the outcomes' units, are scored by `surrogates.cross_validate`. Binary outcomes are not
    included. The result is cached in the campaign directory (`.diagnostics.json`) under a key of
    the config and the measurement ids, so asking again without new data is instant.

    Args:
        camp: The `Campaign`.
        compute: False returns only a cached result (None when there is none for this data).

    Returns:
        `(cv_df, oof_df, kind)` as `cross_validate` returns them plus the surrogate kind used
        (`gp` or `ensemble`), or None with too few rows (`cv_rows_needed`) or no continuous outcome.
    """
    cfg = camp.config
    space = cfg.space()
    df = camp.measurements
    names = cfg.regression_outcomes
    ok = ~(df[cfg.outcomes].isna().any(axis=1) | df[FAILED].astype(bool)).to_numpy()
    if not names or int(ok.sum()) < cv_rows_needed(space.n_choices):
        return None
    kind = cfg.surrogate_kind(len(df))
    recipe = PIPELINE + dump_config(cfg) + json.dumps(df["id"].astype(int).tolist())
    key = hashlib.sha256(recipe.encode()).hexdigest()
    cache = Path(camp.path) / DIAGNOSTICS_CACHE
    try:
        stored = json.loads(cache.read_text())
        if stored["key"] == key:
            return pd.DataFrame(stored["cv"]), pd.DataFrame(stored["oof"]), stored["kind"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if not compute:
        return None
    data = campaign_tensors(cfg, df[ok].reset_index(drop=True))
    X, Y, w = data.X, data.Y[:, [cfg.outcomes.index(name) for name in names]], data.weights
    Xw = torch.cat([X, (torch.ones(len(X), dtype=X.dtype) if w is None else w).unsqueeze(-1)], dim=-1)
    fit_predict = _pipeline_fit_predict(cfg, space, cfg.seed)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small fits run faster on one thread
    try:
        with torch.random.fork_rng():
            torch.manual_seed(cfg.seed)
            cv_df, oof_df = cross_validate(fit_predict, Xw, Y, k=min(5, len(X)), seed=cfg.seed, outcome_names=names)
    except NoFoldModel:
        return None  # a fold without parameters + 1 distinct designs: too few to cross-validate
    finally:
        torch.set_num_threads(old_threads)
    warp = outcome_warp(cfg, Y)
    cv_df.insert(1, "modelled_as", [warp.scale_of(name) for name in names])
    limited = {limit.name for limit in cfg.safety}
    cv_df["verdict"] = [calibration_verdict(row, row["outcome"] in limited) for _, row in cv_df.iterrows()]
    try:
        payload = {"key": key, "kind": kind, "cv": cv_df.to_dict("list"), "oof": oof_df.to_dict("list")}
        cache.write_text(json.dumps(payload, default=float))
    except OSError:
        pass  # a read-only campaign still gets its diagnostics, just not cached
    return cv_df, oof_df, kind


def _split_weights(Xw: Tensor) -> tuple[Tensor, Tensor | None]:
    """The designs and their trust weights (None when all are 1) from `X` with the weights appended."""
    w = Xw[:, -1]
    return Xw[:, :-1], None if bool((w == 1).all()) else w


class NoFoldModel(Exception):
    """A cross-validation fold on which the pipeline fits no model (too few distinct designs)."""


def _pipeline_fit_predict(cfg, space, seed: int):
    """`fit_predict` for `cross_validate`: the proposing pipeline (`fit_outcomes`) refitted on each fold."""

    def fit_predict(Xw_train: Tensor, Y_train: Tensor, Xw_test: Tensor) -> tuple[Tensor, Tensor]:
        X_train, w = _split_weights(Xw_train)
        fitted = fit_outcomes(cfg, space, X_train, Y_train, w, seed)
        if fitted.model is None:
            raise NoFoldModel(fitted.notes[-1] if fitted.notes else "no model could be fitted on this fold")
        mean, sd = fitted.predict(Xw_test[:, :-1])
        return mean, sd**2

    return fit_predict


def poorly_calibrated(camp) -> list[str] | None:
    """`calibration_verdict` lines of the poorly calibrated outcomes, for `valley status`; fast.

    Only with at least `2 * (d + 1)` successful rows, and only verdicts that a binomial test
    confirms (`_clearly_poor`: a few dozen rows cannot show intervals too wide). Uses the cached
    cross-validation when it matches the data; otherwise cross-validates GPs up to `STATUS_CV_MAX_ROWS` rows and returns
    None for anything slower (an ensemble, or more rows): `valley report` computes and caches it.

    Returns:
        The verdict lines (empty when every outcome is well calibrated), or None when nothing was
        checked.
    """
    cfg = camp.config
    df = camp.measurements
    d = cfg.space().n_choices
    ok = ~(df[cfg.outcomes].isna().any(axis=1) | df[FAILED].astype(bool)).to_numpy()
    if int(ok.sum()) < 2 * (d + 1) or not cfg.regression_outcomes:
        return None
    cheap = cfg.surrogate_kind(len(df)) == "gp" and int(ok.sum()) <= STATUS_CV_MAX_ROWS
    result = surrogate_diagnostics(camp, compute=cheap)
    if result is None:
        return None
    cv_df = result[0]
    return [str(row["verdict"]) for _, row in cv_df.iterrows() if _clearly_poor(row)]


def _clearly_poor(row: pd.Series) -> bool:
    """A "poorly calibrated" verdict that a binomial test at the 5 % level confirms.

    With `n` held-out points a calibrated 95 % interval misses `Binomial(n, 0.05)` of them, so
    at small `n` a coverage of 100 % (or one or two misses) is common; `valley status` warns only
    when the observed misses are unlikely (p < 0.05) under calibration.
    """
    if not str(row["verdict"]).startswith("poorly"):
        return False
    n = int(row["n"])
    misses = round(n * (1.0 - float(row["coverage_95"])))
    if float(row["coverage_95"]) < 0.95:  # too narrow: this many misses or more
        return float(binom.sf(misses - 1, n, 0.05)) < 0.05
    return float(binom.cdf(misses, n, 0.05)) < 0.05  # too wide: this few misses or fewer


def _diagnostics_section(camp, out_dir: Path) -> list[str]:
    """Write the diagnostics plots and page; the HTML lines of the report's section on them."""
    cfg = camp.config
    result = surrogate_diagnostics(camp)
    title = "<h2>Surrogate diagnostics</h2>"
    if result is None:
        why = (
            "no continuous outcome to cross-validate"
            if not cfg.regression_outcomes
            else f"too few successful measurements for cross-validation (needs {cv_rows_needed(cfg.space().n_choices)})"
        )
        return [title, f"<p>Not computed: {html.escape(why)}.</p>"]
    cv_df, oof_df, kind = result
    pngs = [plot_parity(oof_df, out_dir / "parity.png"), plot_calibration(oof_df, out_dir / "calibration.png")]
    write_diagnostics_html(out_dir, cv_df, pngs)
    surrogate = "Gaussian processes" if kind == "gp" else f"a neural ensemble of {cfg.surrogate.members} networks"
    k = min(5, int(cv_df["n"].max()))
    lines = [
        title,
        f"<p>{k}-fold cross-validation of the surrogate ({html.escape(surrogate)}): each measurement predicted by "
        "a model that did not see it, fitted as <code>propose</code> fits it (the <code>modelled_as</code> column: "
        "the scale each outcome is modelled on; the figures are in its units). "
        "<a href='diagnostics.html'>Details</a>.</p>",
        _html_table(cv_df.drop(columns=["verdict"])),
        "<ul>" + "".join(f"<li>{html.escape(str(v))}</li>" for v in cv_df["verdict"]) + "</ul>",
    ]
    return lines + [f'<img src="{p.name}" alt="{p.stem}">' for p in pngs]
