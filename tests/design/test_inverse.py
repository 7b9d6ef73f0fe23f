"""Inverse design on small analytic models: bounds, constraints, levels, targets, sequences, nudges."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from design import InputError
from design.inverse import InverseOptions, inverse_design
from design.inverse.goals import Goal, as_goals, parse_goal
from design.inverse.score import Scorer
from design.inverse.select import Neighbourhood, hessian_max_eig, polish, verify_designs
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


def arm3(X):
    """A three-link arm (links 1, 0.5, 0.5) with relative angles `pi X`: a curve of designs reaches each point."""
    angles = torch.pi * X.cumsum(-1)
    lengths = torch.tensor([1.0, 0.5, 0.5], dtype=X.dtype)
    return torch.stack([(lengths * torch.cos(angles)).sum(-1), (lengths * torch.sin(angles)).sum(-1)], dim=-1)


def square_space(d: int = 2) -> SearchSpace:
    return SearchSpace([ContinuousParameter(name="abc"[i], bounds=(0, 1)) for i in range(d)])


def test_many_targets_in_one_call_each_get_their_own_designs_as_good_as_one_at_a_time():
    goals = ["y1=target:0±0.01", "y2=target:0±0.01"]
    reachable = torch.tensor([[0.3, 0.2, 0.4], [0.1, 0.5, 0.2], [0.6, 0.1, 0.1]], dtype=torch.double)
    targets_df = pd.DataFrame(arm3(reachable).numpy(), columns=["y1", "y2"])
    df = inverse_design(Analytic(arm3, 2), square_space(3), goals, n=3, starts=64, targets=targets_df)
    assert list(df.columns[:4]) == ["target", "a", "b", "c"] and set(df["target"]) == {0, 1, 2}
    assert df.groupby("target")["rank"].apply(list).tolist() == [[1, 2, 3]] * 3
    reached = arm3(torch.tensor(df[["a", "b", "c"]].to_numpy()))
    wanted = torch.tensor(targets_df.to_numpy())[torch.tensor(df["target"].to_numpy())]
    assert (reached - wanted).abs().max() <= 0.01 and df["all_met"].all()  # each design meets its own target
    assert df.attrs["surrogate_calls"] > 0
    for b, row in targets_df.iterrows():
        single_goals = [f"y1=target:{row['y1']}±0.01", f"y2=target:{row['y2']}±0.01"]
        one = inverse_design(Analytic(arm3, 2), square_space(3), single_goals, n=3, starts=64)
        mine = df[df["target"] == b]
        assert mine["objective"].iloc[0] <= one["objective"].iloc[0] + 1e-3  # as good as the single-target call
        assert len(mine) == len(one)


def test_many_targets_add_goals_for_new_columns_and_refuse_what_they_cannot_do():
    model = Analytic(lambda X: X.sum(-1, keepdim=True), 1)
    space = square_space()
    df = inverse_design(
        model, space, ["y=max"], n=2, starts=16, outcomes=["y"], targets=pd.DataFrame({"y": [0.5]}), options=FAST
    )
    assert (df["y_mean"] - 0.5).abs().max() <= 0.05 * 0.5  # the default tolerance, 5 % of the target
    with pytest.raises(InputError, match="robust"):
        inverse_design(model, space, ["y=max"], targets=pd.DataFrame({"y": [0.5]}), options=InverseOptions(robust=True))
    with pytest.raises(InputError, match="at least one row"):
        inverse_design(model, space, ["y=max"], targets=pd.DataFrame({"y": []}))


def test_default_options_bring_a_target_close_to_the_exact_inverse():
    # y = (a + b, a - b) on the unit square: the one exact inverse of (1.1, 0.3) is a = 0.7, b = 0.4.
    model = Analytic(lambda X: torch.stack([X[..., 0] + X[..., 1], X[..., 0] - X[..., 1]], dim=-1), 2)
    df = inverse_design(model, square_space(), ["y1=target:1.1±0.01", "y2=target:0.3±0.01"], n=1, starts=64)
    assert df.iloc[0]["a"] == pytest.approx(0.7, abs=1e-3) and df.iloc[0]["b"] == pytest.approx(0.4, abs=1e-3)
    assert df.iloc[0]["all_met"]


def test_among_designs_that_meet_a_target_those_nearest_the_training_data_come_first():
    # The surrogate of y = a + b is off by 0.5 |x - c|^2, c = (0.5, 0.5), where all training data lie:
    # every design on its own solution curve meets the target by its account, the one nearest c in truth.
    c = torch.tensor([0.5, 0.5], dtype=torch.double)
    model = Analytic(lambda X: (X.sum(-1) + 0.5 * ((X - c) ** 2).sum(-1)).unsqueeze(-1), 1)
    train_X = c + 0.02 * torch.randn(20, 2, generator=torch.Generator().manual_seed(0), dtype=torch.double)
    options = InverseOptions(train_X=train_X)
    df = inverse_design(model, square_space(), ["y=target:1.0±0.01"], n=4, starts=64, options=options)
    true_miss = (df["a"] + df["b"] - 1.0).abs()
    assert len(df) == 4 and df["all_met"].all()
    assert true_miss.iloc[0] < 0.005 and true_miss.iloc[0] == true_miss.min()
    assert df["distance_to_data"].iloc[0] == df["distance_to_data"].min()
    plain = inverse_design(model, square_space(), ["y=target:1.0±0.01"], n=4, starts=64, options=InverseOptions())
    assert plain["objective"].is_monotonic_increasing  # without training data: by the surrogate's merit


def test_many_targets_with_an_integer_parameter_polish_each_target_on_its_own():
    space = SearchSpace([ContinuousParameter(name="a", bounds=(0, 1)), IntegerParameter(name="k", bounds=(0, 4))])
    model = Analytic(lambda X: (X[..., 0] + 4 * X[..., 1]).unsqueeze(-1), 1)  # y = a + k
    targets_df = pd.DataFrame({"y": [1.5, 3.25]})
    df = inverse_design(model, space, ["y=target:0±0.01"], n=2, starts=32, targets=targets_df, options=FAST)
    assert (df["k"] == df["k"].round()).all() and set(df["target"]) == {0, 1}
    for b, value in enumerate(targets_df["y"]):
        one = inverse_design(model, space, [f"y=target:{value}±0.01"], n=2, starts=32, options=FAST)
        mine = df[df["target"] == b].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine[["a", "k", "y_mean"]], one[["a", "k", "y_mean"]])  # the same starts
        assert (mine["y_mean"] - value).abs().iloc[0] < 0.05
