"""The `valley` command line: a thin layer over the public API; one error, one line, exit 1."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.markup import escape

from campaigns.bench_cli import benchmarks
from campaigns.console import OneLineErrors, err, out, print_table, say, set_debug, user_errors
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


@app.command()
def init(
    directory: str = typer.Argument(..., help="New campaign directory, or a postgresql://user@host:port/dbname URL."),
    config: Path = typer.Option(..., "--config", "-c", help="Campaign YAML file."),
) -> None:
    """Create a campaign from a YAML config, in a directory (SQLite) or a PostgreSQL database.

    Example: valley init runs/np --config np.yaml
    """
    from campaigns import Campaign

    try:
        camp = Campaign.create(directory, config)
    except user_errors() as e:
        _fail(e)
    where = getattr(camp.store, "where", directory)  # a PostgreSQL URL is shown without its password
    out.print(f"Created campaign [bold]{escape(camp.config.name)}[/] in {escape(where)}.")
    if where is not directory:
        out.print(f"This machine keeps the campaign's model cache and reports in {escape(str(camp.path))}.")
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
    except user_errors() as e:
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
    from campaigns.export import check_output, write_table
    from data import read_table

    try:
        check_output(output)  # before a batch is recorded, not after
        camp = Campaign.open(directory)
        pool = None
        if candidates is not None:
            pool = read_table(candidates)
            pool.index = range(2, len(pool) + 2)
        with err.status("Fitting models and optimizing the acquisition function..."):
            proposals = camp.propose(n=n, candidates=pool)
    except user_errors() as e:
        _fail(e)
    for note in proposals.attrs["notes"]:
        say("note", "yellow", note)
    where = str(output) if output is not None else "the CSV (-o FILE)"
    shown = proposals.drop(columns=[c for c in proposals if c.endswith("_widened")])  # in the notes, and in -o
    print_table(out, shown, f"Batch {proposals.attrs['batch_id']} ({proposals.attrs['method']})", where)
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
    except user_errors() as e:
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
    except user_errors() as e:
        _fail(e)
    if camp.measurements.empty:
        _fail(ValueError(f"{directory}: no measurements yet. Add some with `valley add` first."))
    with err.status("Cross-validating the campaign model and drawing the plots..."):
        page = write_report(camp, output or camp.path / "report")  # a PostgreSQL campaign: this machine's folder
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
    from campaigns.export import check_output, write_table

    try:
        check_output(output)
        camp = Campaign.open(directory)
    except user_errors() as e:
        _fail(e)
    both = pd.concat(
        [camp.measurements.assign(record="measurement"), camp.proposals.assign(record="proposal")], ignore_index=True
    )
    both = both[["record"] + [c for c in both.columns if c != "record"]]
    write_table(both, output or sys.stdout)  # text cells that start like a formula get a leading '
    if output is not None:
        out.print(f"Wrote {len(both)} rows to {escape(str(output))}.")


@app.command()
def migrate(
    directory: Path = typer.Argument(..., help="Campaign directory (SQLite) to copy."),
    url: str = typer.Argument(..., help="Empty PostgreSQL database: postgresql://user@host:port/dbname."),
) -> None:
    """Copy a campaign directory into a PostgreSQL database: every row, with its id and time, in one transaction.

    The directory is left as it was. Example: valley migrate runs/np postgresql://lab@dbhost:5432/np
    """
    from campaigns.postgres_migrate import migrate as copy_campaign

    try:
        counts, where = copy_campaign(directory, url)
    except user_errors() as e:
        _fail(e)
    copied = ", ".join(f"{name} {n}" for name, n in counts.items())
    out.print(f"Copied {escape(str(directory))} to {escape(where)}: {copied} (counts verified).")
    out.print(f"{escape(str(directory))} is unchanged; use the URL from now on (e.g. `valley status URL`).")


@app.command()
def serve(
    directory: Path = typer.Argument(..., help="Campaign directory."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind. 0.0.0.0 lets anyone on the network see the campaign and add data."
    ),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
) -> None:
    """Start a local dashboard: progress, open proposals, upload results, propose the next batch.

    Example: valley serve runs/np   (then open http://127.0.0.1:8000)
    """
    from campaigns import Campaign
    from campaigns.serve import exposure_warning
    from campaigns.serve import serve as run_server

    try:
        camp = Campaign.open(directory)
    except user_errors() as e:
        _fail(e)
    campaign = getattr(camp.store, "where", str(directory))  # a PostgreSQL URL is shown without its password
    warning = exposure_warning(host)
    if warning:
        say("warning", "yellow", warning)
    where = f"[{host}]" if ":" in host else host
    shown = f"http://{where}:{port}/" if warning is None else f"port {port} of this computer's addresses ({host})"
    out.print(f"Serving {escape(campaign)} at {escape(shown)}; Ctrl+C stops it.")
    if warning is None:
        out.print("Only this computer can reach it; `--host 0.0.0.0` would expose it to the network.")
    run_server(directory, host=host, port=port)


@app.command()
def demo(
    rounds: int = typer.Option(5, "--rounds", help="Batches after the initial design."),
    batch: int = typer.Option(4, "--batch", help="Experiments per batch."),
    seed: int = typer.Option(0, "--seed"),
    out_dir: Path = typer.Option(Path("valley_demo"), "--out", help="Where the campaign and the plot go."),
    ray: str | None = typer.Option(
        None,
        "--ray",
        help="Simulate each design of a batch as a Ray task: `auto` (a local Ray cluster) or a cluster's address, "
        "HOST:6379 or ray://HOST:10001; the same campaign as without. Needs pip install 'valley\\[ray]'.",
    ),
    ray_workers: int | None = typer.Option(
        None, "--ray-workers", min=1, help="With --ray auto: the local cluster's CPUs (default: this machine's cores)."
    ),
    cautious: bool = typer.Option(
        False, "--cautious", help="Run the campaign with safety_extrapolation: cautious (see the README)."
    ),
    explore: int = typer.Option(
        0,
        "--explore",
        min=0,
        help="Designs per batch held to P(safe) >= 0.5 instead of the confidence (safety_explore; see the README).",
    ),
) -> None:
    """Run a simulated nanoparticle campaign (synthetic simulator) and plot its progress.

    Example: valley demo --rounds 5
    """
    import shutil

    from rich.progress import Progress

    from campaigns.report import plot_progress
    from campaigns.simulate import run_simulated_campaign, summarize_rounds
    from data import get_system
    from data.ray_tasks import RayUnavailable

    if ray is None and ray_workers is not None:
        _fail(ValueError("--ray-workers needs --ray (e.g. --ray auto). Add --ray auto, or drop --ray-workers."))

    system = get_system("nanoparticles")
    if cautious:
        system = system.with_config(safety_extrapolation="cautious")
    if explore:
        system = system.with_config(safety_explore=explore)
    campaign_dir = out_dir / "campaign"
    if campaign_dir.exists():
        shutil.rmtree(campaign_dir)  # the demo's own previous run
    out_dir.mkdir(parents=True, exist_ok=True)
    limit = system.config["safety"][0]
    out.print(
        f"Simulated campaign on the synthetic nanoparticle system: maximize {system.objective} "
        f"with {limit['name']} <= {limit['upper']} (best possible safe value {system.best_safe_value:.2f})."
    )
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("rounds", total=rounds + 1)

        def report(r: int, history) -> None:
            row = summarize_rounds(history).iloc[-1]
            progress.console.print(
                f"round {r}: {int(row.experiments):3d} experiments, best safe {system.objective} "
                f"{row.best_safe:.3f}, unsafe experiments {int(row.unsafe)} ({row.method})"
            )
            progress.advance(task)

        try:
            with _ray_demo_session(ray, ray_workers):
                history = run_simulated_campaign(
                    system, campaign_dir, rounds, batch, seed=seed, on_round=report, ray=_ray_cluster(ray, ray_workers)
                )
        except RayUnavailable as e:
            _fail(e)
    png = plot_progress(
        history, system.objective, out_dir / "progress.png", system.best_safe_value, (limit["name"], limit["upper"])
    )
    out.print(f"Campaign in {escape(str(campaign_dir))}; progress plot in {escape(str(png))}.")


def _ray_cluster(ray: str | None, workers: int | None):
    """`--ray` and `--ray-workers` as a `data.ray_tasks.RayCluster` (None without `--ray`)."""
    from data.ray_tasks import RayCluster

    return None if ray is None else RayCluster(ray, workers)


def _ray_demo_session(ray: str | None, workers: int | None):
    """One Ray connection for the whole demo, saying where its tasks run; nothing without `--ray`."""
    from contextlib import nullcontext

    from data.ray_tasks import ray_session

    cluster = _ray_cluster(ray, workers)
    return nullcontext() if cluster is None else ray_session(cluster, say=lambda line: err.print(line, markup=False))


app.add_typer(benchmarks, name="benchmark")
app.command()(design)


if __name__ == "__main__":
    app()
