"""Exploring designs: `SafetyRule.explore` designs of a batch are held to P(safe) >= 0.5, not the confidence."""

from __future__ import annotations

import pytest
import torch

from campaigns.config import load_config
from campaigns.propose import safety_rule
from design.batch_policy import EXPLORE_FLOOR, BatchRequest, SafetyRule, choose_batch
from design.goals import Objective, SafetyLimit
from design.parameters import ContinuousParameter
from design.space import SearchSpace
from surrogates import fit_outcome_models

OUTCOMES = ["y", "stress"]


def _request(explore: int, pool: bool = False) -> BatchRequest:
    """Maximize y = x under stress = x <= 0.765, measured on [0, 0.7]: the best designs lie at the limit."""
    x = torch.linspace(0, 0.7, 12, dtype=torch.double).unsqueeze(-1)
    rule = SafetyRule([SafetyLimit(name="stress", upper=0.765)], confidence=0.95, explore=explore)
    return BatchRequest(
        SearchSpace([ContinuousParameter(name="x", bounds=(0, 1))]),
        [Objective(name="y")],
        OUTCOMES,
        rule,
        x,
        torch.cat([x, x], dim=-1),
        X_safe=x,
        X_pool=torch.linspace(0.5, 1.0, 101, dtype=torch.double).unsqueeze(-1) if pool else None,
        mc_samples=32,
    )


@pytest.fixture(scope="module")
def model():
    x = torch.linspace(0, 0.7, 12, dtype=torch.double).unsqueeze(-1)
    return fit_outcome_models(x, torch.cat([x, x], dim=-1), noise_sd=[0.01, 0.01])


@pytest.mark.parametrize("pool", [False, True], ids=["optimized", "pool"])
def test_an_exploring_design_goes_past_what_the_confidence_allows(model, pool):
    request = _request(explore=1, pool=pool)
    notes: list[str] = []
    batch = choose_batch(model, request, 2, seed=0, notes=notes)
    p_safe = request.rule.p_safe(model, batch.X, OUTCOMES)
    assert batch.roles == ["optimize", "explore"]
    assert float(p_safe[0]) >= 0.95 > float(p_safe[1]) >= EXPLORE_FLOOR  # held to the confidence, and to the floor
    assert float(batch.X[1, 0]) > float(batch.X[0, 0])  # toward the limit, where the improvement is
    assert any("explore" in note for note in notes)


def test_without_exploring_every_design_meets_the_confidence(model):
    request = _request(explore=0)
    batch = choose_batch(model, request, 2, seed=0, notes=[])
    assert "explore" not in batch.roles
    assert request.rule.meets(model, batch.X, OUTCOMES).all()


def test_a_batch_of_one_is_never_all_exploring(model):
    request = _request(explore=3)
    batch = choose_batch(model, request, 1, seed=0, notes=[])
    assert batch.roles == ["optimize"] and request.rule.meets(model, batch.X, OUTCOMES).all()


def test_the_config_sets_how_many_designs_explore():
    config = {
        "name": "explore",
        "parameters": [{"name": "x", "type": "continuous", "bounds": [0, 1]}],
        "objectives": [{"name": "y", "goal": "maximize"}],
        "safety": [{"name": "stress", "upper": 0.765}],
    }
    assert safety_rule(load_config({**config, "safety_explore": 2})).explore == 2
    assert safety_rule(load_config(config)).explore == 0
