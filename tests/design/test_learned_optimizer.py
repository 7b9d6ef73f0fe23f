"""The learned optimizer of inverse design: meta-training, its steps in the descent, saving and loading."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from design import InputError
from design.inverse import InverseOptions, inverse_design
from design.inverse.descent import Descent
from design.inverse.goals import Goal
from design.inverse.learned import LearnedOptimizer, MetaTraining, load_learned, meta_train, save_learned
from design.inverse.relax import RelaxedDesigns
from design.inverse.score import Scorer
from design.parameters import ContinuousParameter
from design.space import SearchSpace

torch.set_num_threads(1)
SPACE = SearchSpace([ContinuousParameter(name=f"x{i}", bounds=(0, 1)) for i in range(2)])
TOLERANCE = 0.01
SETTINGS = MetaTraining(iterations=60, unroll=10, horizon=30, targets=8, starts=4)


class Analytic:
    """A noise-free surrogate of an exact map (`posterior(X).mean` is `f(X)`)."""

    def __init__(self, f) -> None:  # noqa: ANN001
        self.f, self.num_outputs = f, 2

    def posterior(self, X: torch.Tensor, observation_noise: bool = False) -> SimpleNamespace:
        Y = self.f(X)
        return SimpleNamespace(mean=Y, variance=torch.zeros_like(Y))


def skewed(X: torch.Tensor) -> torch.Tensor:
    """The training family's map: mildly nonlinear and ill-conditioned (scales 1 and 8)."""
    return torch.stack([X[..., 0] + 0.3 * torch.sin(3 * X[..., 1]), 8.0 * X[..., 1] - X[..., 0] ** 2], dim=-1)


def banana(X: torch.Tensor) -> torch.Tensor:
    """A held-out family: Rosenbrock's residuals on `[-2, 2]^2`."""
    x = 4.0 * X - 2.0
    return torch.stack([10.0 * (x[..., 1] - x[..., 0] ** 2), 1.0 - x[..., 0]], dim=-1)


def family(f):  # noqa: ANN001, ANN201
    """Targets of a map: its images of random points inside the square."""

    def sample(count: int, seed: int) -> torch.Tensor:
        U = torch.rand(count, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.double)
        return f(0.1 + 0.8 * U)

    return sample


@pytest.fixture(scope="module")
def learned() -> LearnedOptimizer:
    return meta_train(Analytic(skewed), SPACE, family(skewed), TOLERANCE, SETTINGS, seed=0)


def final_losses(f, optimizer, control: str = "adam", lr: float = 0.05, steps: int = 30) -> torch.Tensor:  # noqa: ANN001
    """Per start: the target loss after `steps` steps towards 6 held-out targets of `f`'s family (4 starts each)."""
    targets = family(f)(6, 999)
    row = torch.arange(6).repeat_interleave(4)
    goals = [Goal(f"y{j}", "target", targets[row, j], torch.full((24,), TOLERANCE)) for j in range(2)]
    scorer = Scorer(Analytic(f), goals, ["y0", "y1"], torch.ones(2, dtype=torch.double), kappa=0.0)
    relaxed = RelaxedDesigns(SPACE, SPACE.sample(4, seed=1).repeat(6, 1))
    run = Descent(relaxed, steps, lr, 1, (1.0, 1.0), 0, control=control, optimizer=optimizer)
    for step in range(steps):
        run.step(step, scorer.terms)
    with torch.no_grad():
        return scorer.terms(relaxed.X())[0].sum(-1)


def test_meta_training_improves_on_the_untrained_network(learned: LearnedOptimizer):
    assert torch.tensor(learned.meta_losses_).isfinite().all()
    assert final_losses(skewed, learned).median() < final_losses(skewed, LearnedOptimizer(seed=0)).median()


def test_learned_optimizer_beats_every_fixed_step_on_its_training_family(learned: LearnedOptimizer):
    ours = final_losses(skewed, learned).median()
    for lr in (1e-5, 1e-4, 1e-3, 1e-2):  # a grid of fixed steps of projected gradient descent
        assert ours < final_losses(skewed, "adam", control="gd", lr=lr).median()


def test_learned_optimizer_stays_finite_and_descends_on_a_held_out_family(learned: LearnedOptimizer):
    losses = final_losses(banana, learned, steps=60)
    assert losses.isfinite().all()
    start = final_losses(banana, learned, steps=1)
    assert losses.median() < start.median()


def test_saved_weights_load_with_weights_only_and_step_alike(learned: LearnedOptimizer, tmp_path):
    path = tmp_path / "learned.pt"
    save_learned(learned, path, key="abc")
    loaded = load_learned(path, key="abc")
    assert loaded is not None
    assert torch.equal(final_losses(skewed, loaded), final_losses(skewed, learned))
    assert load_learned(path, key="other data") is None  # stale: retrain
    path.write_bytes(b"not a checkpoint")
    assert load_learned(path) is None


def test_inverse_design_takes_the_learned_optimizer_and_amsgrad(learned: LearnedOptimizer):
    goals = ["y0=target:0.6±0.01", "y1=target:3.0±0.05"]
    for optimizer in (learned, "amsgrad"):
        options = InverseOptions(steps=40, optimizer=optimizer)
        designs_df = inverse_design(
            Analytic(skewed), SPACE, goals, n=2, starts=48, outcomes=["y0", "y1"], options=options
        )
        assert designs_df["all_met"].iloc[0]
    with pytest.raises(InputError, match="optimizer must be one of"):
        inverse_design(Analytic(skewed), SPACE, goals, outcomes=["y0", "y1"], options=InverseOptions(optimizer="sgd"))
