"""Tests for the identifiability analysis of a GP's fitted mechanistic mean."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from surrogates import CustomMean, EmaxMean, fit_gp
from surrogates.identifiability import mean_identifiability
from surrogates.profile_likelihood import profile_likelihood


def emax_data(low: float, high: float, n: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy `1 + 10 D^1.5 / (30^1.5 + D^1.5)` at `n` log-spaced doses; inputs in the log cube over 1..100."""
    dose = torch.exp(torch.linspace(math.log(low), math.log(high), n, dtype=torch.double))
    noise = 0.05 * torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.double)
    y = 1 + 10 * dose**1.5 / (30**1.5 + dose**1.5) + noise
    return (torch.log(dose) / math.log(100.0)).unsqueeze(-1), y


def fit_emax(low: float, high: float):
    X, y = emax_data(low, high)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_gp(X, y, mean_module=EmaxMean(0, lower=1.0, upper=100.0, log=True))


@pytest.fixture(scope="module")
def below_ec50():
    return fit_emax(1.0, 6.0)  # doses far below EC50 = 30: the curve's lower power-law part


@pytest.fixture(scope="module")
def spanning():
    return fit_emax(1.0, 100.0)


def test_doses_far_below_ec50_flag_the_ec50_emax_pair(below_ec50):
    result = mean_identifiability(below_ec50)
    assert {"Emax", "EC50"} <= set(result.flagged)
    flat = result.directions[0]  # flattest first
    assert flat.flagged and flat.relative_se > 1
    assert flat.loadings["Emax"] > 0.3 and flat.loadings["EC50"] > 0.3  # they move together
    assert result.summary()[0].startswith(("Emax and EC50 move together", "EC50 and Emax move together"))
    assert "long flat valley along +0." in result.summary()[0]
    profile = profile_likelihood(below_ec50, "EC50", points=7, steps=15)
    assert not profile.bounded_high  # the profile is still flat a factor 10 above the fit


def test_doses_spanning_the_curve_pin_every_parameter_down(spanning):
    result = mean_identifiability(spanning)
    assert result.flagged == [] and result.identifiable
    assert result.summary()[0].startswith("Every parameter is pinned down")
    table = result.table().set_index("parameter")
    assert abs(table.loc["EC50", "value"] - 30) < 3 * table.loc["EC50", "se"]
    assert table.loc["EC50", "relative_se"] < 0.2 and table.loc["Emax", "relative_se"] < 0.2
    assert abs(table.loc["Emax", "value"] - 10) < 3 * table.loc["Emax", "se"]  # in the outcome's units
    profile = profile_likelihood(spanning, "EC50", points=7, steps=15)
    assert profile.bounded_low and profile.bounded_high and profile.low < 30 < profile.high


def test_hessian_is_in_user_units(spanning):
    """`H^-1` of the user-unit Hessian matches a finite-difference Hessian of the same likelihood."""
    from surrogates.identifiability import _Problem

    problem = _Problem(spanning)
    result = mean_identifiability(spanning)
    u0, h = problem.user0, 1e-4 * torch.as_tensor(result.scales)
    i, j = result.names.index("EC50"), result.names.index("Emax")

    def f(di: float, dj: float) -> float:
        u = u0.clone()
        u[i] += di * h[i]
        u[j] += dj * h[j]
        with torch.no_grad():
            return float(problem.nll_user(u))

    fd = (f(1, 1) - f(1, -1) - f(-1, 1) + f(-1, -1)) / (4 * float(h[i] * h[j]))
    assert fd == pytest.approx(result.hessian[i, j], rel=1e-3)


def test_a_deliberately_unidentifiable_custom_pair_is_named():
    X = torch.linspace(0, 1, 10, dtype=torch.double).unsqueeze(-1)
    y = 0.5 + 2 * X[:, 0] + 0.05 * torch.randn(10, generator=torch.Generator().manual_seed(1), dtype=torch.double)
    mean = CustomMean(lambda x, a, b, c: a + (b + c) * x[..., 0], {"a": 0.0, "b": 1.0, "c": 1.0})  # only b + c counts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gp = fit_gp(X, y, mean_module=mean)
    result = mean_identifiability(gp)
    assert result.flagged == ["b", "c"]  # the offset `a` is pinned down
    assert math.isinf(result.table().set_index("parameter").loc["b", "se"])
    flat = result.directions[0]
    assert flat.flagged and flat.loadings["b"] * flat.loadings["c"] < 0  # one up, the other down
    assert "b and c trade off" in flat.description or "c and b trade off" in flat.description


def test_a_mean_without_parameters_or_an_unknown_name_is_refused(spanning):
    from gpytorch.means import ZeroMean

    with pytest.raises(ValueError, match="name must be one of"):
        profile_likelihood(spanning, "ec50")
    X = torch.rand(6, 1, dtype=torch.double, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gp = fit_gp(X, X[:, 0], mean_module=ZeroMean())
    with pytest.raises(ValueError, match="mean module has fitted parameters"):
        mean_identifiability(gp)
