"""`valley design`: inverse design through the campaign's surrogate, fitted to its measurements."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from campaigns.console import fail, print_table, say

_out = Console(soft_wrap=True)
LEARNED_FILE = "learned_optimizer.pt"  # beside the model cache (not inside: it would read it as a fit)


def design(
    directory: Path = typer.Argument(..., help="Campaign directory."),
    n: int = typer.Option(8, "-n", help="Number of designs to return."),
    goal: list[str] | None = typer.Option(
        None, "--goal", help="Objective, e.g. 'friction_coeff=min', 'y=max', 'x=target:3.0±0.1' (repeatable)."
    ),
    constraint: list[str] | None = typer.Option(
        None, "--constraint", help="Outcome constraint, e.g. 'load>=50' (repeatable)."
    ),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write the designs to this CSV."),
    starts: int = typer.Option(1024, "--starts", help="Simultaneous gradient-descent starts."),
    seed: int = typer.Option(0, "--seed", help="Seed; the same seed and data give the same designs."),
    simulator: str | None = typer.Option(
        None, "--simulator", help="A bundled system (e.g. nanoparticles) to re-simulate the designs with."
    ),
    confidence: float | None = typer.Option(
        None,
        "--confidence",
        help="Constraints hold at the pessimistic bound of this one-sided confidence (default: the campaign's).",
    ),
    kappa: float = typer.Option(1.0, "--kappa", help="Objectives count at the mean -/+ kappa sd.", min=0),
    robust: bool = typer.Option(False, "--robust", help="Optimize the expected objective under --tolerance."),
    tolerance: float = typer.Option(0.02, "--tolerance", help="Manufacturing tolerance (sd, unit-cube units).", min=0),
    rank_by: str = typer.Option(
        "objective",
        "--rank-by",
        help="'objective' (default) or 'flatness': by the expected merit under --tolerance, near-ties to the "
        "smaller Hessian eigenvalue (flat minima first).",
    ),
    nudge_from: int | None = typer.Option(
        None, "--nudge-from", help="Stay within --radius of the measured design with this id (see `valley export`)."
    ),
    radius: float = typer.Option(0.1, "--radius", help="Largest move from --nudge-from (unit-cube units).", min=0),
    anchor: str = typer.Option(
        "auto",
        "--anchor",
        help="'auto' (default): when every goal is a target, start from the measured designs nearest each "
        "target and correct them through the surrogate's slope, descending only the targets none of them meets "
        "(see README); 'data': anchored designs only (target goals only); 'none': descend from random starts.",
    ),
    optimizer: str = typer.Option(
        "adam",
        "--optimizer",
        help="'adam' (default), 'amsgrad', or 'learned': a small network meta-trained on sampled targets of the "
        "campaign's model on first use (under a minute, kept in the campaign directory until the data change).",
    ),
) -> None:
    """Inverse design: designs that meet the goals according to the campaign's surrogate.

    The surrogate is the one the campaign's config asks for (`surrogate: gp | ensemble | auto`),
    fitted to the successful measurements. Without --goal and --constraint, the campaign's
    objectives and safety limits are the goals. The designs are not recorded as proposals. With
    --simulator, a bundled system re-simulates them (noise-free): true outcomes, their errors and
    the goals truly met appear beside the predictions. Constraints hold at the pessimistic bound
    of the campaign's safety confidence (--confidence to change it). When every goal is a target
    (--anchor auto, the default, or data), the designs are the measured ones nearest each target,
    corrected by the surrogate's slope; otherwise, or with --anchor none, they descend from random
    starts. With --optimizer learned, a learned optimizer takes the descent's steps (see README,
    Inverse design).

    Example: valley design runs/bearing -n 8 --goal "friction_coeff=min" --constraint "load_N>=0.8" -o designs.csv
    """
    from campaigns.export import check_output, write_table
    from design import InputError

    try:
        check_output(output)
        goals = [*(goal or []), *(constraint or [])]
        settings = dict(
            kappa=kappa, robust=robust, tolerance=tolerance, radius=radius, optimizer=optimizer, rank_by=rank_by
        )
        spinner = Console(stderr=True).status("Fitting the campaign model and descending from every start...")
        with nullcontext() if optimizer == "learned" else spinner:  # meta-training draws its own progress bar
            designs_df = run_design(
                directory, n, goals, starts, seed, simulator, anchor, confidence, nudge_from, settings
            )
    except InputError as e:
        fail(e)
    for note in designs_df.attrs["notes"]:
        say("note", "yellow", note)
    title = f"{len(designs_df)} design(s) through the {designs_df.attrs['surrogate']}"
    print_table(_out, designs_df, title, str(output) if output is not None else "the CSV (-o FILE)")
    if output is not None:
        write_table(designs_df, output)
        _out.print(f"Wrote {escape(str(output))}.")


def run_design(  # noqa: ANN201
    directory: Path,
    n: int,
    goals: list[str],
    starts: int,
    seed: int,
    simulator: str | None = None,
    anchor: str | None = "auto",
    confidence: float | None = None,
    nudge_from: int | None = None,
    settings: dict | None = None,
):
    """Open the campaign, fit its model as `propose` does (`campaigns.campaign_model`), run `inverse_design`.

    The model predicts in the outcomes' units (`CampaignModel.user_units`), so goals are stated in
    them whatever scale an outcome is modelled on.

    Returns the designs; `attrs["surrogate"]` names the model and `attrs["notes"]` says what the
    fit noticed (e.g. uncertainty widened after leave-one-out checks).

    With `simulator` (a bundled system's name), the designs are re-simulated: see
    `design.verify_designs`. `anchor` is `InverseOptions.anchor` (`"auto"`, `"data"`, or `"none"`
    for None): anchored on data, the measured designs nearest each target are refined.
    Constraints (the safety limits, or the given ones) hold at the pessimistic bound of
    `confidence`, by default the campaign's (`InverseOptions.confidence`).
    `nudge_from` is the `id` of a measurement to stay near; `settings` are further
    `InverseOptions` fields (`kappa`, `robust`, `tolerance`, `radius`, `optimizer`). With
    `optimizer="learned"`, the learned optimizer of this campaign's data is read from the campaign
    directory, or meta-trained on the fitted model and saved there (`campaign_learned_optimizer`).

    Raises:
        InputError: If the campaign cannot be opened, a goal is malformed or names no continuous
            outcome of the campaign, there are too few measurements to fit a model, or the
            simulator is unknown or does not compute the goals' outcomes.
    """
    import torch

    from campaigns.campaign import Campaign
    from campaigns.campaign_model import campaign_tensors, fit_campaign_model
    from campaigns.model_cache import ModelCache
    from design import InputError
    from design.inverse import InverseOptions, inverse_design
    from design.inverse.goals import as_goals
    from design.inverse.learned import OPTIMIZERS
    from design.inverse.select import verify_designs

    chosen = (settings or {}).get("optimizer", "adam")
    if chosen not in OPTIMIZERS:
        raise InputError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}. Got {chosen!r} instead.")
    camp = Campaign.open(directory)
    cfg = camp.config
    simulate = _simulator(simulator, cfg) if simulator else None
    outcomes = cfg.regression_outcomes
    goal_list = as_goals(goals) if goals else as_goals([*cfg.objectives, *cfg.safety])
    unknown = [g.name for g in goal_list if g.name not in outcomes]
    if unknown:
        kind = "binary outcome" if unknown[0] in cfg.binary_outcomes else "name"
        raise InputError(
            f"goals must name continuous outcomes of the campaign {outcomes}. Got the {kind} {unknown[0]!r} instead. "
            "Give --goal and --constraint on those outcomes."
        )
    measured = camp.measurements
    data = campaign_tensors(cfg, measured)
    space, ok = data.space, torch.as_tensor(~data.failed)
    if int(ok.sum()) < space.n_choices + 1:
        raise InputError(
            f"inverse design needs at least {space.n_choices + 1} successful measurements. "
            f"Got {int(ok.sum())} instead. Add more."
        )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        claims = camp.measured_proposals() if cfg.safety else None
        fitted = fit_campaign_model(cfg, measured, seed, ModelCache(camp.path), claims)  # the model `propose` uses
    notes = fitted.notes
    if fitted.model is None:
        raise InputError(f"no surrogate could be fitted: {notes[-1]}")
    regression = [cfg.outcomes.index(name) for name in outcomes]
    X, Y = data.X[ok], data.Y[ok][:, regression]
    confidence = confidence if confidence is not None else (cfg.confidence or None)  # 0: no safety limits
    nudge = None if nudge_from is None else _measured_design(camp, nudge_from)
    settings = dict(settings or {})
    if settings.get("optimizer") == "learned":
        settings["optimizer"] = campaign_learned_optimizer(camp.path, fitted, data, notes)
    options = InverseOptions(
        train_X=X,
        train_Y=Y,
        anchor=None if anchor == "none" else anchor,
        confidence=confidence,
        nudge_from=nudge,
        **settings,
    )
    designs_df = inverse_design(
        fitted.user_units(), space, goal_list, n=n, starts=starts, seed=seed, outcomes=outcomes, options=options
    )
    surrogate = "neural ensemble" if cfg.surrogate_kind(len(measured)) == "ensemble" else "GP"
    if simulate is not None:
        designs_df = verify_designs(designs_df, simulate, goal_list)
    designs_df.attrs |= {"surrogate": surrogate, "notes": notes}
    return designs_df


def campaign_learned_optimizer(directory: Path, fitted, data, notes: list[str]):  # noqa: ANN001, ANN201
    """The learned optimizer for this campaign's model: from `<campaign>/learned_optimizer.pt`, or meta-trained.

    The file is keyed, as the model cache is (`campaigns.model_cache.fingerprint`), by the config
    and the exact measurements (`data`, the `CampaignTensors`): the same key means the same fitted
    model, so the saved weights are reused; new data mean a new model, and the optimizer is
    meta-trained again on sampled targets of it (`design.inverse.learned.meta_train`, with a
    progress bar) and saved. It is trained on target goals; other goals use it as it is.
    A read-only campaign directory only means it is trained again next time.
    """
    from campaigns.config import dump_config
    from campaigns.model_cache import fingerprint
    from design.inverse.learned import load_learned, meta_train, save_learned

    path = Path(directory) / LEARNED_FILE
    key = fingerprint(f"learned-optimizer/1\n{dump_config(fitted.config)}", data.X, data.Y, data.weights)
    learned = load_learned(path, key)
    if learned is not None:
        return learned
    learned = meta_train(fitted.user_units(), fitted.space, progress=True)
    try:
        save_learned(learned, path, key)
        notes.append(f"the learned optimizer was meta-trained on this campaign's model and saved to {path}.")
    except OSError:
        notes.append("the learned optimizer could not be saved (read-only campaign?); it is trained again next time.")
    return learned


def _measured_design(camp, measurement_id: int):  # noqa: ANN001, ANN202 - a Campaign; a one-row DataFrame
    from design import InputError

    df = camp.measurements
    row = df[df["id"] == measurement_id]
    if row.empty:
        ids = f"{int(df['id'].min())} to {int(df['id'].max())}" if len(df) else "none yet"
        raise InputError(
            f"--nudge-from: no measurement has id {measurement_id} (ids: {ids}). See the id column of `valley export`."
        )
    return row[camp.config.parameter_names].reset_index(drop=True)


def _simulator(name: str, cfg):  # noqa: ANN001, ANN202 - a CampaignConfig; returns `simulate(designs_df, rng)`
    from data import get_system, list_systems
    from design import InputError

    if name not in list_systems():
        raise InputError(f"--simulator must be a bundled system, one of {list_systems()}. Got {name!r} instead.")
    system = get_system(name)
    names = {p["name"] for p in system.config["parameters"]}
    outcomes = {o["name"] for o in [*system.config["objectives"], *system.config["safety"]]}
    if set(cfg.parameter_names) != names or not set(cfg.outcomes) <= outcomes:
        raise InputError(
            f"the {name} simulator takes the parameters {sorted(names)} and computes {sorted(outcomes)}; this "
            f"campaign has {sorted(cfg.parameter_names)} and {sorted(cfg.outcomes)}. Pick the simulator the "
            "campaign was made for."
        )
    return system.simulate
