"""`valley design`: inverse design through a GP fitted to a campaign's measurements."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

_out = Console(soft_wrap=True, width=200)  # wide tables stay readable when piped
_err = Console(stderr=True, soft_wrap=True)


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
) -> None:
    """Inverse design: designs that meet the goals according to a GP fitted to the measurements.

    Without --goal and --constraint, the campaign's objectives and safety limits are the goals.
    The designs are not recorded as proposals.

    Example: valley design runs/bearing -n 8 --goal "friction_coeff=min" --constraint "load_N>=0.8" -o designs.csv
    """
    from design import InputError

    try:
        designs_df = run_design(directory, n, [*(goal or []), *(constraint or [])], starts, seed)
    except InputError as e:
        _err.print(f"[bold red]error:[/] {e}", highlight=False)
        raise typer.Exit(1) from None
    table = Table(title=f"{len(designs_df)} design(s) by gradient descent through the GP")
    for column in designs_df.columns:
        table.add_column(str(column))
    for row in designs_df.itertuples(index=False):
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
    _out.print(table)
    if output is not None:
        designs_df.to_csv(output, index=False)
        _out.print(f"Wrote {output}.")


def run_design(directory: Path, n: int, goals: list[str], starts: int, seed: int):  # noqa: ANN201
    """Open the campaign, fit one GP per outcome on its successful measurements, run `inverse_design`.

    Raises:
        InputError: If the campaign cannot be opened, a goal is malformed or names no outcome of
            the campaign, or there are too few measurements to fit a model.
    """
    import torch

    from campaigns.campaign import Campaign
    from design import InputError
    from design.inverse import InverseOptions, inverse_design
    from design.inverse_goals import as_goals
    from surrogates import fit_outcome_models

    camp = Campaign.open(directory)
    cfg = camp.config
    goal_list = as_goals(goals) if goals else as_goals([*cfg.objectives, *cfg.safety])
    unknown = [g.name for g in goal_list if g.name not in cfg.outcomes]
    if unknown:
        raise InputError(
            f"goals must name outcomes of the campaign {cfg.outcomes}. Got {unknown[0]!r} instead. Fix the goal's name."
        )
    df = camp.measurements
    df = df[~df["failed"].astype(bool)]
    space = cfg.space()
    if len(df) < space.d + 1:
        raise InputError(
            f"inverse design needs at least {space.d + 1} successful measurements. Got {len(df)} instead. Add more."
        )
    X = space.encode(df[cfg.parameter_names])
    Y = torch.tensor(df[cfg.outcomes].to_numpy(dtype=float), dtype=torch.double)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = fit_outcome_models(X, Y, list(space.cat_dims), cfg.noise_sd)
    options = InverseOptions(train_X=X)
    return inverse_design(
        model, space, goal_list, n=n, starts=starts, seed=seed, outcomes=cfg.outcomes, options=options
    )
