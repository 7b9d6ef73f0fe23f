"""`valley benchmark ...`: thin commands over the `benchmarks` package, side by side with the baselines.

Each command imports its benchmark inside the function, so `valley --help` stays fast.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from campaigns.console import err, out, progress_line, table_of
from campaigns.console import fail as _fail

benchmarks = typer.Typer(
    help="Benchmarks against the established tools, side by side (each takes minutes).", no_args_is_help=True
)


@benchmarks.command("safe")
def benchmark_safe(
    problems: str = typer.Option("nanoparticles,gardner,spring", help="Comma-separated bundled systems."),
    methods: str = typer.Option(
        "valley,valley-safe-set,random,botorch,ax",
        help="Comma-separated methods, among valley, valley-0.8 (every limit at confidence 0.8), valley-cautious "
        "(safety_extrapolation: cautious), valley-safe-set, valley-safe-set-ise, valley-safe-set-cautious, random, "
        "botorch, ax.",
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
        "valley,valley-0.8,botorch,baybe,random", help="Comma-separated methods (baybe: when installed)."
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


@benchmarks.command("inverse")
def benchmark_inverse(
    problems: str = typer.Option("bearing,sequences,robot_arm", help="Comma-separated inverse problems."),
    n: int = typer.Option(8, "-n", help="Designs asked of every method."),
    starts: int = typer.Option(1024, help="Gradient-descent starts (DE and the GA also get starts x steps calls)."),
    steps: int = typer.Option(150, help="Gradient steps."),
    n_train: int = typer.Option(200, help="Simulated training rows per problem (sequences: 10x)."),
    seed: int = typer.Option(0, help="First seed."),
    seeds: int = typer.Option(1, help="Seeds seed, seed + 1, ...; the table shows means over them."),
    targets: int = typer.Option(200, help="Held-out targets of robot_arm_ren and sine_wave."),
    published_train: int = typer.Option(10_000, help="Training rows of robot_arm_ren and sine_wave."),
    mlp_epochs: int = typer.Option(300, help="Training epochs of the neural adjoint's MLP."),
    ray: str | None = typer.Option(
        None, "--ray", help="Run each seed as a Ray task: `auto` or a cluster's address (as in `benchmark safe`)."
    ),
    ray_workers: int | None = typer.Option(
        None, "--ray-workers", min=1, help="With --ray auto: the local cluster's CPUs (default: this machine's cores)."
    ),
) -> None:
    """Gradient inverse design against the best training row, random search and DE/GA (takes minutes).

    robot_arm_ren and sine_wave are the published benchmark of Ren et al. (2020): k-NN lookup, the
    neural adjoint and Valley, scored by the re-simulation MSE of the best of T = 1 and 10 designs.

    Example: valley benchmark inverse --problems robot_arm_ren --targets 50
    """
    import pandas as pd

    from benchmarks.inverse import run_inverse_benchmark
    from benchmarks.published import PUBLISHED_PROBLEMS

    chosen = _choices(problems, "--problems", ("bearing", "sequences", "robot_arm", *PUBLISHED_PROBLEMS))
    frames = []
    if ray is not None:  # each seed a Ray task; a seed Ray lost is said and left out of the means
        tasks = [
            (n, starts, steps, n_train, s, chosen, targets, published_train, mlp_epochs)
            for s in range(seed, seed + seeds)
        ]
        frames = _on_ray(run_inverse_benchmark, tasks, ray, ray_workers, lambda task: f"seed {task[4]}")
        if not frames:
            _fail(ValueError(f"Every one of the {seeds} seed(s) failed on Ray; see the lines above."))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy's and botorch's notices would bury the table
            for k, s in enumerate(range(seed, seed + seeds)):
                with err.status(f"Seed {s} ({k + 1} of {seeds}): training and designing on {', '.join(chosen)}..."):
                    frames.append(
                        run_inverse_benchmark(
                            n=n,
                            starts=starts,
                            steps=steps,
                            n_train=n_train,
                            seed=s,
                            problems=chosen,
                            n_targets=targets,
                            published_train=published_train,
                            mlp_epochs=mlp_epochs,
                        )
                    )
    results = pd.concat(frames)
    means = results.groupby(["problem", "surrogate", "method"], sort=False).mean(numeric_only=True).reset_index()
    published = means["problem"].isin(PUBLISHED_PROBLEMS)
    wide = Console(width=max(out.width, 190))
    if (~published).any():
        title = f"Inverse design: designs re-simulated (mean over {seeds} seed(s))"
        wide.print(table_of(means[~published].dropna(axis=1, how="all"), title))
    if published.any():
        title = f"Published benchmark: re-simulation MSE of the best of T designs, {targets} targets"
        title += f" (mean over {seeds} seed(s))"
        wide.print(table_of(means[published].dropna(axis=1, how="all"), title))


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


@benchmarks.command("bilevel")
def benchmark_bilevel(
    seeds: int = typer.Option(3, min=1, help="Seeds 0, 1, ..."),
) -> None:
    """Physics weight on the hyperelastic bar (S5): IFT hypergradients vs a grid (a few minutes).

    Example: valley benchmark bilevel --seeds 1
    """
    from benchmarks.bilevel import format_bilevel, run_bilevel_benchmark

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = run_bilevel_benchmark(seeds=tuple(range(seeds)), progress=progress_line)
    out.print(escape(format_bilevel(results)), highlight=False)


@benchmarks.command("identifiability")
def benchmark_identifiability(
    doses: str = typer.Option("8,20,60", help="Comma-separated numbers of doses (measurements)."),
    seeds: int = typer.Option(3, min=1, help="Seeds 0, 1, ... per number of doses."),
    scenarios: str = typer.Option("fixed,low,random", help="Comma-separated: fixed, low, random."),
) -> None:
    """Which Emax-mean parameters (E0, Emax, EC50, Hill) the nanoparticle data pin down, by doses (about a minute).

    Example: valley benchmark identifiability --doses 8,60 --seeds 2 --scenarios fixed,low
    """
    from benchmarks.identifiability import (
        SCENARIOS,
        flag_counts,
        format_table,
        run_identifiability_benchmark,
        true_parameters,
    )

    chosen = _choices(scenarios, "--scenarios", SCENARIOS)
    try:
        sizes = _sizes(doses, "--doses")
    except ValueError as e:
        _fail(e)
    truth = ", ".join(f"{k} {v:.3g}" for k, v in true_parameters().items())
    results = run_identifiability_benchmark(sizes, tuple(range(seeds)), chosen, progress=progress_line)
    out.print(
        "Identifiability of the Emax mean on T-cell activation (SYNTHETIC simulator, data.nanoparticles; "
        f"fixed formulation's truth: {truth}); value +- standard error in user units",
        highlight=False,
    )
    out.print(escape(format_table(results)), highlight=False)
    out.print("\nSeeds that flagged each parameter:", highlight=False)
    out.print(escape(flag_counts(results).to_string(index=False)), highlight=False)


@benchmarks.command("step-control")
def benchmark_step_control(
    problems: str = typer.Option("robot_arm,rosenbrock", help="Comma-separated: robot_arm, rosenbrock."),
    seeds: int = typer.Option(3, min=1, help="Seeds 0, 1, ... per problem."),
    targets: int = typer.Option(8, min=1, help="Held-out targets per problem and seed."),
    starts: int = typer.Option(16, min=1, help="Starts per target."),
    steps: int = typer.Option(300, min=2, help="Step budget of every method."),
    part: str = typer.Option("inverse", help="inverse, training (16 ensemble members on the sine wave) or all."),
) -> None:
    """Step control: Adam's defaults, a tuned fixed step, curvature-safe steps, PI; in inverse design or training.

    Example: valley benchmark step-control --problems rosenbrock --seeds 1
    Example: valley benchmark step-control --part training --seeds 3
    """
    from benchmarks.step_control import PROBLEMS, format_table, run_step_control_benchmark, summarize

    if part not in ("inverse", "training", "all"):
        _fail(ValueError(f"--part must be inverse, training or all. Got {part!r} instead."))
    if part != "inverse":
        _benchmark_training_step_control(seeds)
    if part == "training":
        return
    chosen = _choices(problems, "--problems", PROBLEMS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = run_step_control_benchmark(
            chosen, tuple(range(seeds)), targets, starts, steps, progress=progress_line
        )
    out.print(
        f"Steps and seconds to the goal tolerance on {targets} held-out targets x {starts} starts, {steps} steps "
        f"(mean over {seeds} seed(s))",
        highlight=False,
    )
    out.print(escape(format_table(summarize(results))), highlight=False)


def _benchmark_training_step_control(seeds: int) -> None:
    """The training part of `valley benchmark step-control`."""
    from benchmarks.training_step_control import format_training_table, run_training_benchmark, summarize_training

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = run_training_benchmark(tuple(range(seeds)), progress=progress_line)
    out.print(
        "Training step control: 16 NeuralEnsemble members (the starts) on 2,000 sine-wave rows, 3,000 steps; "
        f"epochs to a validation CRPS of 0.05 (mean over {seeds} seed(s))",
        highlight=False,
    )
    out.print(escape(format_training_table(summarize_training(results))), highlight=False)


@benchmarks.command("toolkit")
def benchmark_toolkit(
    seed: int = typer.Option(0, "--seed", help="The seed of every row."),
) -> None:
    """The optimization toolkit in one table: each piece beside its plain alternative, one seed (about 10 minutes).

    Example: valley benchmark toolkit --seed 1
    """
    from benchmarks.toolkit import format_toolkit, run_toolkit_benchmark

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = run_toolkit_benchmark(seed, progress=progress_line)
    out.print(f"The optimization toolkit against the plain choices (seed {seed}; full runs: each row's benchmark)")
    out.print(escape(format_toolkit(results)), highlight=False)


@benchmarks.command("toolkit-extra")
def benchmark_toolkit_extra(
    items: str = typer.Option(
        "flatness,population,levenberg", help="Comma-separated: flatness, population, levenberg."
    ),
    seeds: int = typer.Option(3, min=1, help="Seeds 0, 1, ..."),
) -> None:
    """Flat-minimum ranking, CMA-ES vs multi-start gradient, stochastic Levenberg-Marquardt (minutes).

    Example: valley benchmark toolkit-extra --items levenberg --seeds 1
    """
    from benchmarks.toolkit_extra import TOLERANCE, run_flatness, run_levenberg, run_population, summarize

    runs: dict[str, tuple[Callable[..., Any], list[str], str]] = {
        "flatness": (run_flatness, ["problem", "ranking"], f"Top design jittered ({TOLERANCE} sd), re-simulated"),
        "population": (run_population, ["problem", "method"], "Best re-simulated objective, goals met, calls"),
        "levenberg": (run_levenberg, ["method"], "Hill fit, 10,000 noisy points: excess MSE over the optimum"),
    }
    chosen = _choices(items, "--items", runs)
    for item in chosen:
        run, by, title = runs[item]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            means = summarize(run(tuple(range(seeds))), by)
        out.print(f"{title} (mean over {seeds} seed(s))", highlight=False)
        out.print(escape(means.to_string(index=False, float_format=lambda v: f"{v:.4g}")) + "\n", highlight=False)


@benchmarks.command("learned-optimizer")
def benchmark_learned_optimizer(
    problems: str = typer.Option("robot_arm,rosenbrock", help="Comma-separated: robot_arm, rosenbrock."),
    seeds: int = typer.Option(3, min=1, help="Seeds 0, 1, ... per problem."),
    targets: int = typer.Option(8, min=1, help="Held-out targets per problem and seed."),
    starts: int = typer.Option(16, min=1, help="Starts per target."),
    steps: int = typer.Option(200, min=2, help="Step budget of every method."),
) -> None:
    """A learned optimizer (meta-trained per problem) against Adam, AMSGrad and L-BFGS on held-out targets (minutes).

    Example: valley benchmark learned-optimizer --problems rosenbrock --seeds 1
    """
    from benchmarks.learned_optimizer import PROBLEMS, format_table, run_learned_optimizer_benchmark, summarize

    chosen = _choices(problems, "--problems", PROBLEMS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = run_learned_optimizer_benchmark(
            chosen, tuple(range(seeds)), targets, starts, steps, progress=progress_line
        )
    out.print(
        f"Steps and seconds to the goal tolerance on {targets} held-out targets x {starts} starts, {steps} steps "
        f"(mean over {seeds} seed(s); meta seconds: meta-training, not counted in seconds)",
        highlight=False,
    )
    out.print(escape(format_table(summarize(results))), highlight=False)


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

    chosen = _choices(parts, "--parts", ("continuous", "nanoparticles", "ensemble"))
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


def _on_ray(
    function: Callable[..., Any], tasks: list[tuple], address: str, workers: int | None, name: Callable
) -> list:
    """`function(*task)` of every task as Ray tasks (`benchmarks.ray_fanout`), in task order; one line as each ends.

    A task Ray lost (its worker died) is said and left out; Ray missing or unreachable ends the command in one line.
    """
    from benchmarks.ray_fanout import RayUnavailable, ray_map

    results = {}
    try:
        for index, result, error in ray_map(function, tasks, address, workers, progress_line):
            progress_line(f"{name(tasks[index])}: {f'failed ({error})' if error else 'done'}")
            if not error:
                results[index] = result
    except RayUnavailable as e:
        _fail(e)
    return [results[i] for i in sorted(results)]


def _choices(text: str, option: str, allowed: Iterable[str]) -> list[str]:
    """The comma-separated names of `text`, each one of `allowed`; else one error line naming `option`."""
    known = list(allowed)
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in known]
    if not chosen or unknown:
        _fail(ValueError(f"{option} must be among {', '.join(known)}. Got {text!r} instead."))
    return chosen


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
