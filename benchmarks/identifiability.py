"""Identifiability benchmark: which Emax-mean parameters the nanoparticle data pin down, by number of doses.

The nanoparticle simulator's T-cell activation is `E_max * H(D) * (formulation factors)`, with
`H` an Emax/Hill curve in dose (EC50 6 ug for antiCD3, Hill 1.5, no baseline). A GP with an
`EmaxMean` in `dose_ug` is fitted to noisy simulated measurements (5 % multiplicative noise) at
8, 20 and 60 doses and three seeds, and `surrogates.identifiability.mean_identifiability` says
which of E0, Emax, EC50 and Hill the data cannot pin down. Three scenarios:

- `fixed`: one formulation (antiCD3, 3 layers, 65 nm, +10 mV, 3 % PEG) and doses log-uniform over
  1-100 ug: the outcome is an exact Emax curve in dose (its true parameters are printed), a GP
  on the dose alone.
- `low`: the same formulation with doses only in 1-3 ug, below EC50: the curve's lower,
  nearly power-law part, where Emax and EC50 trade against each other.
- `random`: random feasible formulations (`data.sample_designs`, all six parameters) fitted
  through the campaign pipeline (`fit_campaign_model` with `surrogate.mean: {kind: emax, input:
  dose_ug}`), as `valley report` sees a campaign's random first batches: the Emax mean in dose
  is then the average shape and the GP carries the formulation's factors.

Every number is measured in the run that prints it.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from campaigns.campaign_model import fit_campaign_model
from campaigns.config import CampaignConfig
from data import nanoparticles, sample_designs
from surrogates import EmaxMean, fit_gp
from surrogates.identifiability import Identifiability, mean_identifiability
from surrogates.profile_likelihood import Profile, profile_likelihood

Progress = Callable[[str], None] | None

FORMULATION = {"diameter_nm": 65.0, "zeta_mV": 10.0, "peg_pct": 3.0, "ligand": "antiCD3", "n_layers": 3}
SCENARIOS = {"fixed": (1.0, 100.0), "low": (1.0, 3.0), "random": (1.0, 100.0)}
PARAMETERS = ("E0", "Emax", "EC50", "Hill")


def true_parameters() -> dict[str, float]:
    """E0, Emax, EC50 and Hill of the fixed formulation's noise-free dose response."""
    at_ec50 = pd.DataFrame([FORMULATION | {"dose_ug": nanoparticles.EC50_UG["antiCD3"]}])
    plateau = 2 * float(nanoparticles.simulate(at_ec50)["tcell_activation"].iloc[0])  # H(EC50) = 1/2
    return {"E0": 0.0, "Emax": plateau, "EC50": nanoparticles.EC50_UG["antiCD3"], "Hill": nanoparticles.HILL}


def measurements(scenario: str, n: int, seed: int) -> pd.DataFrame:
    """`n` noisy simulated measurements of the scenario (designs and both outcomes)."""
    rng = np.random.default_rng(seed)
    low, high = SCENARIOS[scenario]
    if scenario == "random":
        designs = sample_designs(nanoparticles.config(), n, rng)
        designs["dose_ug"] = np.exp(rng.uniform(np.log(low), np.log(high), n))
    else:
        designs = pd.DataFrame([FORMULATION] * n)
        designs["dose_ug"] = np.exp(rng.uniform(np.log(low), np.log(high), n))
    return pd.concat([designs, nanoparticles.simulate(designs, rng)], axis=1)


def analyse(scenario: str, n: int, seed: int) -> tuple[Identifiability, Profile]:
    """Fit the scenario's GP with an Emax mean on the T-cell outcome; its identifiability and EC50's profile."""
    df = measurements(scenario, n, seed)
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if scenario == "random":
            raw = nanoparticles.config()
            raw["surrogate"] = {
                "kind": "gp",
                "mean": {"kind": "emax", "input": "dose_ug", "outcome": "tcell_activation"},
            }
            config = CampaignConfig.model_validate(raw)
            fitted = fit_campaign_model(config, df, seed)
            gp = fitted.model.models[config.regression_outcomes.index("tcell_activation")]  # type: ignore[union-attr]
        else:
            u = torch.tensor(np.log(df["dose_ug"].to_numpy()) / np.log(100.0), dtype=torch.double).unsqueeze(-1)
            y = torch.tensor(df["tcell_activation"].to_numpy(), dtype=torch.double)
            gp = fit_gp(u, y, mean_module=EmaxMean(0, lower=1.0, upper=100.0, log=True))
    return mean_identifiability(gp), profile_likelihood(gp, "EC50", points=9, steps=20)


def run_identifiability_benchmark(
    doses: Sequence[int] = (8, 20, 60),
    seeds: Sequence[int] = (0, 1, 2),
    scenarios: Sequence[str] = ("fixed", "low", "random"),
    progress: Progress = None,
) -> pd.DataFrame:
    """One row per (scenario, doses, seed): flagged parameters, condition number, values and standard errors."""
    say = progress or (lambda line: None)
    rows = []
    for scenario in scenarios:
        if scenario not in SCENARIOS:
            raise ValueError(f"scenario must be one of {list(SCENARIOS)}. Got {scenario!r} instead.")
        for n in doses:
            for seed in seeds:
                start = time.perf_counter()
                result, profile = analyse(scenario, n, seed)
                seconds = time.perf_counter() - start
                row: dict = {
                    "scenario": scenario,
                    "doses": n,
                    "seed": seed,
                    "flagged": ", ".join(result.flagged) or "-",
                }
                row["condition"] = result.condition_number
                row["min_eigenvalue"] = min(d.eigenvalue for d in result.directions)
                for name, value, se in zip(result.names, result.values, result.standard_errors, strict=True):
                    row[name] = value
                    row[f"{name}_se"] = se
                row["ec50_low"], row["ec50_high"] = profile.low, profile.high
                row["ec50_interval"] = (
                    f"{'' if profile.bounded_low else '<'}{profile.low:.3g} to "
                    f"{'' if profile.bounded_high else '>'}{profile.high:.3g}"
                )
                row["flat_direction"] = result.directions[0].description.split(":")[0] if result.flagged else "-"
                row["seconds"] = seconds
                rows.append(row)
                say(f"{scenario} doses={n} seed={seed}: flagged {row['flagged']} ({seconds:.1f} s)")
    return pd.DataFrame(rows)


def format_table(results: pd.DataFrame) -> str:
    """The results side by side: one line per run, `value +- se` per parameter.

    The EC50 profile interval reads `<a` or `>b` where the profile is still within 1.92 of its
    optimum at the grid's end (a factor 10 from the fit at most): no bound there.
    """
    shown = results[["scenario", "doses", "seed", "flagged"]].copy()
    shown["condition"] = results["condition"].map(lambda v: f"{v:.3g}")
    for name in PARAMETERS:
        shown[name] = [f"{v:.3g} +- {s:.2g}" for v, s in zip(results[name], results[f"{name}_se"], strict=True)]
    shown["EC50 profile 95 %"] = results["ec50_interval"]
    shown["seconds"] = results["seconds"].map(lambda v: f"{v:.1f}")
    return shown.to_string(index=False)


def flag_counts(results: pd.DataFrame) -> pd.DataFrame:
    """How many seeds flagged each parameter, per scenario and number of doses."""

    def count(group: pd.DataFrame) -> pd.Series:
        flagged = group["flagged"].str.split(", ")
        return pd.Series({name: f"{sum(name in f for f in flagged)}/{len(group)}" for name in PARAMETERS})

    return results.groupby(["scenario", "doses"], sort=False)[["flagged"]].apply(count).reset_index()
