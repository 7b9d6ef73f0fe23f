"""`valley benchmark ...` for inverse design and the optimization toolkit of the source documents.

The commands join `campaigns.bench_cli`'s group (`valley benchmark inverse`, `... toolkit`, ...);
each imports its benchmark inside the function, so `valley --help` stays fast.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from campaigns.bench_options import on_ray, parse_choices, parse_sizes
from campaigns.console import err, out, progress_line, table_of
from campaigns.console import fail as _fail

toolkit = typer.Typer()


@toolkit.command("inverse")
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

    chosen = parse_choices(problems, "--problems", ("bearing", "sequences", "robot_arm", *PUBLISHED_PROBLEMS))
    frames = []
    if ray is not None:  # each seed a Ray task; a seed Ray lost is said and left out of the means
        tasks = [
            (n, starts, steps, n_train, s, chosen, targets, published_train, mlp_epochs)
            for s in range(seed, seed + seeds)
        ]
        frames = on_ray(run_inverse_benchmark, tasks, ray, ray_workers, lambda task: f"seed {task[4]}")
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


@toolkit.command("bilevel")
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


@toolkit.command("identifiability")
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

    chosen = parse_choices(scenarios, "--scenarios", SCENARIOS)
    try:
        sizes = parse_sizes(doses, "--doses")
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


@toolkit.command("step-control")
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
    chosen = parse_choices(problems, "--problems", PROBLEMS)
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


@toolkit.command("toolkit")
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


@toolkit.command("toolkit-extra")
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
    chosen = parse_choices(items, "--items", runs)
    for item in chosen:
        run, by, title = runs[item]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            means = summarize(run(tuple(range(seeds))), by)
        out.print(f"{title} (mean over {seeds} seed(s))", highlight=False)
        out.print(escape(means.to_string(index=False, float_format=lambda v: f"{v:.4g}")) + "\n", highlight=False)


@toolkit.command("learned-optimizer")
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

    chosen = parse_choices(problems, "--problems", PROBLEMS)
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
