"""Tests for the physics terms: built-ins, config parsing, weight tuning."""

from __future__ import annotations

import pytest
import torch

from surrogates import PhysicsTerm, bounded, monotonic, physics_terms_from_config, saturating
from surrogates.physics import make_grad


def penalty(term: PhysicsTerm, f) -> float:
    X = torch.rand(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.double).requires_grad_(True)
    return term.value(X, f(X), make_grad(X)).item()


def test_monotonic_is_zero_for_a_monotone_function_and_positive_otherwise():
    rising = lambda X: 2 * X[:, :1] + X[:, 1:] ** 2  # noqa: E731
    falling = lambda X: torch.sin(6 * X[:, :1])  # noqa: E731 - rises and falls
    assert penalty(monotonic(0), rising) == 0.0
    assert penalty(monotonic(0), falling) > 0.1
    assert penalty(monotonic(0, increasing=False), rising) > 1.0


def test_bounded_and_saturating():
    assert penalty(bounded(lower=0.0), lambda X: X[:, :1]) == 0.0
    assert penalty(bounded(lower=0.0, upper=0.5), lambda X: X[:, :1]) > 0.0
    assert penalty(saturating(0), lambda X: torch.log1p(5 * X[:, :1])) == 0.0  # concave
    assert penalty(saturating(0), lambda X: X[:, :1] ** 3) > 0.1  # convex
    with pytest.raises(ValueError, match="lower"):
        bounded()


def test_energy_term_penalizes_the_mean_not_the_square():
    term = PhysicsTerm("energy", 1.0, lambda X, Y, grad: -Y[:, 0], energy=True)
    assert penalty(term, lambda X: torch.ones(len(X), 1, dtype=X.dtype)) == -1.0


def test_terms_from_config():
    terms = physics_terms_from_config(
        [
            {"kind": "monotonic", "input": "dose", "outcome": "activation", "weight": 2.0},
            {"kind": "bounded", "outcome": "activation", "lower": 0},
            {"kind": "saturating", "input": "dose", "outcome": "activation"},
        ],
        ["size", "dose"],
        ["activation"],
    )
    assert [t.weight for t in terms] == [2.0, 1.0, 1.0]
    assert penalty(terms[0], lambda X: -X[:, 1:]) > 0 and penalty(terms[0], lambda X: -X[:, :1]) == 0
    with pytest.raises(ValueError, match=r"physics\[0\].input must be one of \['size', 'dose'\]"):
        physics_terms_from_config(
            [{"kind": "monotonic", "input": "temp", "outcome": "activation"}], ["size", "dose"], ["activation"]
        )
    with pytest.raises(ValueError, match="kind must be one of"):
        physics_terms_from_config([{"kind": "pde"}], ["x"], ["y"])
    with pytest.raises(ValueError, match="Got \\['upper_bound'\\] too"):
        physics_terms_from_config([{"kind": "bounded", "upper_bound": 1}], ["x"], ["y"])
    with pytest.raises(ValueError, match="weight"):
        PhysicsTerm("x", -1.0, lambda X, Y, g: Y)
