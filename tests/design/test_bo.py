"""Tests for the Bayesian-optimization pieces: goal signs, P(safe), space-filling and spreading."""

from __future__ import annotations

import pytest
import torch

from design import (
    ContinuousParameter,
    IntegerParameter,
    Objective,
    SafetyLimit,
    SearchSpace,
    probability_safe,
    space_filling,
    spread_rows,
)
from design.bo import constraint_functions, objective_function
from surrogates import fit_outcome_models

OUTCOMES = ["y", "tox"]


def samples() -> torch.Tensor:
    """A `2 x 3 x 2` tensor of outcome samples: `y` in column 0, `tox` in column 1."""
    return torch.tensor(
        [[[1.0, 0.5], [3.0, 2.0], [-2.0, 1.5]], [[0.0, 0.0], [4.0, 1.0], [2.5, 3.0]]], dtype=torch.double
    )


def test_objective_function_maximize_returns_the_outcome():
    Z = samples()
    assert torch.equal(objective_function(Objective(name="y", goal="maximize"), OUTCOMES)(Z), Z[..., 0])
    assert torch.equal(objective_function(Objective(name="tox"), OUTCOMES)(Z), Z[..., 1])


def test_objective_function_minimize_flips_the_sign():
    Z = samples()
    assert torch.equal(objective_function(Objective(name="y", goal="minimize"), OUTCOMES)(Z), -Z[..., 0])


def test_objective_function_target_is_minus_the_distance():
    Z = samples()
    score = objective_function(Objective(name="y", goal="target", target=2.5), OUTCOMES)(Z)
    assert torch.equal(score, -(Z[..., 0] - 2.5).abs())
    assert score.max() == 0.0 and score[1, 2] == 0.0  # the sample exactly on target scores best


@pytest.mark.parametrize("goal", ["maximize", "minimize", "target"])
def test_objective_function_agrees_with_objective_score(goal):
    objective = Objective(name="y", goal=goal, target=1.0 if goal == "target" else None)
    Z = samples()
    expected = torch.tensor([[objective.score(float(v)) for v in row] for row in Z[..., 0]], dtype=torch.double)
    assert torch.allclose(objective_function(objective, OUTCOMES)(Z), expected)


def test_constraint_functions_are_non_positive_exactly_where_the_limit_holds():
    Z = samples()
    upper = constraint_functions([SafetyLimit(name="tox", upper=1.5)], OUTCOMES)
    assert len(upper) == 1
    assert torch.equal(upper[0](Z), Z[..., 1] - 1.5)
    lower = constraint_functions([SafetyLimit(name="tox", lower=1.0)], OUTCOMES)
    assert torch.equal(lower[0](Z), 1.0 - Z[..., 1])
    both = constraint_functions([SafetyLimit(name="tox", lower=1.0, upper=1.5)], OUTCOMES)
    assert len(both) == 2
    holds = torch.stack([c(Z) <= 0 for c in both]).all(dim=0)
    expected = torch.tensor([[False, False, True], [False, True, False]])
    assert torch.equal(holds, expected)


def test_constraint_functions_bind_each_limit_to_its_own_outcome():
    Z = samples()
    limits = [SafetyLimit(name="y", upper=2.0), SafetyLimit(name="tox", upper=1.0)]
    first, second = constraint_functions(limits, OUTCOMES)
    assert torch.equal(first(Z), Z[..., 0] - 2.0)
    assert torch.equal(second(Z), Z[..., 1] - 1.0)


@pytest.fixture(scope="module")
def toxicity_model():
    """GPs of `y = x` and `tox = 10 x` on twelve points of [0, 1]."""
    X = torch.linspace(0, 1, 12, dtype=torch.double).unsqueeze(-1)
    Y = torch.cat([X, 10 * X], dim=-1)
    return fit_outcome_models(X, Y)


def test_probability_safe_is_high_far_below_an_upper_limit_and_low_far_above(toxicity_model):
    X = torch.tensor([[0.05], [0.5], [0.95]], dtype=torch.double)
    p = probability_safe(toxicity_model, X, [SafetyLimit(name="tox", upper=5.0)], OUTCOMES)
    assert p.shape == (3,)
    assert p[0] > 0.99
    assert p[2] < 0.01
    assert 0.05 < p[1] < 0.95  # on the limit itself


def test_probability_safe_with_a_lower_limit_and_with_both(toxicity_model):
    X = torch.tensor([[0.05], [0.5], [0.95]], dtype=torch.double)
    lower = probability_safe(toxicity_model, X, [SafetyLimit(name="tox", lower=5.0)], OUTCOMES)
    assert lower[0] < 0.01 and lower[2] > 0.99
    band = probability_safe(toxicity_model, X, [SafetyLimit(name="tox", lower=2.0, upper=8.0)], OUTCOMES)
    assert band[1] > 0.99 and band[0] < 0.01 and band[2] < 0.01


def test_probability_safe_multiplies_the_limits(toxicity_model):
    X = torch.tensor([[0.3], [0.5], [0.7]], dtype=torch.double)
    one = probability_safe(toxicity_model, X, [SafetyLimit(name="tox", upper=5.0)], OUTCOMES)
    two = probability_safe(toxicity_model, X, [SafetyLimit(name="y", upper=0.5)], OUTCOMES)
    both = probability_safe(
        toxicity_model, X, [SafetyLimit(name="tox", upper=5.0), SafetyLimit(name="y", upper=0.5)], OUTCOMES
    )
    assert torch.allclose(both, one * two)
    assert torch.equal(probability_safe(toxicity_model, X, [], OUTCOMES), torch.ones(3, dtype=torch.double))


