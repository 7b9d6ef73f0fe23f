"""The batch policy's safety rule: one place decides whether a design meets the confidence."""

from __future__ import annotations

import numpy as np
import torch
from botorch.models import SingleTaskGP

from design import SafetyLimit
from design.batch_policy import SafetyRule, first_of_duplicates, matches_any, meets_confidence


def test_meets_confidence_counts_an_unknown_p_safe_as_not_met():
    p = np.array([0.96, 0.95, 0.94, np.nan])
    assert meets_confidence(p, 0.95).tolist() == [True, True, False, False]


def test_a_rule_without_limits_lets_every_design_through_and_one_with_limits_judges_them():
    X = torch.linspace(0, 1, 21, dtype=torch.double).unsqueeze(-1)
    model = SingleTaskGP(X, 3 * X, train_Yvar=torch.full_like(X, 1e-6))  # stress = 3 x, known well
    assert not SafetyRule() and SafetyRule().meets(model, X, ["stress"]).all()
    rule = SafetyRule([SafetyLimit(name="stress", upper=1.5)], confidence=0.95)
    ok = rule.meets(model, X, ["stress"])
    assert ok[X[:, 0] < 0.45].all() and not ok[X[:, 0] > 0.55].any()


def test_duplicates_are_found_within_and_across_batches():
    X = torch.tensor([[0.1, 0.2], [0.3, 0.4], [0.1, 0.2]], dtype=torch.double)
    assert first_of_duplicates(X).tolist() == [True, True, False]
    assert matches_any(X, X[1:2]).tolist() == [False, True, False]
