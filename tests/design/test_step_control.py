"""Step-size control of the inverse-design descent: curvature-safe steps and the PI controller."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch.autograd.function import once_differentiable

from design import InputError
from design.inverse import InverseOptions, inverse_design
from design.inverse.descent import Descent, StepControl
from design.inverse.relax import RelaxedDesigns
from design.parameters import ContinuousParameter, IntegerParameter
from design.space import SearchSpace

torch.set_num_threads(1)
H = torch.tensor([1.0, 10.0, 100.0, 1000.0], dtype=torch.double)  # an ill-conditioned quadratic: kappa 1000
CENTER = torch.full((4,), 0.5, dtype=torch.double)


def unit_space(d: int = 4) -> SearchSpace:
    return SearchSpace([ContinuousParameter(name=f"x{i}", bounds=(0, 1)) for i in range(d)])


def quadratic(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return 0.5 * (H * (X - CENTER) ** 2).sum(-1, keepdim=True), X.new_zeros(X.shape[0], 0)


def descend(control: StepControl | str, lr: float, steps: int = 100) -> tuple[Descent, torch.Tensor]:
    relaxed = RelaxedDesigns(unit_space(), unit_space().sample(6, seed=0))
    run = Descent(relaxed, steps, lr, 1, (1.0, 1.0), 0, control=control)
    return run, torch.stack([run.step(s, quadratic) for s in range(steps)])


def test_power_iteration_recovers_the_largest_eigenvalue_of_a_known_quadratic():
    run, _ = descend(StepControl("curvature", iterations=20), lr=100.0, steps=1)  # lr: no cap on the move
    assert run.lambda_max == pytest.approx(torch.full((6,), 1000.0, dtype=torch.double), rel=1e-3)
    assert run.eta == pytest.approx(torch.full((6,), 1e-3, dtype=torch.double), rel=1e-3)  # 0.5 * 2 / 1000


def test_curvature_safe_step_converges_without_oscillation_where_a_too_large_fixed_step_diverges():
    _, fixed = descend("gd", lr=0.0025)  # above 2 / lambda_max = 0.002
    assert (fixed[-1] > fixed[0]).all()  # blown up (only the box bounds it)
    run, safe = descend("curvature", lr=0.05, steps=150)
    assert (safe[1:] <= safe[:-1] + 1e-12).all()  # monotone: no overshoot
    assert (safe[-1] < 0.05 * safe[0]).all()
    assert (run.eta < 2.0 / 1000.0).all()


def test_pi_controller_keeps_the_step_within_its_bounds():
    control = StepControl("pi", base="gd", gains=(2.0, 2.0), bounds=(0.1, 3.0))
    run, losses = descend(control, lr=0.05)
    first = run._first
    assert ((run.eta >= 0.1 * first - 1e-15) & (run.eta <= 3.0 * first + 1e-15)).all()
    assert losses[-1].isfinite().all()
    run, losses = descend(StepControl("pi", base="adam"), lr=0.05, steps=200)
    assert (run.eta <= 0.05 * 1e2).all() and (losses[-1] < 1e-4).all()


def test_inverse_design_returns_valid_designs_with_every_step_control():
    space = SearchSpace(
        [ContinuousParameter(name="a", bounds=(0, 10)), IntegerParameter(name="k", bounds=(0, 4))], ["a + k <= 9"]
    )

    class Bowl:
        num_outputs = 1

        def posterior(self, X, observation_noise=False):
            Y = ((X[..., :1] * 10 - 3) ** 2 + (X[..., 1:2] * 4 - 2.2) ** 2) / 10
            return SimpleNamespace(mean=Y, variance=torch.zeros_like(Y))

    for control in ("adam", "curvature", "pi", StepControl("pi", base="gd"), "gd"):
        options = InverseOptions(steps=40, cycles=2, step_control=control, lr=0.05 if control != "gd" else 0.002)
        df = inverse_design(Bowl(), space, ["y=min"], n=3, starts=32, outcomes=["y"], options=options)
        assert 1 <= len(df) <= 3 and df["a"].between(0, 10).all() and (df["a"] + df["k"] <= 9 + 1e-9).all()
        assert set(df["k"]) <= set(range(5))
        assert df.iloc[0]["a"] == pytest.approx(3.0, abs=0.3), control
    with pytest.raises(InputError, match="step_control must be one of"):
        inverse_design(
            Bowl(), space, ["y=min"], n=1, starts=4, outcomes=["y"], options=InverseOptions(step_control="x")
        )


def test_curvature_falls_back_to_differences_without_a_second_derivative():
    class FirstOrderOnly(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # noqa: ANN001, ANN205
            ctx.save_for_backward(x)
            return (H * (x - CENTER) ** 2).sum(-1, keepdim=True) / 2

        @staticmethod
        @once_differentiable  # its gradient cannot be differentiated again
        def backward(ctx, g):  # noqa: ANN001, ANN205
            (x,) = ctx.saved_tensors
            return g * H * (x - CENTER)

    relaxed = RelaxedDesigns(unit_space(), unit_space().sample(3, seed=1))
    run = Descent(relaxed, 1, 0.05, 1, (1.0, 1.0), 0, control=StepControl("curvature", iterations=20))
    run.step(0, lambda X: (FirstOrderOnly.apply(X), X.new_zeros(X.shape[0], 0)))
    assert run.lambda_max == pytest.approx(torch.full((3,), 1000.0, dtype=torch.double), rel=1e-2)

    def no_second(x: torch.Tensor) -> torch.Tensor:  # raises on double backward, as torch.cdist does
        return torch.cdist(x[:, None, :], CENTER[None, None, :])[:, 0, :] ** 2 * 500.0

    relaxed = RelaxedDesigns(unit_space(), unit_space().sample(3, seed=1))
    run = Descent(relaxed, 1, 0.05, 1, (1.0, 1.0), 0, control=StepControl("curvature", iterations=20))
    run.step(0, lambda X: (no_second(X), X.new_zeros(X.shape[0], 0)))
    assert run.lambda_max == pytest.approx(torch.full((3,), 1000.0, dtype=torch.double), rel=1e-2)


def test_step_control_benchmark_runs_every_method_on_a_tiny_problem():
    from benchmarks.step_control import METHODS, format_table, run_step_control_benchmark, summarize

    results = run_step_control_benchmark(["rosenbrock"], (0,), targets=2, starts=4, steps=20)
    assert list(results["method"]) == list(METHODS)
    assert results["targets met"].between(0, 1).all() and results["final loss"].notna().all()
    assert "curvature" in format_table(summarize(results))
