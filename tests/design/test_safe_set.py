"""Tests for the SafeOpt-style safe set: reach, confidence, maximizers and expanders on 1-D toys."""

from __future__ import annotations

import pytest
import torch

from design import Objective, SafetyLimit, probability_safe
from design.safe_set import REACH, REACH_LENGTHSCALES, reach_per_input, safe_set
from surrogates import fit_outcome_models

OUTCOMES = ["y", "s"]
CONFIDENCE = 0.95
GRID = torch.linspace(0, 1, 101, dtype=torch.double).unsqueeze(-1)


def fitted(s_of_x, limit: SafetyLimit):
    """GPs of `y = -(x - 0.8)^2` and `s = s_of_x(x)` on six points of [0.05, 0.3], and the measured-safe rows."""
    torch.manual_seed(0)
    X = torch.linspace(0.05, 0.3, 6, dtype=torch.double).unsqueeze(-1)
    y, s = -((X[:, 0] - 0.8) ** 2), s_of_x(X[:, 0])
    model = fit_outcome_models(X, torch.stack([y, s], dim=-1))
    X_safe = X[torch.tensor([limit.holds(float(v)) for v in s])]
    return model, X_safe


@pytest.fixture(scope="module")
def linear():
    """`s = x`, safe while `s <= 0.6`: the GP extrapolates the trend, so it is confident far beyond the data."""
    limit = SafetyLimit(name="s", upper=0.6, confidence=CONFIDENCE)
    model, X_safe = fitted(lambda x: x, limit)
    sets = safe_set(model, GRID, Objective(name="y"), [limit], OUTCOMES, CONFIDENCE, X_safe, {})
    return model, X_safe, limit, sets


@pytest.fixture(scope="module")
def wavy():
    """`s = sin(6 x)`, safe while `s <= 0.9`: unsafe on [0.19, 0.33] right next to the data, uncertain beyond."""
    limit = SafetyLimit(name="s", upper=0.9, confidence=CONFIDENCE)
    model, X_safe = fitted(lambda x: torch.sin(6 * x), limit)
    sets = safe_set(model, GRID, Objective(name="y"), [limit], OUTCOMES, CONFIDENCE, X_safe, {})
    return model, X_safe, limit, sets


def distance_to(X: torch.Tensor, X_safe: torch.Tensor) -> torch.Tensor:
    return torch.cdist(X, X_safe).min(dim=1).values


def test_reach_is_the_smaller_of_the_cap_and_half_the_safety_lengthscale(linear, wavy):
    for model, *_ in (linear, wavy):
        lengthscale = float(model.models[1].covar_module.lengthscale)
        assert float(reach_per_input(model, [1], 1)[0]) == pytest.approx(min(REACH, REACH_LENGTHSCALES * lengthscale))
    model = linear[0]
    assert float(reach_per_input(model, [1], 1, {0: [0.0, 1 / 3, 2 / 3, 1.0]})[0]) > 1 / 3  # one integer step


def test_safe_set_never_reaches_farther_than_reach_from_a_measured_safe_design(linear):
    model, X_safe, limit, sets = linear
    far = distance_to(GRID, X_safe) > float(reach_per_input(model, [1], 1)[0])
    assert sets.safe.any()
    assert not (sets.safe & far).any()
    confident = probability_safe(model, GRID, [limit], OUTCOMES) >= CONFIDENCE
    assert (confident & far).any(), "the toy must have confident candidates out of reach, or the test proves nothing"
    assert sets.safe[~far & confident].all()  # within reach and confident: safe


def test_candidates_below_the_confidence_are_not_in_the_safe_set(wavy):
    model, X_safe, limit, sets = wavy
    p = probability_safe(model, GRID, [limit], OUTCOMES)
    near = distance_to(GRID, X_safe) <= float(reach_per_input(model, [1], 1)[0])
    assert (near & (p < CONFIDENCE)).any(), "the toy must have doubtful candidates within reach"
    assert not (sets.safe & (p < CONFIDENCE)).any()
    assert sets.safe.any()
    truly_unsafe = torch.sin(6 * GRID[:, 0]) > 0.9
    assert not (sets.safe & truly_unsafe).any()


@pytest.mark.parametrize("toy", ["linear", "wavy"])
def test_maximizers_are_a_non_empty_subset_of_the_safe_set(toy, request):
    model, _, _, sets = request.getfixturevalue(toy)
    assert sets.maximizers.any()
    assert not (sets.maximizers & ~sets.safe).any()
    with torch.no_grad():
        posterior = model.models[0].posterior(GRID)
    mean, sd = posterior.mean.squeeze(-1), posterior.variance.sqrt().squeeze(-1)
    lower = torch.where(sets.safe, mean - 2 * sd, torch.tensor(-torch.inf, dtype=mean.dtype))
    assert sets.maximizers[lower.argmax()]  # the safe design with the best lower bound can still be optimal


