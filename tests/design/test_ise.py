"""Tests for the information-theoretic (ISE) expanders of the safe set, on a 1-D toy with a known safe region."""

from __future__ import annotations

import math

import pytest
import torch

from campaigns.config import load_config
from campaigns.propose import safety_rule
from design import Objective, SafetyLimit
from design.ise import PICKS, C, safety_entropy, safety_information
from design.safe_set import safe_set
from surrogates import fit_outcome_models

OUTCOMES = ["y", "s"]
CONFIDENCE = 0.95
GRID = torch.linspace(0, 1, 51, dtype=torch.double).unsqueeze(-1)
UPPER = 0.9
LIMIT = SafetyLimit(name="s", upper=UPPER, confidence=CONFIDENCE)
SAFE_BELOW = math.asin(UPPER) / 4  # s = sin(4 x) <= 0.9 on [0, 0.28]: the known safe region the campaign starts in


def s_true(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(4 * x)


def ise_round(X: torch.Tensor):
    """Fit GPs of `y = -(x - 0.9)^2` (best at the unsafe side) and `s`, and classify `GRID` with ISE expanders."""
    torch.manual_seed(0)
    y, s = -((X[:, 0] - 0.9) ** 2), s_true(X[:, 0])
    model = fit_outcome_models(X, torch.stack([y, s], dim=-1))
    X_safe = X[s <= UPPER]
    return safe_set(model, GRID, Objective(name="y"), [LIMIT], OUTCOMES, CONFIDENCE, X_safe, {}, expander="ise")


@pytest.fixture(scope="module")
def campaign():
    """The safe set before and after measuring its two strongest ISE expanders, from four safe designs on [0.02, 0.12]."""
    X = torch.linspace(0.02, 0.12, 4, dtype=torch.double).unsqueeze(-1)
    first = ise_round(X)
    picks = torch.argsort(first.expansion, descending=True)[:2]
    return [first], ise_round(torch.cat([X, GRID[picks]]))


def test_ise_expanders_lie_in_the_safe_set(campaign):
    rounds, _ = campaign
    for sets in rounds:
        expanders = sets.expansion > 0
        assert expanders.any()
        assert sets.safe[expanders].all()
        assert (s_true(GRID[expanders, 0]) <= UPPER).all()


def test_measuring_ise_expanders_grows_the_safe_set_within_the_safe_region(campaign):
    rounds, final = campaign
    assert float(GRID[final.safe, 0].max()) > float(GRID[rounds[0].safe, 0].max())
    assert int(final.safe.sum()) > int(rounds[0].safe.sum())
    for sets in [*rounds, final]:
        assert (GRID[sets.safe, 0] <= SAFE_BELOW).all()


def test_the_first_expander_is_at_the_edge_of_the_safe_set(campaign):
    rounds, _ = campaign
    for sets in rounds:
        pick = float(GRID[int(sets.expansion.argmax()), 0])
        edge = float(GRID[sets.safe, 0].max())
        assert edge - pick <= 0.1 * edge  # the boundary is what the data say least about


def test_a_batch_gets_several_distinct_expanders_with_decreasing_gains(campaign):
    rounds, _ = campaign
    gains = rounds[-1].expansion
    ranked = gains[gains > 0].sort(descending=True).values
    assert 1 < ranked.shape[0] <= PICKS
    assert float(ranked[1]) < float(ranked[0])  # the second pick knows the first will be measured


def test_the_closed_form_matches_the_expectation_over_the_measurement():
    """`H(z) - E_y[H(z | y)]` of the approximate entropy, the mean shift `~ N(0, u)` integrated numerically."""
    margin, variance_z = torch.tensor([0.3, -0.1, 0.0], dtype=torch.double), torch.tensor([0.2, 0.05, 0.4])
    covariance, variance_y = torch.tensor([[0.15, 0.1, 0.3]], dtype=torch.double), torch.tensor([0.3])
    closed = safety_information(margin, variance_z.double(), covariance, variance_y.double())[0]
    u = covariance[0] ** 2 / variance_y.double()
    shift = torch.linspace(-8, 8, 4001, dtype=torch.double).unsqueeze(-1) * u.sqrt()
    weight = torch.exp(-(shift**2) / (2 * u)) / torch.sqrt(2 * math.pi * u)
    after = (safety_entropy(margin + shift, variance_z.double() - u) * weight).sum(0) * (shift[1] - shift[0])
    assert torch.allclose(closed, safety_entropy(margin, variance_z.double()) - after, atol=1e-6)


def test_information_is_zero_without_covariance_and_at_most_the_entropy():
    margin, variance_z = torch.tensor([0.0, 0.5], dtype=torch.double), torch.tensor([0.1, 0.1], dtype=torch.double)
    variance_y = torch.tensor([0.2, 0.2], dtype=torch.double)
    none = safety_information(margin, variance_z, torch.zeros(2, 2, dtype=torch.double), variance_y)
    assert torch.allclose(none, torch.zeros_like(none))
    some = safety_information(margin, variance_z, torch.full((2, 2), 0.1, dtype=torch.double), variance_y)
    assert (some > 0).all()
    assert (some <= safety_entropy(margin, variance_z)).all()
    assert safety_entropy(torch.zeros(1), torch.ones(1)).item() == pytest.approx(math.log(2.0))
    assert C == pytest.approx(1 / (math.pi * math.log(2.0)))


def test_the_config_chooses_the_expander():
    raw = {
        "name": "toy",
        "parameters": [{"name": "x", "type": "continuous", "bounds": [0, 1]}],
        "objectives": [{"name": "y"}],
        "safety": [{"name": "s", "upper": 0.9}],
        "safety_mode": "safe_set",
    }
    assert safety_rule(load_config(raw)).expander == "goose"
    assert safety_rule(load_config({**raw, "safety_expander": "ise"})).expander == "ise"
    with pytest.raises(ValueError):
        load_config({**raw, "safety_expander": "safeopt"})
