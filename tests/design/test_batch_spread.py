"""Tests for the rule that keeps a batch from staking several designs on one error of the safety model."""

from __future__ import annotations

import torch

from campaigns.config import load_config
from campaigns.propose import safety_rule
from design.batch_spread import MAX_CORRELATION, NEAR_LIMIT, safety_correlation, spread_admissible, spread_mask
from design.bo import probability_safe
from design.goals import SafetyLimit
from surrogates import fit_outcome_models

LIMIT = [SafetyLimit(name="stress", upper=0.765)]
OUTCOMES = ["stress"]


def _model():
    """A GP of `stress = x` on [0, 1], measured at 12 points of [0, 0.7]: the limit lies just beyond the data."""
    X = torch.linspace(0, 0.7, 12, dtype=torch.double).unsqueeze(-1)
    return fit_outcome_models(X, X.clone(), noise_sd=[0.01])


def test_two_close_designs_near_the_limit_keep_only_the_first():
    model = _model()
    X = torch.tensor([[0.745], [0.75], [0.3], [0.0]], dtype=torch.double)
    p = probability_safe(model, X, LIMIT, OUTCOMES)
    assert bool((p[:2] < NEAR_LIMIT).all()) and bool((p[2:] >= NEAR_LIMIT).all())  # the setting the rule is for
    assert float(safety_correlation(model, X[:1], X[1:2], LIMIT, OUTCOMES)) > MAX_CORRELATION
    # the second near-limit design shares the first's bet; the two far inside the safe region are exempt
    assert spread_mask(model, X, LIMIT, OUTCOMES).tolist() == [True, False, True, True]


def test_without_limits_or_far_apart_nothing_is_dropped():
    model = _model()
    X = torch.tensor([[0.745], [0.75]], dtype=torch.double)
    assert spread_mask(model, X, [], OUTCOMES).all()  # no limits: nothing to spread
    corr = safety_correlation(model, X[:1], torch.tensor([[0.0]], dtype=torch.double), LIMIT, OUTCOMES)
    assert float(corr) < MAX_CORRELATION


def test_admissible_candidates_exclude_those_correlated_with_the_batch_near_the_limit():
    model = _model()
    batch = torch.tensor([[0.745]], dtype=torch.double)
    candidates = torch.tensor([[0.75], [0.3], [0.748]], dtype=torch.double)
    assert spread_admissible(model, candidates, batch, LIMIT, OUTCOMES).tolist() == [False, True, False]
    assert spread_admissible(model, candidates, batch[:0], LIMIT, OUTCOMES).all()  # an empty batch admits all


def test_the_config_can_turn_the_rule_off():
    config = {
        "name": "spread",
        "parameters": [{"name": "x", "type": "continuous", "bounds": [0, 1]}],
        "objectives": [{"name": "y", "goal": "maximize"}],
        "safety": [{"name": "stress", "upper": 0.765}],
    }
    assert safety_rule(load_config(config)).spread
    assert not safety_rule(load_config({**config, "safety_spread": False})).spread