def test_maximizers_lean_toward_the_objective_optimum(linear):
    _, _, _, sets = linear
    x = GRID[:, 0]
    assert x[sets.maximizers].min() > x[sets.safe].min()  # y peaks at 0.8: the smallest safe x cannot win


def test_expanders_lie_in_the_safe_set_and_exist_where_the_model_is_uncertain_beyond_the_data(linear):
    _, _, _, sets = linear
    expanders = sets.expansion > 0
    assert sets.expansion.shape == (GRID.shape[0],)
    assert (sets.expansion >= 0).all()
    assert expanders.any()
    assert not (expanders & ~sets.safe).any()
    assert GRID[expanders, 0].min() > 0.3  # at the edge of the measured region, not inside it


def test_expanders_are_in_the_safe_set_on_the_wavy_toy(wavy):
    _, _, _, sets = wavy
    assert not ((sets.expansion > 0) & ~sets.safe).any()


def test_without_a_measured_safe_design_the_safe_set_is_empty(linear):
    model, _, limit, _ = linear
    empty = torch.empty(0, 1, dtype=torch.double)
    sets = safe_set(model, GRID, Objective(name="y"), [limit], OUTCOMES, CONFIDENCE, empty, {})
    assert not sets.safe.any()
    assert not sets.maximizers.any()
    assert (sets.expansion == 0).all()


def test_with_several_objectives_every_safe_design_is_a_maximizer(linear):
    model, X_safe, limit, _ = linear
    sets = safe_set(model, GRID, None, [limit], OUTCOMES, CONFIDENCE, X_safe, {})
    assert sets.safe.any()
    assert torch.equal(sets.maximizers, sets.safe)


def test_a_category_without_a_measured_safe_design_is_outside_the_safe_set():
    torch.manual_seed(0)
    x = torch.linspace(0.05, 0.45, 5, dtype=torch.double)
    X = torch.cat([torch.stack([x, torch.full_like(x, float(k))], -1) for k in (0, 1)])
    s = 0.2 * X[:, 0] + 0.1 * X[:, 1]  # both categories are safe: only the reach rule can tell them apart
    model = fit_outcome_models(X, torch.stack([X[:, 0], s], dim=-1), cat_dims=[1])
    limit = SafetyLimit(name="s", upper=0.5, confidence=CONFIDENCE)
    X_safe = X[X[:, 1] == 0]  # as if category 1 had never been measured safe
    grid = torch.cat([torch.stack([GRID[:, 0], torch.full((101,), float(k), dtype=torch.double)], -1) for k in (0, 1)])
    sets = safe_set(model, grid, Objective(name="y"), [limit], OUTCOMES, CONFIDENCE, X_safe, {1: [0.0, 1.0]})
    in_one = grid[:, 1] == 1
    assert (probability_safe(model, grid, [limit], OUTCOMES)[in_one] >= CONFIDENCE).any()
    assert sets.safe[~in_one].any()
    assert not sets.safe[in_one].any()


def test_small_steps_stay_within_step_reaches_of_a_safe_design_and_keep_categories():
    from design.safe_set import STEP, small_steps

    X_safe = torch.tensor([[0.2, 0.5, 1.0], [0.7, 0.1, 0.0]], dtype=torch.double)
    reach = torch.tensor([0.2, 0.05, 0.25], dtype=torch.double)
    steps = small_steps(X_safe, reach, {2: [0.0, 1.0]}, n=400, seed=3)
    scaled = (steps[:, None, :2] - X_safe[None, :, :2]) / reach[:2]
    distance = scaled.norm(dim=-1)
    nearest = distance.argmin(dim=1)
    assert float(distance.min(dim=1).values.max()) <= STEP + 1e-12
    assert torch.equal(steps[:, 2], X_safe[nearest, 2])  # the category of the design it stepped from
    assert float(distance.min(dim=1).values.mean()) > 0.5 * STEP  # spread through the ball, not piled up
    assert torch.equal(steps, small_steps(X_safe, reach, {2: [0.0, 1.0]}, n=400, seed=3))


@pytest.mark.parametrize("goal", ["maximize", "minimize"])
def test_expanders_grow_the_safe_set_only_toward_where_the_optimum_may_lie(goal):
    """GoOSE's rule: `y = x` measured on [0.4, 0.6], safety `s = (x - 0.5)^2 <= 0.2` open on both sides."""
    torch.manual_seed(0)
    X = torch.linspace(0.4, 0.6, 6, dtype=torch.double).unsqueeze(-1)
    model = fit_outcome_models(X, torch.stack([X[:, 0], (X[:, 0] - 0.5) ** 2], dim=-1))
    limit = SafetyLimit(name="s", upper=0.2, confidence=CONFIDENCE)
    sets = safe_set(model, GRID, Objective(name="y", goal=goal), [limit], OUTCOMES, CONFIDENCE, X, {})
    expanders = GRID[sets.expansion > 0, 0]
    assert len(expanders) > 0 and not sets.safe.all()
    assert bool((expanders > 0.5).all()) if goal == "maximize" else bool((expanders < 0.5).all())
