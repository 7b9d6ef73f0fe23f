"""`valley benchmark ...`: thin commands over the `benchmarks` package, side by side with the baselines.

Here the campaign benchmarks (safe, pool, surrogates, sequences, speed, storage-load); inverse
design and the optimization toolkit's commands live in `campaigns.bench_toolkit_cli` and join
this group. Each command imports its benchmark inside the function, so `valley --help` stays fast.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from campaigns.bench_options import parse_choices, parse_sizes, print_notes
from campaigns.bench_toolkit_cli import toolkit
from campaigns.console import fail as _fail
from campaigns.console import out, progress_line, table_of

benchmarks = typer.Typer(
    help="Benchmarks against the established tools, side by side (each takes minutes).", no_args_is_help=True
)


@benchmarks.command("safe")
def benchmark_safe(
    problems: str = typer.Option("nanoparticles,gardner,spring", help="Comma-separated bundled systems."),
    methods: str = typer.Option(
        "valley,valley-safe-set,random,botorch,ax",
        help="Comma-separated methods, among valley, valley-0.8 and valley-0.5 (every limit at that confidence), "
        "valley-cautious (safety_extrapolation: cautious), valley-explore (safety_explore: 1), valley-safe-set, "
        "valley-safe-set-ise, "
        "valley-safe-set-cautious, random, botorch, ax.",
    ),
    seeds: int = typer.Option(3, help="Seeds per problem and method."),
    rounds: int = typer.Option(5, help="Batches after the initial design."),
    batch: int = typer.Option(4, help="Designs per batch."),
    workdir: Path | None = typer.Option(None, help="Where Valley's campaigns go (default: a temporary folder)."),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Also write every run's scores to this CSV, each as it finishes."
    ),
    resume: bool = typer.Option(False, "--resume", help="Keep the runs already in --output; run only the rest."),
    jobs: int = typer.Option(1, "-j", "--jobs", min=1, help="Runs at a time, one process each."),
    ray: str | None = typer.Option(
        None,
        "--ray",
        help="Run each run as a Ray task: `auto` (a local Ray cluster) or a cluster's address, HOST:6379 or "
        "ray://HOST:10001. Needs pip install 'valley\\[ray]'.",
    ),
    ray_workers: int | None = typer.Option(
        None, "--ray-workers", min=1, help="With --ray auto: the local cluster's CPUs (default: this machine's cores)."
    ),
) -> None:
    """Compare Valley with random search, plain BoTorch and Ax on simulated campaigns (takes minutes).

    Example: valley benchmark safe --problems gardner --seeds 2 --rounds 3
    """
    import tempfile

    import pandas as pd

    from benchmarks.safe import format_table, run_benchmark, summarize

    if resume and (output is None or not output.exists()):
        _fail(ValueError(f"--resume needs --output naming the CSV of an earlier run. Got {output} instead."))
    try:
        done = pd.read_csv(output) if resume else None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        _fail(ValueError(f"--resume could not read {output} ({e}). Give an earlier run's CSV, or drop --resume."))
    saved = [] if done is None else done.to_dict("records")

    def save(row: dict) -> None:  # the CSV holds every finished run, so an interrupted call can resume
        saved.append(row)
        pd.DataFrame(saved).to_csv(output, index=False)

    with tempfile.TemporaryDirectory() as scratch:
        try:
            results = run_benchmark(
                problems.split(","),
                methods.split(","),
                seeds,
                rounds,
                batch,
                workdir or Path(scratch) / "runs",
                progress=progress_line,
                jobs=jobs,
                done=done,
                on_row=save if output is not None else None,
                ray=ray,
                ray_workers=ray_workers,
            )
        except ValueError as e:
            _fail(e)
    Console(width=max(out.width, 150)).print(format_table(summarize(results)))  # wide, even when piped
    if output is not None:  # this call's runs in order, then earlier runs it did not cover
        key = ["problem", "method", "seed", "rounds", "batch"]
        ran = set(results[key].itertuples(index=False, name=None))
        earlier = [r for r in saved if tuple(r.get(k) for k in key) not in ran]
        pd.concat([results, pd.DataFrame(earlier)], ignore_index=True).to_csv(output, index=False)
        out.print(f"Wrote {escape(str(output))}.")


@benchmarks.command("pool")
def benchmark_pool(
    problems: str = typer.Option(
        "nanoparticles,gardner,spring,pressure_vessel", help="Comma-separated bundled systems, one pool each."
    ),
    methods: str = typer.Option(
        "valley,valley-0.8,botorch,baybe,random",
        help="Comma-separated methods, among valley, valley-0.8, valley-explore, botorch, baybe (when installed) "
        "and random.",
    ),
    seeds: int = typer.Option(5, min=1, help="Seeds (pools and starts) per problem."),
    size: int = typer.Option(1000, min=20, help="Rows per pool."),
    budget: int = typer.Option(30, min=2, help="Experiments per run, the initial rows included."),
    batch: int = typer.Option(4, min=1, help="Rows picked per round."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Also write every run to this CSV."),
) -> None:
    """Experiments until a top-1 % row of a candidate pool is measured: Valley, plain BoTorch, BayBE, random (minutes).

    Example: valley benchmark pool --problems gardner --seeds 2 --size 300
    """
    import tempfile

    from benchmarks.pool import run_pool_benchmark, summarize

    with tempfile.TemporaryDirectory() as scratch:
        try:
            results = run_pool_benchmark(
                problems.split(","), methods.split(","), seeds, Path(scratch), size, budget, batch, progress_line
            )
        except ValueError as e:
            _fail(e)
    out.print(table_of(summarize(results, budget), f"Pools of {size} rows: experiments to a top-1 % row"))
    if output is not None:
        results.to_csv(output, index=False)
        out.print(f"Wrote {escape(str(output))}.")


@benchmarks.command("surrogates")
def benchmark_surrogates(
    seeds: int = typer.Option(1, help="Seeds to repeat each part with."),
) -> None:
    """Weighted vs unweighted losses (system 4), physics terms (system 5), calibration and speed.

    Example: valley benchmark surrogates --seeds 2
    """
    from benchmarks.surrogates import format_benchmark, run_surrogate_benchmark

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = run_surrogate_benchmark(seeds=tuple(range(seeds)), progress=progress_line)
    out.print(format_benchmark(results), highlight=False)


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

    chosen = parse_choices(parts, "--parts", ("continuous", "nanoparticles", "ensemble"))
    try:
        continuous_sizes, nano = parse_sizes(sizes, "--sizes"), parse_sizes(nano_sizes, "--nano-sizes")
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
        print_notes(df)
    if "nanoparticles" in chosen:
        df = nanoparticle_speed(nano, seed_list, budget, threads, progress=progress_line)
        frames.append(df)
        wide.print(table_of(nanoparticle_table(df), f"Valley on nanoparticles: seconds per proposal of q = {Q}"))
        out.print(
            "One fresh process per size; peak: its whole peak resident memory (VmHWM); after imports: its "
            f"resident memory once torch, botorch and Valley are imported; mean of {seeds} seed(s).",
            highlight=False,
        )
        print_notes(df)
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


@benchmarks.command("storage-load")
def benchmark_storage_load(
    url: str = typer.Argument(..., help="PostgreSQL database to load: postgresql://user@host:port/dbname."),
    writers: int = typer.Option(8, min=1, help="Writer processes (each adds one row per transaction)."),
    proposers: int = typer.Option(4, min=0, help="Proposer processes (each proposes batches of 2)."),
    seconds: float = typer.Option(30.0, min=1.0, help="How long they run."),
    keep: bool = typer.Option(False, "--keep", help="Keep the load test's schema (valley_load_...) afterwards."),
) -> None:
    """Concurrent writers and proposers on one PostgreSQL campaign: rows lost, duplicate proposals, p95 latency.

    The campaign lives in a new schema of the database, dropped afterwards. Exit code 1 if a row
    was lost or a design proposed twice. Example: valley benchmark storage-load postgresql://lab@db/valley --seconds 10
    """
    from benchmarks.storage_load import run_storage_load
    from design import InputError

    try:
        result, schema = run_storage_load(url, writers, proposers, seconds, keep)
    except (InputError, ValueError) as e:
        _fail(e)
    out.print(escape(result.summary()), highlight=False)
    if keep:
        out.print(f"Kept the campaign in schema {schema} (URL option: ?options=-csearch_path%3D{schema}).")
    if not result.ok:
        raise typer.Exit(1)


benchmarks.registered_commands.extend(toolkit.registered_commands)  # inverse design and the toolkit
