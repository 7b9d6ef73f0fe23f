"""The reference methods of the published benchmark: MLP, neural adjoint and k-NN lookup."""

from __future__ import annotations

import torch

from benchmarks.inverse_baselines import knn_designs, neural_adjoint, train_mlp

torch.set_num_threads(1)


def plane(X):
    return torch.stack([X[:, 0] + X[:, 1], X[:, 0] - 2 * X[:, 2]], dim=-1)


def test_mlp_learns_a_smooth_map_and_has_a_botorch_like_posterior():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(400, 3, generator=g, dtype=torch.double)
    model = train_mlp(X, plane(X), hidden=(32, 32), epochs=60, seed=0)
    X_test = torch.rand(100, 3, generator=g, dtype=torch.double)
    posterior = model.posterior(X_test.unsqueeze(-2))
    assert posterior.mean.shape == (100, 1, 2) and (posterior.variance == 0).all()
    rmse = ((posterior.mean.squeeze(-2) - plane(X_test)) ** 2).mean().sqrt()
    assert rmse < 0.05 * plane(X_test).std()


class Exact(torch.nn.Module):
    def forward(self, X):
        return plane(X.reshape(-1, 3)).reshape(*X.shape[:-1], 2)


def test_neural_adjoint_returns_designs_in_the_box_that_reach_each_target():
    targets = plane(torch.tensor([[0.2, 0.3, 0.1], [0.7, 0.1, 0.4]], dtype=torch.double))
    designs = neural_adjoint(Exact(), targets, d=3, T=4, starts=32, steps=200, lr=0.02, seed=0)
    assert designs.shape == (2, 4, 3) and (designs >= 0).all() and (designs <= 1).all()
    error = ((plane(designs.reshape(-1, 3)).reshape(2, 4, 2) - targets[:, None]) ** 2).mean(-1)
    assert error.max() < 1e-4 and (error[:, 0] <= error.max(-1).values).all()  # lowest loss first


def test_knn_returns_the_training_rows_nearest_each_target():
    X = torch.rand(50, 3, generator=torch.Generator().manual_seed(1), dtype=torch.double)
    Y = plane(X)
    designs = knn_designs(X, Y, Y[[4, 9]], T=3)
    assert designs.shape == (2, 3, 3)
    assert torch.equal(designs[0, 0], X[4]) and torch.equal(designs[1, 0], X[9])
