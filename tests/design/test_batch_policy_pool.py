"""The batch policy over a lab's candidate list: rows measured or pending are never proposed again."""

from __future__ import annotations

import pytest
import torch
from botorch.models import ModelListGP, SingleTaskGP

from design import SafetyLimit
from design.batch_policy import BatchRequest, SafetyRule, choose_batch, matches_any
from design.goals import Objective
from design.parameters import ContinuousParameter
from design.space import SearchSpace
from surrogates import fit_outcome_models

pytestmark = pytest.mark.filterwarnings("ignore::botorch.exceptions.InputDataWarning")  # unstandardized on purpose


def _request(mode: str, confidence: float) -> tuple[ModelListGP, BatchRequest]:
    """1-D: maximize f = x, margin = 1 - 10 (x - 0.2)^2 >= 0.5; safest at the measured rows; a pool of 21."""
    X = torch.tensor([[0.1], [0.2], [0.3]], dtype=torch.double)
    Y = torch.cat([X, 1 - 10 * (X - 0.2) ** 2], dim=-1)
    gps = [SingleTaskGP(X, Y[:, [j]], torch.full_like(X, 1e-4), outcome_transform=None) for j in range(2)]
    for gp in gps:  # far from the data the margin reverts to 0: unsafe
        gp.covar_module.lengthscale = 0.1
    model = ModelListGP(*gps)
    rule = SafetyRule([SafetyLimit(name="margin", lower=0.5)], confidence=confidence, mode=mode)  # type: ignore[arg-type]
    request = BatchRequest(
        space=SearchSpace([ContinuousParameter(name="x", bounds=(0, 1))]),
        objectives=[Objective(name="f")],
        outcomes=["f", "margin"],
        rule=rule,
        X=X,
        Y=Y,
        X_safe=X,
        X_pending=torch.tensor([[0.25]], dtype=torch.double),
        X_pool=torch.linspace(0, 1, 21, dtype=torch.double).unsqueeze(-1),  # the whole list: 0.1, 0.2, 0.25, 0.3 in it
        mc_samples=32,
    )
    return model, request


@pytest.mark.parametrize(("mode", "confidence"), [("probabilistic", 0.9999), ("safe_set", 0.95)])
def test_a_pool_passed_whole_never_gets_its_measured_or_pending_rows_back(mode, confidence):
    model, request = _request(mode, confidence)
    notes: list[str] = []
    batch = choose_batch(model, request, 4, seed=0, notes=notes)  # few rows or none confident: the top-up runs
    taken = torch.cat([request.X, request.X_pending])
    assert len(batch.roles) > 0 and not matches_any(batch.X, taken).any()
    assert matches_any(batch.X, request.X_pool).all()  # rows of the pool only, never steps beside it


def test_a_pool_with_every_row_taken_proposes_nothing_and_says_so():
    model, request = _request("probabilistic", 0.95)
    request.X_pool = torch.cat([request.X, request.X_pending])
    notes: list[str] = []
    batch = choose_batch(model, request, 2, seed=0, notes=notes)
    assert batch.X.shape[0] == 0 and "nothing is left to propose" in notes[0]


def test_rows_of_a_long_list_match_themselves_exactly():  # cdist's matrix-product shortcut missed 5 of these 30
    A = torch.rand(200, 3, generator=torch.Generator().manual_seed(0), dtype=torch.double)
    assert matches_any(A, A[50:80]).nonzero().squeeze(-1).tolist() == list(range(50, 80))


def test_a_pool_pick_is_the_best_row_that_meets_the_confidence_however_close_to_the_limit():
    # maximize y = x under stress = x <= 0.765: the best confident row is the largest x that meets 0.95
    x = torch.linspace(0, 0.7, 12, dtype=torch.double).unsqueeze(-1)
    Y = torch.cat([x, x], dim=-1)
    model = fit_outcome_models(x, Y, noise_sd=[0.01, 0.01])
    rule = SafetyRule([SafetyLimit(name="stress", upper=0.765)], confidence=0.95)
    pool = torch.linspace(0.5, 0.8, 61, dtype=torch.double).unsqueeze(-1)
    request = BatchRequest(
        SearchSpace([ContinuousParameter(name="x", bounds=(0, 1))]),
        [Objective(name="y")],
        ["y", "stress"],
        rule,
        x,
        Y,
        X_safe=x,
        X_pool=pool,
        mc_samples=32,
    )
    confident = pool[rule.meets(model, pool, request.outcomes)]
    batch = choose_batch(model, request, 1, seed=0, notes=[])
    # the rule already keeps every pick confident: a barrier against P(safe) near 0.95 would pass over this row
    assert float(batch.X[0, 0]) == float(confident.max())
    assert 0.95 <= float(rule.p_safe(model, batch.X, request.outcomes)[0]) < 0.96
