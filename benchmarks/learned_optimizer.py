"""The learned optimizer against Adam, AMSGrad and L-BFGS: steps and seconds to the goal tolerance.

Problems and held-out targets are those of `benchmarks.step_control` (the robot arm's GP and
Rosenbrock's banana valley; targets the images of held-out points, tolerances 1 cm and 0.01). Per
problem and seed, `design.inverse.learned.meta_train` fits a `LearnedOptimizer` to that surrogate
on its own family of training targets (drawn like the held-out ones, from other seeds); its
seconds are reported apart (`meta seconds`) and not counted in `seconds`.

Methods, each from the same random starts (`starts` per target):

- `learned`: `Descent` with the learned optimizer taking every step;
- `adam`: `Descent` with Adam (Valley's default, peak step 0.05 with the cosine; one cycle);
- `amsgrad`: the same with AMSGrad;
- `lbfgs`: `torch.optim.LBFGS` (strong-Wolfe line search, memory 10) on each target's loss summed
  over its starts, the designs clamped to the unit cube inside the loss; a step is one evaluation
  of loss and gradient, so its line search's evaluations count.

Per method, means over seeds of: `targets met` (share of targets some start met within every
tolerance by the end), `steps` (median over targets of the first step at which some start met it;
the step budget where none did), `seconds` (to that step, from the run's seconds per step) and
`finite` (share of starts whose final designs and loss are finite). Every number is measured in
the run that prints it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import pandas as pd
import torch
from torch import Tensor

from benchmarks.step_control import MET, _problem
from design.inverse.descent import Descent
from design.inverse.goals import Goal
from design.inverse.learned import LearnedOptimizer, MetaTraining, meta_train
from design.inverse.relax import RelaxedDesigns
from design.inverse.score import Scorer
from design.space import SearchSpace

Progress = Callable[[str], None] | None
PROBLEMS = ("robot_arm", "rosenbrock")
METHODS = ("learned", "adam", "amsgrad", "lbfgs")


def _scorer(model: object, targets: Tensor, tolerance: float, starts: int) -> Scorer:
    """Target goals for `starts` consecutive starts per target (`kappa = 0`)."""
    row = torch.arange(targets.shape[0]).repeat_interleave(starts)
    goals = [
        Goal(f"y{j}", "target", targets[row, j], torch.full((len(row),), tolerance, dtype=torch.double))
        for j in range(targets.shape[1])
    ]
    return Scorer(model, goals, [g.name for g in goals], torch.ones(len(goals), dtype=torch.double), kappa=0.0)  # type: ignore[arg-type]


def descend(
    space: SearchSpace,
    model: object,
    targets: Tensor,
    tolerance: float,
    optimizer: str | LearnedOptimizer,
    steps: int,
    starts: int,
    seed: int,
) -> dict[str, float]:
    """`Descent` with `optimizer` (`"adam"`, `"amsgrad"` or a `LearnedOptimizer`); the module's scores."""
    B = targets.shape[0]
    relaxed = RelaxedDesigns(space, space.sample(starts, seed).repeat(B, 1))
    scorer = _scorer(model, targets, tolerance, starts)
    run = Descent(relaxed, steps, 0.05, 1, (1.0, 1.0), 0, optimizer=optimizer)
    first_met = torch.full((B,), float(steps))
    start = time.perf_counter()
    for step in range(steps):
        met_now: list[Tensor] = []

        def terms(X: Tensor, met_now: list[Tensor] = met_now) -> tuple[Tensor, Tensor]:
            objectives, violations = scorer.terms(X)
            met_now.append((objectives.detach() <= MET + 1e-12).all(-1))
            return objectives, violations

        run.step(step, terms)
        hit = met_now[0].reshape(B, -1).any(-1) & (first_met == steps)
        first_met[hit] = float(step)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        objectives, _ = scorer.terms(relaxed.X())
    met_end = (objectives <= MET + 1e-12).all(-1).reshape(B, -1).any(-1)
    finite = objectives.isfinite().all(-1) & relaxed.u.isfinite().all(-1)
    return _scores(first_met, met_end, steps, seconds, finite)


