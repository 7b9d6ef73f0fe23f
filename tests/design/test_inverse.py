"""Inverse design on small analytic models: bounds, constraints, levels, targets, sequences, nudges."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from design import InputError
from design.inverse import InverseOptions, inverse_design
from design.inverse_goals import Goal, as_goals, parse_goal
from design.inverse_score import Scorer
from design.inverse_select import Neighbourhood, hessian_max_eig, polish, verify_designs
from design.parameters import CategoricalParameter, ContinuousParameter, IntegerParameter, SequenceParameter
from design.space import SearchSpace

torch.set_num_threads(1)
FAST = InverseOptions(steps=60, cycles=2)


class Analytic:
    """A surrogate with a known, noise-free posterior: `f(X)` with zero variance."""

    def __init__(self, f, m: int, sd: float = 0.0):
        self.f, self.num_outputs, self.sd = f, m, sd

    def posterior(self, X, observation_noise=False):
        Y = self.f(X)
        return SimpleNamespace(mean=Y, variance=torch.full_like(Y, self.sd**2))


def mixed_space() -> SearchSpace:
    return SearchSpace(
        [
            ContinuousParameter(name="a", bounds=(0, 10)),
            ContinuousParameter(name="b", bounds=(-5, 5)),
            IntegerParameter(name="k", bounds=(0, 4)),
        ],
        ["a + b <= 6"],
    )


def bowl(X):
    a, b, k = X[..., 0] * 10, X[..., 1] * 10 - 5, X[..., 2] * 4
    return torch.stack([(a - 3) ** 2 + (b - 1) ** 2 + (k - 2.2) ** 2, a + b], dim=-1)


def test_goal_strings_parse_and_bad_ones_fail_clearly():
    assert parse_goal("friction_coeff=min") == Goal("friction_coeff", "minimize")
    assert parse_goal("load >= 50") == Goal("load", ">=", 50.0)
    assert parse_goal("x=target:3.0+-0.1") == Goal("x", "target", 3.0, 0.1)
    assert parse_goal("y=target:2").tolerance == pytest.approx(0.1)
    assert parse_goal("cost=max@0.5").weight == 0.5
    with pytest.raises(InputError, match="not understood.*name>=50"):
        parse_goal("load => 50")
    config = {"objectives": [{"name": "y", "goal": "minimize"}], "safety": [{"name": "c", "upper": 1.5}]}
    assert as_goals(config) == [Goal("y", "minimize"), Goal("c", "<=", 1.5)]


def test_bounds_linear_constraint_and_integer_levels_hold_exactly_and_constraint_is_met():
    df = inverse_design(
        Analytic(bowl, 2), mixed_space(), ["y1=min", "y2>=5"], n=4, starts=64, outcomes=["y1", "y2"], options=FAST
    )
    assert len(df) == 4 and list(df["rank"]) == [1, 2, 3, 4]
    assert df["a"].between(0, 10).all() and df["b"].between(-5, 5).all()
    assert (df["a"] + df["b"] <= 6 + 1e-9).all()
    assert set(df["k"]) <= {0, 1, 2, 3, 4} and (df["k"] == df["k"].round()).all()
    best = df.iloc[0]
    assert best["met: y2>=5"] and best["a"] + best["b"] >= 5 - 1e-3  # constraint active: optimum (3, 1) has a+b=4
    assert best["y1_mean"] == pytest.approx(0.5 + 0.04, abs=0.05)  # (3.5, 1.5, k=2) on the line a + b = 5
    assert best["k"] == 2


def test_target_is_hit_and_designs_are_distinct_and_seeded():
    goals = ["y2=target:2.5±0.01"]
    df = inverse_design(Analytic(bowl, 2), mixed_space(), goals, n=5, starts=64, outcomes=["y1", "y2"], options=FAST)
    assert df["all_met"].all() and ((df["a"] + df["b"]) - 2.5).abs().max() <= 0.01
    X = mixed_space().encode(df)
    assert torch.cdist(X, X).add(torch.eye(len(X)) * 9).min() > FAST.min_distance
    again = inverse_design(Analytic(bowl, 2), mixed_space(), goals, n=5, starts=64, outcomes=["y1", "y2"], options=FAST)
    pd.testing.assert_frame_equal(df, again)


class Counting(Analytic):
    """An `Analytic` surrogate that counts the designs it scores."""

    calls = 0

    def posterior(self, X, observation_noise=False):
        self.calls += X.reshape(-1, X.shape[-1]).shape[0]
        return super().posterior(X)


def test_successive_halving_spends_most_calls_on_the_best_starts_and_counts_them():
    goals = ["y1=min", "y2>=5"]
    costs = {}
    for keep in (0.25, 1.0):
        model = Counting(bowl, 2)
        options = InverseOptions(steps=60, cycles=2, keep=keep)
        df = inverse_design(model, mixed_space(), goals, n=4, starts=256, outcomes=["y1", "y2"], options=options)
        costs[keep] = df.attrs["surrogate_calls"]
        assert costs[keep] == model.calls - 256  # all but the scale estimate (`outcome_scale`) on the starts
        assert df.iloc[0]["y1_mean"] == pytest.approx(0.54, abs=0.05) and len(df) == 4
    descent = {0.25: 256 * 30 + 64 * 30, 1.0: 256 * 60}  # 256 starts for one cycle, then the best quarter
    assert costs[1.0] - descent[1.0] == pytest.approx(costs[0.25] - descent[0.25], abs=2000)  # polish and ranking


def test_constraints_alone_are_met_with_a_margin():
    space = SearchSpace([ContinuousParameter(name="x", bounds=(0, 1))])
    df = inverse_design(Analytic(lambda X: 3 * X, 1), space, ["y>=1"], n=4, starts=64, options=FAST)
    # Any x > 1/3 meets the goal; a wider margin scores better, all the way to x = 1 (y = 3).
    assert df["y_mean"].iloc[0] == pytest.approx(3.0, abs=1e-3) and (df["y_mean"] >= 2.0).all()
    assert df["objective"].is_monotonic_increasing and df["objective"].is_unique


def test_unknown_outcome_is_refused():
    with pytest.raises(InputError, match="outcomes of the model"):
        inverse_design(Analytic(bowl, 2), mixed_space(), ["zzz=min"], outcomes=["y1", "y2"], starts=8)


def test_nudge_stays_within_radius():
    space = SearchSpace([ContinuousParameter(name=f"x{i}", bounds=(0, 1)) for i in range(3)])
    start = pd.DataFrame({"x0": [0.5], "x1": [0.5], "x2": [0.5]})
    model = Analytic(lambda X: X.sum(-1, keepdim=True), 1)
    df = inverse_design(
        model, space, ["y=max"], n=3, starts=32, options=InverseOptions(steps=40, nudge_from=start, radius=0.2)
    )
    moved = np.sqrt(((df[["x0", "x1", "x2"]].to_numpy() - 0.5) ** 2).sum(-1))
    assert (moved <= 0.2 + 1e-9).all() and moved[0] > 0.19  # it uses the radius, and no more


def test_categorical_is_chosen_by_polish():
    space = SearchSpace(
        [ContinuousParameter(name="x", bounds=(0, 1)), CategoricalParameter(name="c", values=["p", "q", "r"])]
    )
    offsets = torch.tensor([0.0, -2.0, 1.0], dtype=torch.double)
    model = Analytic(lambda X: (X[..., :1] - 0.3) ** 2 + offsets[X[..., 1:].round().long().clamp(0, 2)], 1)
    df = inverse_design(model, space, ["y=min"], n=2, starts=16, options=InverseOptions(steps=40))
    assert df.iloc[0]["c"] == "q" and df.iloc[0]["x"] == pytest.approx(0.3, abs=0.02)


def sequence_space() -> SearchSpace:
    return SearchSpace([SequenceParameter(name="s", alphabet="ACDE", length=6)])


def letter_score(X):
    """Reward letter `(i mod 4)` at position i, plus a pair term; differentiable in one-hot X."""
    P = X.reshape(*X.shape[:-1], 6, 4)
    want = torch.nn.functional.one_hot(torch.arange(6) % 4, 4).double()
    return ((P * want).sum((-1, -2)) + 0.5 * (P[..., :-1, 0] * P[..., 1:, 1]).sum(-1)).unsqueeze(-1)


def test_sequence_design_returns_valid_strings_at_the_optimum():
    df = inverse_design(
        Analytic(letter_score, 1), sequence_space(), ["y=max"], n=3, starts=32, options=InverseOptions(steps=60)
    )
    assert all(len(s) == 6 and set(s) <= set("ACDE") for s in df["s"])
    assert df.iloc[0]["s"] == "ACDEAC" and df["s"].is_unique


def test_polish_never_makes_the_surrogate_score_worse():
    space = sequence_space()
    model = Analytic(letter_score, 1)
    scorer = Scorer(model, [Goal("y", "maximize")], ["y"], torch.ones(1, dtype=torch.double), 0.0)
    X = space.sample(20, seed=1)
    before = scorer.merit(X)
    after = scorer.merit(polish(X, scorer, Neighbourhood(space), rounds=2))
    assert (after <= before + 1e-12).all() and (after < before).any()


def test_hessian_eigenvalue_of_a_known_quadratic():
    space = SearchSpace([ContinuousParameter(name=f"x{i}", bounds=(0, 1)) for i in range(3)])
    A = torch.tensor([[4.0, 1.0, 0.0], [1.0, 3.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.double)
    model = Analytic(lambda X: 0.5 * torch.einsum("...i,ij,...j->...", X, A, X).unsqueeze(-1), 1)
    scorer = Scorer(model, [Goal("y", "minimize")], ["y"], torch.ones(1, dtype=torch.double), 0.0)
    eig = hessian_max_eig(scorer, space, torch.full((2, 3), 0.4, dtype=torch.double))
    assert eig == pytest.approx(torch.linalg.eigvalsh(A).max().item(), rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_robust_option_prefers_the_flat_minimum(seed):
    space = SearchSpace([ContinuousParameter(name="x", bounds=(0, 1))])
    # A sharp well at 0.2 (depth 1.0) and a wide well at 0.7 (depth 0.9).
    f = lambda X: -torch.exp(-(((X - 0.2) / 0.01) ** 2)) - 0.9 * torch.exp(-(((X - 0.7) / 0.2) ** 2))  # noqa: E731
    plain = inverse_design(
        Analytic(f, 1), space, ["y=min"], n=1, starts=64, seed=seed, options=InverseOptions(steps=80)
    )
    robust_options = InverseOptions(steps=80, robust=True, tolerance=0.05)
    robust = inverse_design(Analytic(f, 1), space, ["y=min"], n=1, starts=64, seed=seed, options=robust_options)
    assert plain["x"].item() == pytest.approx(0.2, abs=0.01) and robust["x"].item() == pytest.approx(0.7, abs=0.03)
    assert plain["hessian_max_eig"].item() > 100 * robust["hessian_max_eig"].item()


def test_smoothness_regularizer_pulls_an_ordered_group_together():
    space = SearchSpace([ContinuousParameter(name=f"d{i}", bounds=(0, 1)) for i in range(4)])
    wanted = torch.tensor([0.1, 0.9, 0.1, 0.9], dtype=torch.double)
    model = Analytic(lambda X: ((X - wanted) ** 2).sum(-1, keepdim=True), 1)
    rough = inverse_design(model, space, ["y=min"], n=1, starts=16, options=InverseOptions(steps=80))
    smooth = inverse_design(
        model,
        space,
        ["y=min"],
        n=1,
        starts=16,
        options=InverseOptions(steps=80, smooth_groups=[["d0", "d1", "d2", "d3"]], smooth_weight=5.0),
    )
    jumps = lambda df: np.abs(np.diff(df[["d0", "d1", "d2", "d3"]].to_numpy()[0])).sum()  # noqa: E731
    assert jumps(smooth) < 0.5 * jumps(rough)


def test_pcgrad_and_uncertainty_penalty_run_and_report_distance():
    space = mixed_space()
    train_X = space.sample(10, seed=2)
    df = inverse_design(
        Analytic(bowl, 2, sd=0.1),
        space,
        ["y1=min", "y2=max@0.1"],
        n=2,
        starts=32,
        outcomes=["y1", "y2"],
        options=InverseOptions(steps=40, pcgrad=True, train_X=train_X),
    )
    assert (df["distance_to_data"] >= 0).all() and df["y1_sd"].tolist() == pytest.approx([0.1, 0.1])


def test_verify_designs_compares_with_the_simulator():
    designs_df = pd.DataFrame({"a": [1.0, 2.0], "y_mean": [1.1, 3.0]})
    out = verify_designs(designs_df, lambda df, rng: pd.DataFrame({"y": df["a"] ** 2}), ["y<=2"])
    assert out["y_true"].tolist() == [1.0, 4.0] and out["y_error"].tolist() == pytest.approx([-0.1, 1.0])
    assert out["all_met_true"].tolist() == [True, False]
