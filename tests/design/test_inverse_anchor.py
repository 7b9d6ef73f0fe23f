"""Data-anchored inverse design (`InverseOptions(anchor="data")`): measured designs corrected through the surrogate."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from design import InputError
from design.inverse import InverseOptions, inverse_design
from design.parameters import ContinuousParameter, IntegerParameter
from design.space import SearchSpace

torch.set_num_threads(1)


def truth(X):
    """y = (a + b, a - b) on the unit square: the one exact inverse of (1.1, 0.3) is a = 0.7, b = 0.4."""
    return torch.stack([X[..., 0] + X[..., 1], X[..., 0] - X[..., 1]], dim=-1)


class Biased:
    """A surrogate of `truth` that is off by far more than the tolerance: (0.2, -0.15) plus 0.05 a^2."""

    num_outputs = 2

    def posterior(self, X, observation_noise=False):
        Y = truth(X) + torch.tensor([0.2, -0.15], dtype=X.dtype) + 0.05 * X[..., :1] ** 2
        return SimpleNamespace(mean=Y, variance=torch.zeros_like(Y))


def space() -> SearchSpace:
    return SearchSpace([ContinuousParameter(name=p, bounds=(0, 1)) for p in "ab"])


def data(rows: int = 400) -> tuple[torch.Tensor, torch.Tensor]:
    X = torch.rand(rows, 2, generator=torch.Generator().manual_seed(0), dtype=torch.double)
    return X, truth(X)


GOALS = ["y1=target:1.1±0.01", "y2=target:0.3±0.01"]


def test_anchored_designs_land_on_the_exact_inverse_despite_a_biased_surrogate():
    X, Y = data()
    options = InverseOptions(train_X=X, train_Y=Y, anchor="data")
    df = inverse_design(Biased(), space(), GOALS, n=3, options=options)
    assert len(df) == 3 and df["rank"].tolist() == [1, 2, 3] and "target" not in df.columns
    assert df.iloc[0]["a"] == pytest.approx(0.7, abs=5e-3) and df.iloc[0]["b"] == pytest.approx(0.4, abs=5e-3)
    reached = truth(torch.tensor(df[["a", "b"]].to_numpy()))
    assert (reached - torch.tensor([1.1, 0.3])).abs().max() <= 0.01  # every design meets the targets in truth
    assert df["all_met"].all() and (df["y1_anchored"] - 1.1).abs().max() <= 1e-3
    assert (df["y1_mean"] - 1.1).abs().min() > 0.1  # the surrogate itself is far off there
    assert df["anchor_row"].between(0, len(X) - 1).all() and df.attrs["surrogate_calls"] > 0
    plain = inverse_design(Biased(), space(), GOALS, n=1, starts=64, options=InverseOptions(train_X=X))
    assert abs(plain.iloc[0]["a"] - 0.7) > 0.03  # descending the biased surrogate alone misses


def test_anchored_designs_for_many_targets_each_meet_their_own():
    X, Y = data()
    reachable = torch.tensor([[0.3, 0.2], [0.6, 0.5], [0.8, 0.1]], dtype=torch.double)
    targets_df = pd.DataFrame(truth(reachable).numpy(), columns=["y1", "y2"])
    options = InverseOptions(train_X=X, train_Y=Y, anchor="data")
    df = inverse_design(Biased(), space(), GOALS, n=2, options=options, targets=targets_df, outcomes=["y1", "y2"])
    assert set(df["target"]) == {0, 1, 2} and df.groupby("target")["rank"].apply(list).tolist() == [[1, 2]] * 3
    first = df[df["rank"] == 1]
    assert torch.allclose(torch.tensor(first[["a", "b"]].to_numpy()), reachable, atol=5e-3)


def test_anchor_refuses_what_it_cannot_do():
    X, Y = data(20)
    with pytest.raises(InputError, match="train_Y"):
        inverse_design(Biased(), space(), GOALS, options=InverseOptions(train_X=X, anchor="data"))
    with pytest.raises(InputError, match="target goals only"):
        inverse_design(
            Biased(), space(), ["y1=min", "y2<=0"], options=InverseOptions(train_X=X, train_Y=Y, anchor="data")
        )
    with pytest.raises(InputError, match="anchor must be"):
        inverse_design(Biased(), space(), GOALS, options=InverseOptions(anchor="near"))


def test_integer_levels_stay_at_the_anchors_and_only_continuous_coordinates_move():
    mixed = SearchSpace([ContinuousParameter(name="a", bounds=(0, 1)), IntegerParameter(name="k", bounds=(0, 4))])
    model = SimpleNamespace(
        num_outputs=1,
        posterior=lambda X: SimpleNamespace(
            mean=(X[..., :1] + 4 * X[..., 1:]) + 0.3, variance=torch.zeros_like(X[..., :1])
        ),
    )
    X = mixed.snap(torch.rand(50, 2, generator=torch.Generator().manual_seed(1), dtype=torch.double))
    Y = X[:, :1] + 4 * X[:, 1:]  # y = a + k, the surrogate 0.3 too high
    options = InverseOptions(train_X=X, train_Y=Y, anchor="data")
    df = inverse_design(model, mixed, ["y=target:2.55±0.01"], n=2, options=options)
    assert (df["k"] == df["k"].round()).all() and ((df["a"] + df["k"]) - 2.55).abs().max() <= 0.01


def test_auto_anchors_target_goals_with_data_and_lets_other_goals_descend():
    X, Y = data()
    auto = InverseOptions(train_X=X, train_Y=Y, anchor="auto")
    anchored = inverse_design(Biased(), space(), GOALS, n=2, options=auto)
    assert "anchor_row" in anchored.columns  # every goal a target, the data given
    assert (truth(torch.tensor(anchored[["a", "b"]].to_numpy())) - torch.tensor([1.1, 0.3])).abs().max() <= 0.01
    mixed = inverse_design(
        Biased(),
        space(),
        ["y1=target:1.1±0.01", "y2=min"],
        n=2,
        starts=32,
        options=auto,
    )
    default = inverse_design(Biased(), space(), GOALS, n=2, options=InverseOptions(train_X=X, train_Y=Y))
    assert "anchor_row" not in mixed.columns and "anchor_row" in default.columns  # "auto" is the default
    descent = inverse_design(Biased(), space(), GOALS, n=2, starts=32, options=InverseOptions(train_X=X, anchor=None))
    assert "anchor_row" not in descent.columns
    learned = InverseOptions(train_X=X, train_Y=Y, step_control="pi")  # a descent setting asks for the descent
    assert "anchor_row" not in inverse_design(Biased(), space(), GOALS, n=1, starts=16, options=learned).columns


def exact(X):
    """y = a + b on the unit square, as an exact surrogate."""
    Y = X[..., :1] + X[..., 1:2]
    return SimpleNamespace(mean=Y, variance=torch.zeros_like(Y))


def test_auto_descends_the_targets_no_anchored_design_meets():
    X = 0.25 * torch.rand(100, 2, generator=torch.Generator().manual_seed(2), dtype=torch.double)  # y <= 0.5 only
    model = SimpleNamespace(num_outputs=1, posterior=exact)
    targets_df = pd.DataFrame({"y": [0.3, 1.6]})  # 1.6: beyond the anchors' reach (radius 0.1 from y <= 0.5)
    options = InverseOptions(train_X=X, train_Y=X.sum(-1, keepdim=True))
    df = inverse_design(model, space(), ["y=target:0±0.01"], n=2, starts=32, options=options, targets=targets_df)
    assert df["target"].tolist() == [0, 0, 1, 1] and df["rank"].tolist() == [1, 2, 1, 2]
    assert df["anchor_row"].notna().tolist() == [True, True, False, False]  # target 1 descended
    assert ((df["a"] + df["b"]) - targets_df["y"].to_numpy()[df["target"]]).abs().max() <= 0.01
    anchored = inverse_design(
        model, space(), ["y=target:0±0.01"], n=2, options=replace(options, anchor="data"), targets=targets_df
    )
    assert not anchored.loc[anchored["target"] == 1, "all_met"].any()  # anchoring alone cannot reach it


def test_the_first_anchored_design_comes_from_the_measured_outcome_nearest_the_target():
    def curved(X):  # y = a + 4 b^2: steep in b where b is large
        Y = X[..., :1] + 4 * X[..., 1:2] ** 2
        return SimpleNamespace(mean=Y, variance=torch.zeros_like(Y))

    model = SimpleNamespace(num_outputs=1, posterior=curved)
    X = torch.tensor([[0.1, 0.5], [0.5, 0.05]], dtype=torch.double)  # y = 1.1 (steep there), 0.51 (flat)
    options = InverseOptions(train_X=X, train_Y=curved(X).mean, anchor="data", radius=0.5)
    df = inverse_design(model, space(), ["y=target:0.7±0.01"], n=2, options=options)
    assert df["all_met"].all() and df["anchor_row"].tolist() == [1, 0]  # correction 0.19 before 0.4
    moved = (torch.tensor(df[["a", "b"]].to_numpy()) - X[df["anchor_row"].tolist()]).norm(dim=-1)
    assert moved[0] > moved[1]  # though it moved farther: the correction, not the move, ranks
