"""Step-size control in inverse design: Adam's defaults, a tuned fixed step, curvature-safe steps, PI.

Inverse design (`run_step_control_benchmark`): each method runs `design.inverse.descent.Descent`
(the descent `inverse_design` uses, one cycle, no halving, `kappa = 0`) from the same random
starts towards held-out targets of two problems:

- `robot_arm`: the planar three-link arm (`benchmarks.robot_arm`), a GP per outcome fitted to
  `n_train` simulated rows; targets are the end points of random held-out joint angles,
  tolerance 1 cm.
- `rosenbrock`: an analytic, ill-conditioned map of the unit square to `(10 (x2 - x1^2), 1 - x1)`
  on `[-2, 2]^2` (the residuals of Rosenbrock's banana valley: `|y|^2` is Rosenbrock's function),
  targets the images of random held-out points, tolerance 0.01.

Methods: `adam` (Valley's default: Adam, peak step 0.05 with the cosine), `gd tuned` (projected
gradient descent with the fixed step of a grid that did best on separate tuning targets; its tuning
seconds are not counted), `curvature` (`StepControl("curvature")`), `pi adam` and `pi gd`
(`StepControl("pi")` on Adam and on plain gradient steps).

Per method, means over seeds of: `targets met` (share of targets for which some start's prediction
met every tolerance by the last step), `steps` (median over targets of the first step at which
some start met it; the step budget where none did), `seconds` (to that step, from the run's
seconds per step), `starts met` (share of starts meeting the tolerance at the end), `diverged`
(share of starts whose final loss is above their first, or not finite) and `final loss` (median
over starts of the pseudo-Huber target loss). Every number is measured in the run that prints it.

Training has its own module, `benchmarks.training_step_control`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from benchmarks import robot_arm
from design.inverse.descent import Descent, StepControl
from design.inverse.goals import Goal
from design.inverse.relax import RelaxedDesigns
from design.inverse.score import Scorer
from design.parameters import ContinuousParameter
from design.space import SearchSpace
from surrogates import fit_outcome_models

Progress = Callable[[str], None] | None
PROBLEMS = ("robot_arm", "rosenbrock")
METHODS = ("adam", "gd tuned", "curvature", "pi adam", "pi gd")
GRID = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)  # fixed steps tried for `gd tuned`
MET = math.sqrt(2.0) - 1.0  # a target's pseudo-Huber term at one tolerance


class _Analytic:
    """A noise-free surrogate: `posterior(X)` of an exact map."""

    def __init__(self, f: Callable[[Tensor], Tensor], m: int) -> None:
        self.f, self.num_outputs = f, m

    def posterior(self, X: Tensor, observation_noise: bool = False):  # noqa: ANN201
        from types import SimpleNamespace

        Y = self.f(X)
        return SimpleNamespace(mean=Y, variance=torch.zeros_like(Y))


def rosenbrock_map(X: Tensor) -> Tensor:
    """`(10 (x2 - x1^2), 1 - x1)` at `x = 4 u - 2` of unit-square designs `u` (`... x 2` -> `... x 2`)."""
    x = 4.0 * X - 2.0
    return torch.stack([10.0 * (x[..., 1] - x[..., 0] ** 2), 1.0 - x[..., 0]], dim=-1)


def _problem(name: str, n_train: int, seed: int) -> tuple[SearchSpace, object, Callable[[int, int], Tensor], float]:
    """`(space, surrogate, targets(count, seed) -> count x m, tolerance)`."""
    if name == "robot_arm":
        cfg = robot_arm.config()
        space = SearchSpace([ContinuousParameter(name=p["name"], bounds=tuple(p["bounds"])) for p in cfg["parameters"]])
        df = robot_arm.generate_dataset(n_train, seed)
        X = space.encode(df[[p["name"] for p in cfg["parameters"]]])
        model = fit_outcome_models(X, torch.tensor(df[["end_x", "end_y"]].to_numpy(), dtype=torch.double))

        def arm_targets(count: int, s: int) -> Tensor:
            return torch.tensor(robot_arm.generate_dataset(count, s)[["end_x", "end_y"]].to_numpy(), dtype=torch.double)

        return space, model, arm_targets, 0.01
    space = SearchSpace([ContinuousParameter(name=f"u{i}", bounds=(0.0, 1.0)) for i in (1, 2)])

    def banana_targets(count: int, s: int) -> Tensor:
        U = torch.tensor(np.random.default_rng(s).uniform(0.1, 0.9, (count, 2)), dtype=torch.double)
        return rosenbrock_map(U)

    return space, _Analytic(rosenbrock_map, 2), banana_targets, 0.01


def descend(
    space: SearchSpace,
    model: object,
    targets: Tensor,
    tolerance: float,
    control: StepControl | str,
    lr: float,
    steps: int,
    starts: int,
    seed: int,
) -> dict[str, float]:
    """One descent of `starts` starts per target; the scores of the module docstring (one run)."""
    B = targets.shape[0]
    X0 = space.sample(starts, seed)
    relaxed = RelaxedDesigns(space, X0.repeat(B, 1))
    row = torch.arange(B).repeat_interleave(X0.shape[0])
    goals = [
        Goal(f"y{j}", "target", targets[row, j], torch.full((len(row),), tolerance, dtype=torch.double))
        for j in range(targets.shape[1])
    ]
    scale = torch.ones(targets.shape[1], dtype=torch.double)
    scorer = Scorer(model, goals, [g.name for g in goals], scale, kappa=0.0)  # type: ignore[arg-type]
    run = Descent(relaxed, steps, lr, 1, (1.0, 1.0), 0, control=control)
    first_met = torch.full((B,), float(steps))
    losses = []
    start = time.perf_counter()
    for step in range(steps):
        met_now: list[Tensor] = []

        def terms(X: Tensor, met_now: list[Tensor] = met_now) -> tuple[Tensor, Tensor]:
            objectives, violations = scorer.terms(X)
            if not met_now:  # the step's own forward pass (a curvature refresh makes more)
                met_now.append((objectives.detach() <= MET + 1e-12).all(-1))
            return objectives, violations

        losses.append(run.step(step, terms))
        hit = met_now[0].reshape(B, -1).any(-1) & (first_met == steps)
        first_met[hit] = float(step)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        objectives, _ = scorer.terms(relaxed.X())
    final, first = objectives.sum(-1), losses[0]
    met_end = (objectives <= MET + 1e-12).all(-1)
    reached = met_end.reshape(B, -1).any(-1) | (first_met < steps)
    median_steps = float(first_met.median())
    return {
        "targets met": float(reached.double().mean()),
        "steps": median_steps,
        "seconds": median_steps * seconds / steps,
        "starts met": float(met_end.double().mean()),
        "diverged": float(((final > first) | ~final.isfinite()).double().mean()),
        "final loss": float(final.median()),
        "run seconds": seconds,
    }


def run_step_control_benchmark(
    problems: Sequence[str] = PROBLEMS,
    seeds: Sequence[int] = (0, 1, 2),
    targets: int = 8,
    starts: int = 16,
    steps: int = 300,
    n_train: int = 200,
    progress: Progress = None,
) -> pd.DataFrame:
    """One row per problem, seed and method (see the module docstring)."""
    rows = []
    for name in problems:
        for seed in seeds:
            torch.manual_seed(seed)
            space, model, make_targets, tol = _problem(name, n_train, seed)
            held_out, tuning = make_targets(targets, 1000 + seed), make_targets(max(2, targets // 2), 2000 + seed)

            def run(control: StepControl | str, lr: float, goal: Tensor, space=space, model=model, tol=tol, seed=seed):  # noqa: ANN001, ANN202
                return descend(space, model, goal, tol, control, lr, steps, starts, seed)

            trials = {lr: run("gd", lr, tuning) for lr in GRID}  # on the tuning targets, not the held-out ones
            tuned = min(GRID, key=lambda lr: (trials[lr]["steps"], trials[lr]["final loss"]))
            plans: dict[str, tuple[StepControl | str, float]] = {
                "adam": ("adam", 0.05),
                "gd tuned": ("gd", tuned),
                "curvature": ("curvature", 0.05),
                "pi adam": (StepControl("pi", base="adam"), 0.05),
                "pi gd": (StepControl("pi", base="gd"), 0.05),
            }
            for method, (control, lr) in plans.items():
                if progress is not None:
                    progress(f"{name}, seed {seed}: {method}")
                scores = run(control, lr, held_out)
                rows.append({"problem": name, "seed": seed, "method": method, "lr": lr} | scores)
    return pd.DataFrame(rows)


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Means over seeds per problem and method (`lr`: the fixed step `gd tuned` chose, per seed)."""
    lrs = results.groupby(["problem", "method"], sort=False)["lr"].apply(lambda s: "/".join(f"{v:.0e}" for v in s))
    means = results.groupby(["problem", "method"], sort=False).mean(numeric_only=True).drop(columns=["seed", "lr"])
    return means.assign(lr=lrs).reset_index()


def format_table(summary: pd.DataFrame) -> str:
    """The summary as text, one line per problem and method."""
    shown = summary.copy()
    for col in ("targets met", "starts met", "diverged"):
        shown[col] = shown[col].map(lambda v: f"{100 * v:.0f} %")
    shown["steps"] = shown["steps"].map(lambda v: f"{v:.0f}")
    for col in ("seconds", "run seconds"):
        shown[col] = shown[col].map(lambda v: f"{v:.2f}")
    shown["final loss"] = shown["final loss"].map(lambda v: f"{v:.2e}")
    return shown.to_string(index=False)
