"""Flat-minimum ranking (`rank_by="flatness"`) and the CMA-ES designer (`design.inverse.population`)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from design.errors import InputError
from design.inverse import InverseOptions, inverse_design
from design.inverse.population import CALLS_PER_START, cmaes_design
from design.inverse.select import flat_order
from design.parameters import CategoricalParameter, ContinuousParameter, IntegerParameter, SequenceParameter
from design.space import SearchSpace


class Exact:
    """A noise-free 'surrogate' that is the function `f` of the encoded design itself."""

    num_outputs = 1

    def __init__(self, f):
        self.f = f

    def posterior(self, X, output_indices=None, *, observation_noise=False):
        mean = self.f(X)[..., None]
        return SimpleNamespace(mean=mean, variance=torch.zeros_like(mean))


def two_wells(X):
    """A deep, sharp well at 0.25 and a slightly shallower, broad one at 0.7."""
    sharp = torch.exp(-((X - 0.25) ** 2).sum(-1) / (2 * 0.03**2))
    broad = 0.9 * torch.exp(-((X - 0.7) ** 2).sum(-1) / (2 * 0.2**2))
    return -(sharp + broad)


def box(d):
    return SearchSpace([ContinuousParameter(name=f"x{i}", bounds=(0.0, 1.0)) for i in range(d)])


def test_flatness_ranks_the_broad_well_first_where_the_objective_ranks_the_sharp_one():
    space, model = box(2), Exact(two_wells)
    ranked = {}
    for rank_by in ("objective", "flatness"):
        options = InverseOptions(steps=40, tolerance=0.05, rank_by=rank_by)
        ranked[rank_by] = inverse_design(model, space, ["y=min"], n=2, starts=64, options=options)
    best, flat = ranked["objective"].iloc[0], ranked["flatness"].iloc[0]
    assert abs(best["x0"] - 0.25) < 0.05 and abs(flat["x0"] - 0.7) < 0.05
    assert flat["hessian_max_eig"] < best["hessian_max_eig"] / 10
    assert flat["expected_objective"] < best["expected_objective"]


def test_flat_order_breaks_near_ties_by_curvature_and_nothing_else():
    order = [0, 1, 2]
    unmet = torch.tensor([0.0, 0.0, 1.0])
    merit = torch.tensor([0.0, 0.01, -5.0])
    curvature = torch.tensor([9.0, 1.0, 0.1])
    assert flat_order(order, unmet, merit, curvature, tie=0.05) == [1, 0, 2]  # met goals before curvature
    assert flat_order(order, unmet, merit, curvature, tie=0.0) == order
    assert flat_order(order, unmet, merit, torch.full((3,), float("nan")), tie=1.0) == order


@pytest.mark.parametrize(
    ("options", "field"),
    [(InverseOptions(rank_by="flat"), "rank_by"), (InverseOptions(first_stage="ga"), "first_stage")],
)
def test_unknown_ranking_or_first_stage_is_refused(options, field):
    with pytest.raises(InputError, match=field):
        inverse_design(Exact(two_wells), box(2), ["y=min"], n=1, starts=4, options=options)


def test_cmaes_meets_integer_and_categorical_levels():
    space = SearchSpace(
        [
            ContinuousParameter(name="a", bounds=(0.0, 1.0)),
            IntegerParameter(name="k", bounds=(0, 10)),
            CategoricalParameter(name="c", values=["p", "q", "r"]),
        ]
    )
    model = Exact(lambda X: (X[..., 0] - 0.3) ** 2 + (X[..., 1] - 0.7) ** 2 + 0.5 * (X[..., 2] - 2.0).abs())
    designs_df = cmaes_design(model, space, ["y=min"], n=2, budget=800, seed=1)
    top = designs_df.iloc[0]
    assert (top["k"], top["c"]) == (7, "r") and abs(top["a"] - 0.3) < 0.02
    assert designs_df.attrs["surrogate_calls"] >= 800  # the budget, then polishing and the table


def test_cmaes_first_stage_seeds_the_descent_and_counts_its_calls():
    space = box(2)
    model = Exact(lambda X: ((X - 0.8) ** 2).sum(-1) - 0.1 * torch.cos(40 * X).sum(-1))  # many local minima
    options = InverseOptions(steps=10, first_stage="cmaes")
    designs_df = inverse_design(model, space, ["y=min"], n=1, starts=16, options=options)
    assert designs_df.attrs["surrogate_calls"] >= CALLS_PER_START * 16
    assert abs(designs_df.iloc[0]["x0"] - 0.8) < 0.1


def test_cmaes_refuses_sequences():
    space = SearchSpace([SequenceParameter(name="s", alphabet="AB", length=3)])
    with pytest.raises(InputError, match="sequence"):
        cmaes_design(Exact(lambda X: X.sum(-1)), space, ["y=min"], n=1, budget=10)
