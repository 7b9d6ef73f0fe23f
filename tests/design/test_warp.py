"""Tests for the outcome warps: bilog safety outcomes around their limits (SCBO), logged objectives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from design import Objective, SafetyLimit, limits_hold
from design.warp import OutcomeWarp, bilog, bilog_inverse

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
    warp = OutcomeWarp.of([Objective(name="y")], SAFETY)
    assert [limit.name for limit in warp.limits] == ["stress", "temp"]
    as_objective = OutcomeWarp.of([Objective(name="stress")], SAFETY)
    assert [limit.name for limit in as_objective.limits] == ["temp"]
    known_noise = OutcomeWarp.of([], [SafetyLimit(name="stress", upper=2.0, noise_sd=0.1)])
    assert known_noise.limits == ()


def test_a_limit_holds_on_the_model_scale_exactly_when_it_holds_in_the_outcomes_units():
    rng = np.random.default_rng(0)
    Y = torch.tensor(rng.normal(0.0, 5.0, size=(200, 4)))
    warp = OutcomeWarp.of([Objective(name="y")], SAFETY)
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
    warp = OutcomeWarp.of([], SAFETY[:2])
    Y = torch.tensor([[0.0, 7.0, -3.0, 0.0], [0.0, -40.0, 5.0, 0.0]], dtype=torch.double)
    Y_model = warp.apply(Y, OUTCOMES).numpy()
    sd = np.full_like(Y_model, 0.01)
    mean, sd_back = warp.invert(Y_model, sd, OUTCOMES)
    assert np.allclose(mean[:, 1:3], Y[:, 1:3].numpy())
    # delta method: a small sd on the model scale is the slope of the inverse map times it
    z = Y_model[:, 1]
    slope = (bilog_inverse(torch.tensor(z + 1e-6)) - bilog_inverse(torch.tensor(z - 1e-6))).numpy() / 2e-6
    assert np.allclose(sd_back[:, 1], 0.01 * slope, rtol=1e-4)


def _logged(objective: Objective, values: list[float]) -> tuple[str, ...]:
    Y = torch.tensor(values, dtype=torch.double).reshape(-1, 1)
    return OutcomeWarp.of([objective], [], Y, [objective.name]).logged


def test_a_positive_objective_spanning_ten_times_is_logged_unless_told_otherwise():
    cost = Objective(name="cost", goal="minimize")
    assert _logged(cost, [2.0, 30.0, float("nan")]) == ("cost",)  # 15x; a failed run is ignored
    assert _logged(cost, [2.0, 19.0]) == ()  # 9.5x
    assert _logged(cost, [-1.0, 30.0]) == ()  # not positive
    assert _logged(Objective(name="cost", log=True), [2.0, 3.0]) == ("cost",)
    assert _logged(Objective(name="cost", log=False), [2.0, 300.0]) == ()
    assert _logged(Objective(name="cost", goal="target", target=5.0), [2.0, 300.0]) == ()
    assert _logged(Objective(name="cost", noise_sd=0.1), [2.0, 300.0]) == ()
    assert _logged(Objective(name="cost", reference=-1.0), [2.0, 300.0]) == ()
    limited = OutcomeWarp.of([cost], [SafetyLimit(name="cost", upper=100.0)], torch.tensor([[2.0], [300.0]]), ["cost"])
    assert limited.logged == ()  # its limit is judged in its own units


def test_a_logged_objective_is_log_on_the_model_scale_and_lognormal_back():
    warp = OutcomeWarp(logged=("y",))
    Y = torch.tensor([[1.0, 5.0], [100.0, -5.0]], dtype=torch.double)
    assert torch.allclose(warp.apply(Y, ["y", "x"]), torch.tensor([[0.0, 5.0], [np.log(100.0), -5.0]]))
    mu, s = np.array([[np.log(100.0), 0.0]]), np.array([[0.5, 1.0]])
    mean, sd = warp.invert(mu, s, ["y", "x"])
    draws = np.exp(np.random.default_rng(0).normal(np.log(100.0), 0.5, 400_000))
    assert np.isclose(mean[0, 0], draws.mean(), rtol=5e-3) and np.isclose(sd[0, 0], draws.std(), rtol=1e-2)
    assert (mean[0, 1], sd[0, 1]) == (0.0, 1.0)
    with_reference = warp.model_objectives([Objective(name="y", reference=100.0), Objective(name="x", reference=3.0)])
    assert [o.reference for o in with_reference] == [np.log(100.0), 3.0]
