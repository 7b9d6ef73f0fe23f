"""The report's "Identifiability of the mean function" section (campaigns with `surrogate.mean`).

The campaign model (`fit_campaign_model`, the one `propose` uses, from the model cache when the
data have not changed) carries the fitted mechanistic mean of one outcome. This section says
which of its parameters the measurements pin down: standard errors from the Hessian of the
marginal likelihood, the flat directions in words, and 95 % profile-likelihood intervals for the
least certain parameters (`surrogates.identifiability`).
"""

from __future__ import annotations

import html
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from botorch.models import ModelListGP

from campaigns.campaign_model import fit_campaign_model
from campaigns.model_cache import ModelCache
from surrogates.identifiability import Identifiability, mean_identifiability
from surrogates.profile_likelihood import Profile, profile_likelihood

TITLE = "<h2>Identifiability of the mean function</h2>"
PROFILED = 2  # profile this many of the least certain parameters (each a few L-BFGS fits per grid point)


def identifiability_section(camp: Any) -> list[str]:
    """HTML lines of the section; none when the config has no `surrogate.mean`."""
    cfg = camp.config
    entry = cfg.surrogate.mean
    if entry is None:
        return []
    outcome = entry.outcome or (cfg.regression_outcomes[0] if cfg.regression_outcomes else None)
    if not isinstance(outcome, str) or outcome not in cfg.regression_outcomes:
        return [TITLE, "<p>Not computed: no continuous outcome for the mean.</p>"]
    path = getattr(camp, "path", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = fit_campaign_model(cfg, camp.measurements, cache=ModelCache(Path(path)) if path else None)
    if not isinstance(fitted.model, ModelListGP):
        why = "no model yet (too few measurements)" if fitted.model is None else "the surrogate is a neural ensemble"
        return [TITLE, f"<p>Not computed: {html.escape(why)}; the mean function belongs to the GPs.</p>"]
    gp = fitted.model.models[cfg.regression_outcomes.index(outcome)]
    try:
        result = mean_identifiability(gp)
        order = np.argsort(-np.nan_to_num(result.relative_se, posinf=np.finfo(float).max))
        profiles = [profile_likelihood(gp, result.names[i], points=9, steps=20) for i in order[:PROFILED]]
    except (ValueError, RuntimeError, np.linalg.LinAlgError) as err:
        return [TITLE, f"<p>Not computed: {html.escape(str(err))}</p>"]
    return section_html(result, profiles, outcome, entry.kind)


def section_html(result: Identifiability, profiles: list[Profile], outcome: str, kind: str) -> list[str]:
    """The section's HTML lines for an `Identifiability` and its profiles."""
    open_ended = [p for p in profiles if not (p.bounded_low and p.bounded_high)]
    not_pinned = result.flagged + [p.name for p in open_ended if p.name not in result.flagged]
    verdict = (
        "The measurements pin down every parameter."
        if not not_pinned
        else f"The measurements do not pin down: {', '.join(not_pinned)}."
    )
    sentences = [line for line in result.summary() if not (not_pinned and line.startswith("Every parameter"))]
    sentences += [
        f"{p.text()}: the likelihood stays within 1.92 of its best that far, so {p.name} is not pinned down."
        for p in open_ended
    ]
    table = result.table()
    intervals = {p.name: _interval(p) for p in profiles}
    table["profile_95"] = [intervals.get(name, "") for name in table["parameter"]]
    table["flagged"] = table["parameter"].isin(not_pinned)
    directions = result.directions_table()
    lines = [
        TITLE,
        f"<p>The <code>{html.escape(kind)}</code> mean of <code>{html.escape(outcome)}</code>, fitted with the GP "
        f"on {result.n} measurements. <strong>{html.escape(verdict)}</strong> Standard errors come from the "
        "curvature (Hessian) of the marginal likelihood at the fit, with the GP's other hyperparameters held there; "
        "a direction is flagged when one standard error along it is larger than the parameters themselves or when "
        f"its curvature is {result.condition_limit:.0e} times smaller than the largest (directions in relative "
        "changes, flattest first). Flagged parameters fit the data equally well over a wide range: do not read "
        "them as measured; more measurements where they act (for an Emax curve, doses around and above EC50) "
        "separate them.</p>",
        "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in sentences) + "</ul>",
        _table(table),
        _table(directions),
    ]
    if profiles:
        lines.append(
            "<p>profile_95: the 95 % profile-likelihood interval (the mean's other parameters refitted at each value; "
            "<code>&lt;</code> or <code>&gt;</code>: no bound found on that side, as far as the search went: a factor "
            "10 from the fit, or the parameter's own bound).</p>"
        )
    return lines


def _interval(profile: Profile) -> str:
    low = f"{'' if profile.bounded_low else '<'}{profile.low:.3g}"
    high = f"{'' if profile.bounded_high else '>'}{profile.high:.3g}"
    return f"{low} to {high}"


def _table(table: pd.DataFrame) -> str:
    return f"<div class='scroll'>{table.to_html(index=False, float_format=lambda v: f'{v:.4g}')}</div>"
