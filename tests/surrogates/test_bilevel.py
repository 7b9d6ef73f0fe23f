import math

import pytest
import torch

from surrogates import NetworkSpec, NeuralEnsemble, TrainingOptions, monotonic, tune_physics_weight
from surrogates.bilevel import hypergradient, solve_hessian, tune_weight_ift


def _ridge(seed: int = 0, n: int = 12, d: int = 4, noise: float = 0.5):
    g = torch.Generator().manual_seed(seed)
    X, Xv = torch.randn(n, d, generator=g, dtype=torch.double), torch.randn(50, d, generator=g, dtype=torch.double)
    w_true = torch.randn(d, generator=g, dtype=torch.double)
    y = X @ w_true + noise * torch.randn(n, generator=g, dtype=torch.double)
    yv = Xv @ w_true + 0.1 * torch.randn(50, generator=g, dtype=torch.double)
    return X, y, Xv, yv, w_true


def _exact(X, y, lam, prior):
    n, d = X.shape
    return torch.linalg.solve(X.T @ X / n + lam * torch.eye(d, dtype=X.dtype), X.T @ y / n + lam * prior)


@pytest.mark.parametrize("solver", ["cg", "neumann"])
def test_hypergradient_matches_finite_difference_on_ridge(solver):
    X, y, Xv, yv, _ = _ridge()
    prior = torch.zeros(4, dtype=torch.double)

    def val_at(s):
        w = _exact(X, y, math.exp(s), prior)
        return float(((Xv @ w - yv) ** 2).mean())

    for s in (math.log(0.03), math.log(0.5)):
        w = _exact(X, y, math.exp(s), prior).requires_grad_(True)
        h = hypergradient(
            [w],
            lambda w=w: ((X @ w - y) ** 2).mean(),
            lambda w=w: (w**2).sum(),
            lambda w=w: ((Xv @ w - yv) ** 2).mean(),
            s,
            solver=solver,
            iters=4 if solver == "cg" else 400,
            damping=0.0,
        )
        fd = (val_at(s + 1e-5) - val_at(s - 1e-5)) / 2e-5
        assert h == pytest.approx(fd, rel=1e-6 if solver == "cg" else 2e-2, abs=1e-9)


def test_conjugate_gradient_solves_a_positive_definite_system():
    g = torch.Generator().manual_seed(1)
    B = torch.randn(6, 6, generator=g, dtype=torch.double)
    A, b = B @ B.T + torch.eye(6, dtype=torch.double), torch.randn(6, generator=g, dtype=torch.double)
    (x,) = solve_hessian(lambda v: [A @ v[0]], [b], "cg", iters=6, damping=0.0)
    assert torch.allclose(A @ x, b, atol=1e-8)
    with pytest.raises(ValueError, match="solver"):
        solve_hessian(lambda v: v, [b], "lbfgs")


def test_tuner_raises_a_helpful_physics_weight_from_a_small_start():
    # 8 noisy rows of a 6-parameter linear law; the "physics" pulls w towards the true law's weights
    X, y, Xv, yv, w_true = _ridge(seed=3, n=8, d=6, noise=1.0)
    w = torch.zeros(6, dtype=torch.double, requires_grad=True)
    result = tune_weight_ift(
        [w],
        lambda: ((X @ w - y) ** 2).mean(),
        lambda: ((w - w_true) ** 2).sum(),
        lambda: ((Xv @ w - yv) ** 2).mean(),
        weight=1e-2,
        bounds=(1e-3, 1e3),
        outer_steps=8,
        inner_steps=100,
        inner_lr=0.1,
        outer_lr=0.7,
    )
    steps = result.history
    assert (steps["hypergradient"].iloc[:-1] < 0).all()  # more weight always helps here
    assert steps["weight"].is_monotonic_increasing and result.weight > 0.3
    assert steps["val_loss"].iloc[-1] < 0.5 * steps["val_loss"].iloc[0]


def test_tune_physics_weight_ift_runs_on_an_ensemble():
    X = torch.linspace(0, 1, 12, dtype=torch.double).unsqueeze(-1)
    y = X[:, :1] + 0.05 * torch.sin(20 * X[:, :1])
    opts = TrainingOptions(epochs=5, validation_fraction=0.0, n_collocation=16)
    spec = NetworkSpec(hidden=(8,), activation="tanh")
    best, table_df = tune_physics_weight(
        monotonic(0),
        lambda t: NeuralEnsemble(2, spec, opts, physics=[t]).fit(X, y),
        X,
        y,
        grid=[0.1, 10.0],
        method="ift",
        train=(X, y),
        outer_steps=2,
        inner_steps=5,
    )
    assert list(table_df.columns) == ["weight", "val_nll", "val_rmse"] and len(table_df) == 3
    assert 0.1 <= best <= 10.0 and table_df["val_nll"].notna().all()
    assert best == table_df.loc[table_df["val_nll"].idxmin(), "weight"]
    with pytest.raises(ValueError, match="train="):
        tune_physics_weight(monotonic(0), lambda t: None, X, y, method="ift")
