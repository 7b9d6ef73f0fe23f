"""Step-size control in ensemble training: the trainer's `MemberSteps` and the benchmark's controllers per member.

The PI controller and the curvature-safe step were measured and left out of `TrainingOptions`
(see there); they live in `benchmarks.training_step_control` and enter the trainer through `MemberSteps`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from benchmarks.training_step_control import ControlledSteps, TrainingStepControl, controlled
from surrogates import NetworkSpec, NeuralEnsemble, TrainingOptions


class Quadratics(nn.Module):
    """`M` members, member `k` with the loss `0.5 w_k^T A_k w_k` (member-stacked weights `M x d`)."""

    def __init__(self, A: torch.Tensor, w0: torch.Tensor) -> None:
        super().__init__()
        self.A = A
        self.w = nn.Parameter(w0.clone())

    def losses(self) -> torch.Tensor:
        return 0.5 * torch.einsum("ki,kij,kj->k", self.w, self.A, self.w)


def random_spd(M: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    Q = torch.linalg.qr(torch.randn(M, d, d, generator=g, dtype=torch.double))[0]
    eig = torch.rand(M, d, generator=g, dtype=torch.double) * torch.tensor([[1.0], [30.0], [300.0]])[:M]
    return Q @ torch.diag_embed(eig) @ Q.transpose(-1, -2)


def run(model: Quadratics, control: TrainingStepControl, lr: float, steps: int) -> tuple[ControlledSteps, list]:
    stepper = ControlledSteps(model, lr=lr, weight_decay=0.0, control=control)
    losses = []
    for _ in range(steps):
        stepper.optimizer.zero_grad()
        loss = model.losses()
        losses.append(loss.detach().clone())
        stepper.backward(loss.sum())
        stepper.step()
    return stepper, losses


def test_curvature_estimate_is_each_members_largest_eigenvalue_and_its_step_is_stable():
    A = random_spd(3, 6, seed=0)  # curvatures of very different sizes per member
    model = Quadratics(A, torch.ones(3, 6, dtype=torch.double))
    control = TrainingStepControl("curvature", every=1, iterations=10, max_step=10.0)
    stepper, losses = run(model, control, lr=1.0, steps=20)
    true = torch.linalg.eigvalsh(A)[:, -1].float()
    assert torch.allclose(stepper.lambda_max.float(), true, rtol=1e-2)
    assert torch.allclose(torch.as_tensor(stepper.lr()), 2 * control.safety / stepper.lambda_max)
    assert (torch.stack(losses).diff(dim=0) <= 1e-12).all()  # every member descends monotonically

    # one fixed step for all: the stable step of the flattest member makes the sharpest one diverge
    plain = Quadratics(A, torch.ones(3, 6, dtype=torch.double))
    _, sgd_losses = run(plain, TrainingStepControl("sgd"), lr=float(1.5 / true[0]), steps=20)
    assert sgd_losses[-1][2] > sgd_losses[0][2]


def test_pi_lengthens_a_short_step_and_shortens_one_that_overshoots():
    A = torch.eye(2, dtype=torch.double).expand(2, 2, 2)
    w0 = torch.tensor([[10.0, 10.0], [1e-3, 1e-3]], dtype=torch.double)  # far from the minimum / at it
    control = TrainingStepControl("pi", gains=(0.3, 0.1))
    stepper, _ = run(Quadratics(A, w0), control, lr=0.01, steps=30)
    factor = stepper.scale
    assert factor[0] > 2 and factor[1] < 1


def test_pi_steps_each_member_as_if_it_trained_alone():
    X = torch.rand(40, 2, generator=torch.Generator().manual_seed(0), dtype=torch.double)
    Y = torch.sin(3 * X[:, :1]) + X[:, 1:]
    options = dict(epochs=6, step_budget=None, batch_size=16, lr_schedule="constant")
    spec = NetworkSpec(hidden=(8,))
    with controlled(TrainingStepControl("pi")):
        batched = NeuralEnsemble(2, spec, TrainingOptions(**options), seed=0).fit(X, Y).history_
        alone = NeuralEnsemble(2, spec, TrainingOptions(batched=False, **options), seed=0).fit(X, Y).history_
    assert batched["lr"].nunique() > 2  # the members' steps moved, and apart
    np.testing.assert_allclose(batched["lr"], alone["lr"], rtol=1e-4)
    np.testing.assert_allclose(batched["val_loss"], alone["val_loss"], rtol=1e-3, atol=1e-5)


def test_the_trainer_records_each_members_step_size_and_pi_moves_them_apart():
    from surrogates import NeuralClassifierEnsemble

    X = torch.rand(60, 3, generator=torch.Generator().manual_seed(1))
    y = (X[:, 0] > 0.5).float()
    options = TrainingOptions(epochs=4, step_budget=None, validation_fraction=0.0, lr_schedule="constant")
    plain = NeuralClassifierEnsemble(2, NetworkSpec(hidden=(8,)), options, seed=0).fit(X, y)
    assert plain.history_["lr"].nunique() == 1  # AdamW: one step size for all members
    with controlled(TrainingStepControl("pi")):
        model = NeuralClassifierEnsemble(2, NetworkSpec(hidden=(8,)), options, seed=0).fit(X, y)
    assert torch.isfinite(model.predict_proba(X)).all()
    last = model.history_.groupby("member")["lr"].last()
    assert last.nunique() == 2 and np.isfinite(last).all()


def test_unknown_controller_is_refused_and_the_trainer_has_no_option_for_them():
    with pytest.raises(ValueError, match="kind"):
        TrainingStepControl("newton")
    with pytest.raises(TypeError):  # measured, and left out of the options (see `TrainingOptions`)
        TrainingOptions(step_control="pi")


def test_training_benchmark_scores_every_method_on_a_tiny_problem():
    from benchmarks.training_step_control import (
        TRAINING_METHODS,
        format_training_table,
        run_training_benchmark,
        summarize_training,
    )

    results = run_training_benchmark((0,), members=2, n_rows=60, step_budget=6, tolerance=0.5)
    assert list(results["method"]) == list(TRAINING_METHODS)
    assert results[["reached", "diverged"]].stack().between(0, 1).all()
    assert "sgd tuned" in format_training_table(summarize_training(results))