def constrained_space() -> SearchSpace:
    return SearchSpace(
        [
            ContinuousParameter(name="a", bounds=(0, 10)),
            ContinuousParameter(name="b", bounds=(0, 10)),
            IntegerParameter(name="k", bounds=(1, 4)),
        ],
        ["a + b <= 8"],
    )


def test_space_filling_returns_distinct_feasible_points():
    space = constrained_space()
    X = space_filling(space, 12, seed=1)
    assert X.shape == (12, 3)
    assert torch.unique(X, dim=0).shape[0] == 12
    df = space.decode(X)
    assert space.feasible(df).all()
    assert (df["a"] + df["b"] <= 8 + 1e-9).all()
    assert set(df["k"]) <= {1, 2, 3, 4}


def test_space_filling_is_seeded():
    space = constrained_space()
    assert torch.equal(space_filling(space, 6, seed=4), space_filling(space, 6, seed=4))
    assert not torch.equal(space_filling(space, 6, seed=4), space_filling(space, 6, seed=5))


def test_space_filling_keeps_away_from_existing_points():
    space = SearchSpace([ContinuousParameter(name="a", bounds=(0, 1)), ContinuousParameter(name="b", bounds=(0, 1))])
    existing = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.double)
    X = space_filling(space, 3, existing, seed=0)
    assert torch.cdist(X, existing).min() > 0.3


def test_spread_rows_prefers_points_far_from_existing_ones():
    pool = torch.tensor([[0.1, 0.1], [0.9, 0.9], [0.5, 0.5], [0.15, 0.1], [0.9, 0.1]], dtype=torch.double)
    existing = torch.tensor([[0.0, 0.0]], dtype=torch.double)
    picks = spread_rows(pool, 3, existing, {})
    assert picks[0] == 1  # the far corner first
    assert picks[1] == 4  # then the point farthest from both the origin and (0.9, 0.9)
    assert len(set(picks)) == 3
    assert 3 not in picks and 0 not in picks  # points next to the origin come last


def test_spread_rows_without_existing_points_starts_at_the_first_row_and_spreads():
    pool = torch.tensor([[0.0, 0.0], [0.01, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=torch.double)
    assert spread_rows(pool, 2, None, {}) == [0, 2]
    assert sorted(spread_rows(pool, 10, None, {})) == [0, 1, 2, 3]  # never more than the pool


def test_spread_rows_counts_a_different_category_as_distance_one():
    # Column 1 holds category codes 0..2: code 2 is no farther from code 0 than code 1 is.
    pool = torch.tensor([[0.0, 2.0], [1.2, 0.0]], dtype=torch.double)
    existing = torch.tensor([[0.0, 0.0]], dtype=torch.double)
    assert spread_rows(pool, 1, existing, {1: [0.0, 1.0, 2.0]}) == [1]  # 1.2 beats a category change
    assert spread_rows(pool, 1, existing, {}) == [0]  # read as numbers, code 2 would look farther


def test_the_confidence_barrier_reads_p_safe_from_the_acquisitions_own_posterior(toxicity_model):
    from design.bo import make_acquisition, probability_safe_grad
    from design.feasible import BARRIER_SHARPNESS, ConfidenceBarrier, _probit

    limits = [SafetyLimit(name="tox", upper=5.0)]
    acqf = make_acquisition(
        toxicity_model,
        torch.linspace(0, 1, 12).double().unsqueeze(-1),
        Objective(name="y", goal="maximize"),
        limits,
        OUTCOMES,
    )
    barrier = ConfidenceBarrier(acqf, toxicity_model, limits, OUTCOMES, confidence=0.9)
    X = torch.tensor([[[0.2]], [[0.45]], [[0.7]]], dtype=torch.double)
    calls = []
    posterior = toxicity_model.posterior
    toxicity_model.posterior = lambda *a, **k: calls.append(a[0].shape) or posterior(*a, **k)
    try:
        value = barrier(X)
    finally:
        del toxicity_model.posterior
    assert len(calls) == 1  # qLogNEI's joint posterior only: no second call for P(safe)
    p_safe = probability_safe_grad(toxicity_model, X, limits, OUTCOMES)
    separately = acqf(X) + torch.nn.functional.logsigmoid(
        BARRIER_SHARPNESS * (_probit(p_safe) - barrier.threshold)
    ).sum(-1)
    assert torch.allclose(value, separately, atol=1e-8)
    assert value[2] < value[0] - 1.0  # x = 0.7 (tox 7 > 5) is pushed far below x = 0.2


def test_botorchs_starts_around_the_best_find_the_incumbent_through_the_confidence_barrier(toxicity_model):
    # `optimize_batch` asks botorch for starts near the best measured designs as well as random ones; through
    # the barrier botorch must see the incumbent qLogNEI holds: the best y among designs with tox <= 5
    from botorch.optim.initializers import sample_points_around_best

    from design.bo import make_acquisition
    from design.feasible import ConfidenceBarrier

    limits = [SafetyLimit(name="tox", upper=5.0)]
    X = torch.linspace(0, 1, 12, dtype=torch.double).unsqueeze(-1)
    acqf = make_acquisition(toxicity_model, X, Objective(name="y", goal="maximize"), limits, OUTCOMES)
    barrier = ConfidenceBarrier(acqf, toxicity_model, limits, OUTCOMES, confidence=0.9)
    bounds = torch.tensor([[0.0], [1.0]], dtype=torch.double)
    starts = sample_points_around_best(barrier, n_discrete_points=16, sigma=1e-3, bounds=bounds)
    assert starts is not None and starts.shape == (16, 1)
    assert torch.allclose(starts, torch.full_like(starts, 5 / 11), atol=0.01)  # x = 5/11: tox 4.5, the best safe
