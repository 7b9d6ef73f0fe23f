"""Tests for the bilog warp of safety outcomes around their limits (SCBO)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from design import Objective, SafetyLimit, limits_hold
from design.warp import SafetyWarp, bilog, bilog_inverse

OUTCOMES = ["y", "stress", "temp", "both"]
SAFETY = [
    SafetyLimit(name="stress", upper=2.0),
    SafetyLimit(name="temp", lower=-1.0, confidence=0.9),
    SafetyLimit(name="both", lower=0.0, upper=1.0),
]


def test_bilog_keeps_the_sign_damps_large_values_and_inverts():
    y = torch.tensor([-1e4, -2.0, -1e-3, 0.0, 1e-3, 3.0, 1e5], dtype=torch.double)
    z = bilog(y)
    assert torch.equal(torch.sign(z), torch.sign(y))
    assert float(z.abs().max()) < 12.0
    assert torch.allclose(bilog_inverse(z), y, rtol=1e-12)


def test_only_one_sided_limits_of_non_objectives_without_known_noise_are_warped():
    warp = SafetyWarp.of([Objective(name="y")], SAFETY)
    assert [limit.name for limit in warp.limits] == ["stress", "temp"]
    as_objective = SafetyWarp.of([Objective(name="stress")], SAFETY)
    assert [limit.name for limit in as_objective.limits] == ["temp"]
    known_noise = SafetyWarp.of([], [SafetyLimit(name="stress", upper=2.0, noise_sd=0.1)])
    assert known_noise.limits == ()


def test_a_limit_holds_on_the_model_scale_exactly_when_it_holds_in_the_outcomes_units():
    rng = np.random.default_rng(0)
    Y = torch.tensor(rng.normal(0.0, 5.0, size=(200, 4)))
    warp = SafetyWarp.of([Objective(name="y")], SAFETY)
    model_limits = warp.model_limits(SAFETY)
    assert [(s.lower, s.upper) for s in model_limits] == [(None, 0.0), (None, 0.0), (0.0, 1.0)]
    assert [s.confidence for s in model_limits] == [s.confidence for s in SAFETY]
    Y_model = warp.apply(Y, OUTCOMES)
    assert torch.equal(Y_model[:, [0, 3]], Y[:, [0, 3]])  # objective and two-sided limit untouched
    original = limits_hold(SAFETY, pd.DataFrame(Y.numpy(), columns=OUTCOMES))
    warped = limits_hold(model_limits, pd.DataFrame(Y_model.numpy(), columns=OUTCOMES))
    assert original.any() and not original.all()
    assert np.array_equal(original, warped)


def test_predictions_map_back_to_the_outcomes_units():
    warp = SafetyWarp.of([], SAFETY[:2])
    Y = torch.tensor([[0.0, 7.0, -3.0, 0.0], [0.0, -40.0, 5.0, 0.0]], dtype=torch.double)
    Y_model = warp.apply(Y, OUTCOMES).numpy()
    sd = np.full_like(Y_model, 0.01)
    mean, sd_back = warp.invert(Y_model, sd, OUTCOMES)
    assert np.allclose(mean[:, 1:3], Y[:, 1:3].numpy())
    # delta method: a small sd on the model scale is the slope of the inverse map times it
    z = Y_model[:, 1]
    slope = (bilog_inverse(torch.tensor(z + 1e-6)) - bilog_inverse(torch.tensor(z - 1e-6))).numpy() / 2e-6
    assert np.allclose(sd_back[:, 1], 0.01 * slope, rtol=1e-4)