def lbfgs(
    space: SearchSpace, model: object, targets: Tensor, tolerance: float, steps: int, starts: int, seed: int
) -> dict[str, float]:
    """`torch.optim.LBFGS` per target, `steps` evaluations at most (see the module docstring)."""
    B = targets.shape[0]
    X0 = space.sample(starts, seed)
    first_met = torch.full((B,), float(steps))
    met_end = torch.zeros(B, dtype=torch.bool)
    finite = torch.ones(B * starts, dtype=torch.bool)
    start = time.perf_counter()
    for b in range(B):
        scorer = _scorer(model, targets[b : b + 1], tolerance, starts)
        u = X0.clone().requires_grad_(True)
        opt = torch.optim.LBFGS(
            [u], lr=1.0, max_iter=steps, max_eval=steps, tolerance_grad=0.0, tolerance_change=0.0,
            history_size=10, line_search_fn="strong_wolfe",
        )  # fmt: skip
        evaluations = [0]

        def closure(u: Tensor = u, scorer: Scorer = scorer, b: int = b, evaluations: list[int] = evaluations) -> Tensor:
            u.grad = None
            objectives, _ = scorer.terms(u.clamp(0.0, 1.0))
            if (objectives.detach() <= MET + 1e-12).all(-1).any() and first_met[b] == steps:
                first_met[b] = float(evaluations[0])
            evaluations[0] += 1
            loss = objectives.sum()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            objectives, _ = scorer.terms(u.clamp(0.0, 1.0))
        met_end[b] = bool((objectives <= MET + 1e-12).all(-1).any())
        finite[b * starts : (b + 1) * starts] = objectives.isfinite().all(-1) & u.isfinite().all(-1)
    seconds = time.perf_counter() - start
    return _scores(first_met, met_end, steps, seconds, finite)


def _scores(first_met: Tensor, met_end: Tensor, steps: int, seconds: float, finite: Tensor) -> dict[str, float]:
    median_steps = float(first_met.median())
    return {
        "targets met": float((met_end | (first_met < steps)).double().mean()),
        "steps": median_steps,
        "seconds": median_steps * seconds / steps,
        "finite": float(finite.double().mean()),
        "run seconds": seconds,
    }


def run_learned_optimizer_benchmark(
    problems: Sequence[str] = PROBLEMS,
    seeds: Sequence[int] = (0, 1, 2),
    targets: int = 8,
    starts: int = 16,
    steps: int = 200,
    settings: MetaTraining | None = None,
    progress: Progress = None,
    methods: Sequence[str] = METHODS,
) -> pd.DataFrame:
    """One row per problem, seed and method (see the module docstring)."""
    rows = []
    for name in problems:
        for seed in seeds:
            torch.manual_seed(seed)
            space, model, make_targets, tol = _problem(name, 200, seed)
            held_out = make_targets(targets, 1000 + seed)
            meta_seconds = float("nan")
            for method in methods:
                if progress is not None:
                    progress(f"{name}, seed {seed}: {method}")
                if method == "lbfgs":
                    scores = lbfgs(space, model, held_out, tol, steps, starts, seed)
                elif method == "learned":
                    began = time.perf_counter()
                    family = lambda count, s, make_targets=make_targets: make_targets(count, 5000 + s)  # noqa: E731
                    learned = meta_train(model, space, family, tol, settings, seed=seed)  # type: ignore[arg-type]
                    meta_seconds = time.perf_counter() - began
                    scores = descend(space, model, held_out, tol, learned, steps, starts, seed)
                else:
                    scores = descend(space, model, held_out, tol, method, steps, starts, seed)
                rows.append({"problem": name, "seed": seed, "method": method} | scores)
            for row in rows[-len(methods) :]:
                row["meta seconds"] = meta_seconds if row["method"] == "learned" else float("nan")
    return pd.DataFrame(rows)


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Means over seeds per problem and method."""
    return results.groupby(["problem", "method"], sort=False).mean(numeric_only=True).drop(columns="seed").reset_index()


def format_table(summary: pd.DataFrame) -> str:
    """The summary as text, one line per problem and method."""
    shown = summary.copy()
    for col in ("targets met", "finite"):
        shown[col] = shown[col].map(lambda v: f"{100 * v:.0f} %")
    shown["steps"] = shown["steps"].map(lambda v: f"{v:.0f}")
    for col in ("seconds", "run seconds", "meta seconds"):
        shown[col] = shown[col].map(lambda v: "-" if v != v else f"{v:.2f}")
    return shown.to_string(index=False)


def toolkit_row(seed: int = 0) -> dict:
    """One line for the toolkit summary: the learned optimizer against Adam on the robot arm.

    A smaller run than the benchmark's (6 held-out targets x 8 starts, 100 steps, 60 meta-steps), so
    that it takes under a minute.
    """
    began = time.perf_counter()
    results = run_learned_optimizer_benchmark(
        ["robot_arm"], [seed], 6, 8, 100, MetaTraining(iterations=60), methods=("learned", "adam")
    )
    by = results.set_index("method")

    def figure(method: str) -> str:
        r = by.loc[method]
        return f"{r['steps']:.0f} steps, {r['seconds']:.2f} s to 1 cm, {100 * r['targets met']:.0f} % of targets"

    return {
        "item": "1 learned optimizer",
        "plain": "Adam",
        "plain_figure": figure("adam"),
        "valley_figure": figure("learned") + f" (meta-training {by.loc['learned', 'meta seconds']:.0f} s)",
        "seconds": time.perf_counter() - began,
    }
