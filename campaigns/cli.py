"""The `valley` command line: a thin layer over the public API; one error, one line, exit 1."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from campaigns.console import OneLineErrors, err, out, print_table, progress_line, say, set_debug, table_of
from campaigns.console import fail as _fail
from campaigns.design_cli import design

EXPORT = "`valley export DIR`"  # where a table's hidden columns are

app = typer.Typer(
    cls=OneLineErrors,
    help="Valley: propose the next experiments of a design campaign, safely.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors.")) -> None:
    set_debug(debug)


def _user_errors() -> tuple[type[Exception], ...]:
    from data import DataFileError
    from design import InputError

    return (InputError, DataFileError)


@app.command()
def init(
    directory: Path = typer.Argument(..., help="New campaign directory."),
    config: Path = typer.Option(..., "--config", "-c", help="Campaign YAML file."),
) -> None:
    """Create a campaign from a YAML config.

    Example: valley init runs/np --config np.yaml
    """
    from campaigns import Campaign

    try:
        camp = Campaign.create(directory, config)
    except _user_errors() as e:
        _fail(e)
    out.print(f"Created campaign [bold]{escape(camp.config.name)}[/] in {escape(str(directory))}.")
    for hint in camp.config.scale_hints():
        say("hint", "cyan", hint)


@app.command()
def add(
    directory: Path = typer.Argument(..., help="Campaign directory."),
    table: Path = typer.Argument(..., help="Measurements: .csv or .xlsx with parameter and outcome columns."),
) -> None:
    """Add measurements from a CSV or Excel file (all rows or none).

    Example: valley add runs/np week1.csv
    """
    from campaigns import Campaign
    from data import read_table

    try:
        camp = Campaign.open(directory)
        df = read_table(table)
        df.index = range(2, len(df) + 2)  # messages name the line in the file (header = line 1)
        report = camp.add_measurements(df, source=table.name)
    except _user_errors() as e:
        _fail(e)
    for line in report.warnings + report.duplicates:
        say("warning", "yellow", line)
    failed = f", {report.failed} failed run(s) (missing outcomes) kept" if report.failed else ""
    out.print(f"Added {report.added} measurement(s){failed}; skipped {len(report.duplicates)} duplicate(s).")


@app.command()
def propose(
    directory: Path = typer.Argument(..., help="Campaign directory."),
    n: int = typer.Option(4, "-n", help="Number of experiments to propose."),
    candidates: Path | None = typer.Option(None, "--candidates", help="Pool of available designs to choose from."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write the proposals to this CSV."),
) -> None:
    """Propose the next batch of experiments.

    Example: valley propose runs/np -n 4 -o next.csv
    """
    from campaigns import Campaign
    from campaigns.export import write_table
    from data import read_table

    try:
        camp = Campaign.open(directory)
        pool = None
        if candidates is not None:
            pool = read_table(candidates)
            pool.index = range(2, len(pool) + 2)
        with err.status("Fitting models and optimizing the acquisition function..."):
            proposals = camp.propose(n=n, candidates=pool)
    except _user_errors() as e:
        _fail(e)
    for note in proposals.attrs["notes"]:
        say("note", "yellow", note)
    where = str(output) if output is not None else "the CSV (-o FILE)"
    print_table(out, proposals, f"Batch {proposals.attrs['batch_id']} ({proposals.attrs['method']})", where)
    if output is not None:
        if candidates is not None:  # keep which line of the pool file each proposal is
            proposals = proposals.rename_axis("candidate_row").reset_index()
        write_table(proposals, output)
        out.print(f"Wrote {escape(str(output))}.")


@app.command()
def status(directory: Path = typer.Argument(..., help="Campaign directory.")) -> None:
    """Show counts, the best safe result so far and the open proposals; warn of a poorly calibrated surrogate.

    Example: valley status runs/np
    """
    from campaigns import Campaign
    from campaigns.report import poorly_calibrated

    try:
        camp = Campaign.open(directory)
    except _user_errors() as e:
        _fail(e)
    measured = camp.measurements
    failed = int((measured[camp.config.outcomes].isna().any(axis=1) | measured["failed"]).sum())
    open_df = camp.open_proposals
    out.print(
        f"[bold]{escape(camp.config.name)}[/]: {len(measured)} measurement(s), {failed} failed; "
        f"{len(open_df)} open proposal(s)."
    )
    best = camp.best()
    shown = camp.config.parameter_names + camp.config.outcomes
    if best is None:
        out.print("No safe measurement yet.")
    elif len(camp.config.objectives) > 1:
        print_table(out, camp.pareto_front()[shown], "Measured Pareto front (safe, successful)", EXPORT)
    else:
        print_table(out, best[shown].to_frame().T, "Best safe result so far", EXPORT)
    if len(open_df):
        print_table(out, camp.open_proposal_details(), "Open proposals (with what the model expects)", EXPORT)
    for verdict in poorly_calibrated(camp) or []:
        say("warning", "yellow", f"surrogate {verdict} See `valley report` (diagnostics).")


@app.command()
def report(
    directory: Path = typer.Argument(..., help="Campaign directory."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Report folder (default: DIR/report)."),
) -> None:
    """Write plots (progress, Pareto front, surrogate parity and calibration) and HTML pages to open in a browser.

    Example: valley report runs/np
    """
    from campaigns import Campaign
    from campaigns.report import write_report

    try:
        camp = Campaign.open(directory)
    except _user_errors() as e:
        _fail(e)
    if camp.measurements.empty:
        _fail(ValueError(f"{directory}: no measurements yet. Add some with `valley add` first."))
    with err.status("Cross-validating the campaign model and drawing the plots..."):
        page = write_report(camp, output or directory / "report")
    out.print(f"Wrote {escape(str(page))}.")


@app.command()
def export(
    directory: Path = typer.Argument(..., help="Campaign directory."),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="CSV file, or .xlsx for Excel (default: CSV on standard output)."
    ),
) -> None:
    """Export measurements and proposals as one CSV (column `record` tells which is which).

    Text cells that start with =, +, - or @ get a leading ' so that spreadsheets do not run them as formulas.

    Example: valley export runs/np -o everything.csv
    """
    import pandas as pd

    from campaigns import Campaign
    from campaigns.export import write_table

    try:
        camp = Campaign.open(directory)
    except _user_errors() as e:
        _fail(e)
    both = pd.concat(
        [camp.measurements.assign(record="measurement"), camp.proposals.assign(record="proposal")], ignore_index=True
    )
    both = both[["record"] + [c for c in both.columns if c != "record"]]
    write_table(both, output or sys.stdout)  # text cells that start like a formula get a leading '
    if output is not None:
        out.print(f"Wrote {len(both)} rows to {escape(str(output))}.")


@benchmarks.command("sequences")
def benchmark_sequences(
    seeds: int = typer.Option(3, min=1, help="Seeds 0, 1, ... per method."),
    rounds: int = typer.Option(3, min=1, help="Valley's batches after the initial random sequences."),
    batch: int = typer.Option(8, min=1, help="Sequences per batch."),
    initial: int = typer.Option(24, min=2, help="Random sequences measured first (the GA's population)."),
) -> None:
    """Valley's sequence campaign against a genetic algorithm and random sequences, same oracle calls.

    Example: valley benchmark sequences --seeds 2 --rounds 2
    """
    from benchmarks.sequences import format_table, run_sequence_benchmark, summarize

    results = run_sequence_benchmark(tuple(range(seeds)), rounds, batch, initial, progress=progress_line)
    out.print(
        f"Best noise-free fold Z-score measured (SYNTHETIC oracle, data.sequences) after {initial} + {rounds} x "
        f"{batch} oracle calls, {seeds} seed(s)",
        highlight=False,
    )
    out.print(escape(format_table(summarize(results))), highlight=False)
    fewest = results.loc[results["method"] == "valley", "model_rounds"].min()
    if fewest < rounds:  # NaN (no valley runs) compares False
        out.print(
            f"note: in some runs only {fewest:.0f} of Valley's {rounds} batches came from its model; the rest were "
            "space-filling (too few measurements for a model). Raise --initial.",
            highlight=False,
        )


@benchmarks.command("speed")
def benchmark_speed(
    sizes: str = typer.Option("50,200,800,2000", help="Existing rows for the continuous part (Hartmann-6)."),
    nano_sizes: str = typer.Option("20,200,1000,10000", help="Measured rows for the nanoparticle part."),
    seeds: int = typer.Option(1, help="Seeds 0, 1, ... per size; the tables show means over them."),
    skip_ax: bool = typer.Option(False, "--skip-ax", help="Leave Ax out of the continuous part."),
    parts: str = typer.Option("continuous,nanoparticles,ensemble", help="Comma-separated parts to run."),
    budget: float = typer.Option(300.0, help="After one call takes longer (seconds), skip that method's larger sizes."),
    threads: int = typer.Option(1, min=1, help="Torch threads for every method (`valley propose` uses 1)."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Also write every measurement to this CSV."),
) -> None:
    """Seconds per proposal of Valley, plain BoTorch and Ax; Valley's peak memory (takes many minutes).

    Example: valley benchmark speed --sizes 50,200 --nano-sizes 20,200 --parts continuous,nanoparticles
    """
    import pandas as pd

    from benchmarks.speed import (
        CONTINUOUS_METHODS,
        Q,
        continuous_speed,
        continuous_table,
        nanoparticle_speed,
        nanoparticle_table,
    )

    chosen = [p.strip() for p in parts.split(",") if p.strip()]
    unknown = sorted(set(chosen) - {"continuous", "nanoparticles", "ensemble"})
    if unknown:
        _fail(ValueError(f"--parts must be among continuous, nanoparticles, ensemble. Got {unknown} instead."))
    try:
        continuous_sizes, nano = _sizes(sizes, "--sizes"), _sizes(nano_sizes, "--nano-sizes")
    except ValueError as e:
        _fail(e)
    seed_list = tuple(range(seeds))
    wide = Console(width=max(out.width, 120))
    frames = []
    if "continuous" in chosen:
        methods = [m for m in CONTINUOUS_METHODS if not (skip_ax and m == "ax")]
        df = continuous_speed(continuous_sizes, seed_list, methods, budget, threads, progress=progress_line)
        frames.append(df)
        wide.print(table_of(continuous_table(df), f"Hartmann-6: seconds per proposal of q = {Q}"))
        out.print(
            f"6 continuous parameters, noisy; {threads} torch thread(s); mean of {seeds} seed(s); "
            "BoTorch: SingleTaskGP, qLogNEI, num_restarts=10, raw_samples=512; Ax: Client, default strategy.",
            highlight=False,
        )
        _print_notes(df)
    if "nanoparticles" in chosen:
        df = nanoparticle_speed(nano, seed_list, budget, threads, progress=progress_line)
        frames.append(df)
        wide.print(table_of(nanoparticle_table(df), f"Valley on nanoparticles: seconds per proposal of q = {Q}"))
        out.print(
            "One fresh process per size; peak: its whole peak resident memory (VmHWM); after imports: its "
            f"resident memory once torch, botorch and Valley are imported; mean of {seeds} seed(s).",
            highlight=False,
        )
        _print_notes(df)
    if "ensemble" in chosen:
        from benchmarks.ensemble import ensemble_speed, format_ensemble_speed

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            df = pd.concat([ensemble_speed(n_rows=20000, seed=s, members=5) for s in seed_list], ignore_index=True)
        frames.append(df.assign(part="ensemble"))
        out.print(escape(format_ensemble_speed(df)), highlight=False)
    if output is not None and frames:
        pd.concat(frames, ignore_index=True).to_csv(output, index=False)
        out.print(f"Wrote {escape(str(output))}.")


def _sizes(text: str, option: str) -> list[int]:
    """Comma-separated positive row counts, e.g. `50,200`."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise ValueError(f"{option} must be comma-separated positive row counts, e.g. 50,200. Got {text!r} instead.")
    return values


def _print_notes(df) -> None:
    """The distinct notes of a part's rows (skipped sizes, failed children), one line each."""
    for note in dict.fromkeys(n for n in df["note"] if n):
        out.print(f"note: {escape(note)}", highlight=False)


if __name__ == "__main__":
    app()
