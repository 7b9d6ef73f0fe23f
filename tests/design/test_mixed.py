"""Tests for the batched mixed-space optimizer: the projection, the combinations, the optimum it finds."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from botorch.acquisition import AcquisitionFunction, qLogNoisyExpectedImprovement
from botorch.generation import gen
from botorch.optim import optimize_acqf_mixed_alternating
from scipy.optimize import OptimizeResult

from design import CategoricalParameter, ContinuousParameter, IntegerParameter, SearchSpace
from design.mixed import HALT_AFTER, HALT_BEHIND, PolytopeProjection, _HaltBehind, discrete_combinations, optimize_mixed
from surrogates import fit_outcome_models


def mixed_space(constraint: str = "a + b <= 8") -> SearchSpace:
    return SearchSpace(
        [
            ContinuousParameter(name="a", bounds=(0, 10)),
            ContinuousParameter(name="b", bounds=(0, 10)),
            IntegerParameter(name="k", bounds=(1, 4)),
            CategoricalParameter(name="c", values=("u", "v")),
        ],
        [constraint],
    )


class Bowl(AcquisitionFunction):
    """`-(a - 0.6)^2 - (b - 0.5)^2 + 0.1 k + 0.2 [c = v]` in encoded units: best at a = 6, b = 5, k = 4, c = v."""

    def __init__(self) -> None:
        super().__init__(model=None)  # type: ignore[arg-type]
        self.set_X_pending(None)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        value = -((X[..., 0] - 0.6) ** 2) - (X[..., 1] - 0.5) ** 2 + 0.1 * X[..., 2] + 0.2 * X[..., 3]
        return value.sum(dim=-1)


class NarrowPeak(Bowl):
    """A broad bump (height 1) at a = 2, b = 2 and a narrow peak (height 2, width 0.01) at a = 7, b = 0.5, k = 3, c = u.

    `X_baseline` holds a measured design 0.01 from the peak, as qLogNEI's pruned baseline holds its incumbents.
    """

    peak = torch.tensor([0.7, 0.05, 2 / 3, 0.0], dtype=torch.double)

    def __init__(self, baseline: bool) -> None:
        super().__init__()
        if baseline:
            self.X_baseline = (self.peak + torch.tensor([0.01, 0.0, 0.0, 0.0], dtype=torch.double)).unsqueeze(0)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        broad = (-((X[..., :2] - 0.2) ** 2).sum(-1) / (2 * 0.3**2)).exp()
        narrow = (-((X - self.peak) ** 2).sum(-1) / (2 * 0.01**2)).exp()
        return (broad + 2 * narrow).sum(dim=-1)


def test_projection_is_the_nearest_feasible_point():
    space = mixed_space()
    project = PolytopeProjection(space, free=[0, 1])
    X = torch.tensor([[0.9, 0.9, 0.0, 1.0], [1.5, -0.2, 1.0, 0.0], [0.1, 0.2, 0.5, 1.0]], dtype=torch.double)
    P = project(X)
    # onto a' + b' <= 0.8 (a + b <= 8 in units of 10); the second point ends on a corner of the box and the constraint
    expected = torch.tensor([[0.4, 0.4], [0.8, 0.0], [0.1, 0.2]], dtype=torch.double)
    assert torch.allclose(P[:, :2], expected, atol=1e-6)
    assert torch.equal(P[:, 2:], X[:, 2:])  # the held columns do not move


def test_projection_passes_gradients_along_the_active_face():
    project = PolytopeProjection(mixed_space(), free=[0, 1])
    X = torch.tensor([[0.7, 0.5, 0.0, 0.0]], dtype=torch.double, requires_grad=True)
    project(X)[0, 0].backward()
    # on the face a' + b' = 0.8 a step in a' moves the projection by half of it, and b' pulls it back as much
    assert torch.allclose(X.grad[0, :2], torch.tensor([0.5, -0.5], dtype=torch.double), atol=1e-3)


def test_projection_leaves_feasible_rows_and_their_gradients_alone():
    project = PolytopeProjection(mixed_space(), free=[0, 1])
    X = torch.tensor([[0.2, 0.3, 0.0, 1.0], [0.7, 0.5, 0.0, 0.0]], dtype=torch.double, requires_grad=True)
    assert project.contains(X).tolist() == [True, False]
    P = project(X)
    P[:, 0].sum().backward()
    assert torch.equal(P[0], X[0].detach())  # the feasible row is not moved, not even by rounding
    assert torch.allclose(P[1, :2].sum(), torch.tensor(0.8, dtype=torch.double), atol=1e-6)  # the other is projected
    assert torch.allclose(X.grad[0], torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.double))
    assert torch.allclose(X.grad[1, :2], torch.tensor([0.5, -0.5], dtype=torch.double), atol=1e-3)


def test_shrink_into_makes_every_row_exactly_feasible():
    space = mixed_space()
    project = PolytopeProjection(space, free=[0, 1])
    anchors = torch.tensor([[0.1, 0.1, 0.0, 0.0], [0.3, 0.2, 1.0, 1.0]], dtype=torch.double)
    X = torch.tensor([[0.5, 0.3 + 1e-7, 0.0, 0.0], [0.9, 0.9, 1.0, 1.0]], dtype=torch.double)
    shrunk = project.shrink_into(X, anchors)
    assert space.feasible(space.decode(shrunk)).all()
    assert torch.allclose(shrunk[0], X[0], atol=1e-6)  # a tiny violation costs a tiny step


def test_discrete_combinations_lists_every_level_pair_and_gives_up_past_the_cap():
    columns, combos = discrete_combinations(mixed_space())
    assert columns == [2, 3]
    assert combos.shape == (8, 2)  # 4 integer levels x 2 categories
    assert len({tuple(row.tolist()) for row in combos}) == 8
    many = SearchSpace([IntegerParameter(name=f"k{i}", bounds=(0, 9)) for i in range(3)])
    assert discrete_combinations(many) is None
    assert optimize_mixed(Bowl(), many, 1) is None  # the caller falls back to botorch's alternating optimizer


def test_optimize_mixed_finds_the_constrained_optimum_on_exact_levels():
    space = mixed_space()
    X = optimize_mixed(Bowl(), space, n=1, seed=0)
    design = space.decode(X).iloc[0]
    # the bowl's centre (6, 5) breaks a + b <= 8: the nearest point of the constraint is (4.5, 3.5)
    assert design["a"] == pytest.approx(4.5, abs=1e-3)
    assert design["b"] == pytest.approx(3.5, abs=1e-3)
    assert (design["k"], design["c"]) == (4, "v")
    assert space.feasible(space.decode(X)).all()


def test_optimize_mixed_finds_the_same_optimum_where_botorchs_fast_path_does_not_run(monkeypatch):
    # botorch skips its batched L-BFGS-B for SciPy versions it has not tested (1.18 with botorch 0.18.1),
    # and its other path refuses a level per start: the starts then run by combination of levels
    monkeypatch.setattr(gen, "get_reasons_against_fast_path", lambda **_: ["SciPy version not tested"])
    space = mixed_space()
    design = space.decode(optimize_mixed(Bowl(), space, n=1, seed=0)).iloc[0]
    assert design["a"] == pytest.approx(4.5, abs=1e-3) and design["b"] == pytest.approx(3.5, abs=1e-3)
    assert (design["k"], design["c"]) == (4, "v")


def test_optimize_mixed_honours_a_constraint_on_an_integer_parameter():
    space = mixed_space("a + 2 * k <= 10")  # k = 4 leaves a <= 2; k = 2 leaves a = 6 free
    X = optimize_mixed(Bowl(), space, n=1, seed=0)
    design = space.decode(X).iloc[0]
    assert space.feasible(space.decode(X)).all()
    # value of k = 2 at a = 6: 0.1 * 1/3; of k = 4 at a = 2: 0.1 - 0.16; of k = 3 at a = 4: 0.2/3 - 0.04
    assert (design["k"], design["a"]) == (2, pytest.approx(6.0, abs=1e-3))


def test_optimize_mixed_matches_botorchs_alternating_optimizer_on_a_fitted_gp():
    space = mixed_space()
    designs_df = pd.DataFrame(
        {"a": [1, 7, 3, 5, 2, 4, 0.5, 6, 3.5, 2.5], "b": [1, 1, 4, 2, 5, 3, 6, 0.5, 1.5, 2.5]}
        | {"k": [1, 2, 3, 4, 1, 2, 3, 4, 2, 3], "c": ["u", "v"] * 5}
    )
    X = space.encode(designs_df)
    y = -((X[:, :1] - 0.5) ** 2) - (X[:, 1:2] - 0.3) ** 2 + 0.1 * X[:, 2:3] + 0.2 * X[:, 3:4]
    model = fit_outcome_models(X, y, cat_dims=[3])
    acqf = qLogNoisyExpectedImprovement(model, X_baseline=X)
    ours = optimize_mixed(acqf, space, n=1, seed=0, num_restarts=4, raw_samples=64)
    inequalities, _ = space.botorch_constraints()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        theirs, _ = optimize_acqf_mixed_alternating(
            acqf, space.bounds, q=1, num_restarts=4, raw_samples=64, discrete_dims=space.discrete_dims,
            cat_dims=space.cat_dims, inequality_constraints=inequalities,
        )  # fmt: skip
    with torch.no_grad():
        assert acqf(ours.unsqueeze(0)) >= acqf(theirs.unsqueeze(0)) - 1e-3
    assert space.feasible(space.decode(ours)).all()


def test_optimize_mixed_starts_from_the_incumbents_the_acquisition_holds():
    # a best design in a thin region that random starts miss: from the incumbent beside it the pick finds it
    space = mixed_space("a + b <= 12")
    with_incumbent = space.decode(optimize_mixed(NarrowPeak(baseline=True), space, n=1, seed=0)).iloc[0]
    assert (with_incumbent["k"], with_incumbent["c"]) == (3, "u")
    assert with_incumbent["a"] == pytest.approx(7.0, abs=1e-2) and with_incumbent["b"] == pytest.approx(0.5, abs=1e-2)
    without = space.decode(optimize_mixed(NarrowPeak(baseline=False), space, n=1, seed=0)).iloc[0]
    assert without["a"] == pytest.approx(2.0, abs=1e-2)  # the broad bump: the raw starts never saw the peak


def test_a_start_far_behind_the_best_is_stopped_only_after_the_warm_up():
    halt = _HaltBehind(starts=2)  # the warm-up: HALT_AFTER iterations per start, counted over all starts
    behind = OptimizeResult(x=None, fun=-5.0 + HALT_BEHIND + 0.5)  # values are negated acquisitions
    halt(OptimizeResult(x=None, fun=-5.0))
    for _ in range(2 * HALT_AFTER - 1):  # within the warm-up every start goes on, however far behind
        halt(behind)
    halt(OptimizeResult(x=None, fun=-5.0 + HALT_BEHIND - 0.1))  # after it, a start close to the best goes on
    with pytest.raises(StopIteration):
        halt(behind)
