"""Reference methods for inverse design on continuous problems: a plain MLP, the neural adjoint and k-NN lookup.

- `MLPSurrogate` / `train_mlp`: one multilayer perceptron trained on the mean squared error of
  standardized outcomes (no variance head), with a `posterior` like a botorch model's (zero
  variance), so that `inverse_design` can use it as well.
- `neural_adjoint`: the neural adjoint of Ren, Padilla and Malof (NeurIPS 2020): many random
  starts descend, by Adam, the squared error between the network's prediction and the target plus
  a boundary loss that keeps them in the box; the designs with the lowest loss are kept.
- `knn_designs`: the training designs whose measured outcomes are nearest to each target
  (`sklearn.neighbors.NearestNeighbors`).

Every method works on encoded designs (the unit cube of a `SearchSpace`) and takes many targets at
once: `targets` is a `B x m` tensor and the designs come back as a `B x T x d` tensor, best first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors
from torch import Tensor, nn


@dataclass
class MeanVariance:
    """A posterior reduced to what `inverse_design` reads: `mean` and `variance` (`... x n x m`)."""

    mean: Tensor
    variance: Tensor


class MLPSurrogate(nn.Module):
    """An MLP from unit-cube designs to outcomes (standardized inside); `posterior` has zero variance.

    Args:
        d: Number of design columns.
        m: Number of outcomes.
        hidden: Widths of the hidden layers.
        y_mean: `m` outcome means (for the standardization).
        y_std: `m` outcome standard deviations.
    """

    y_mean: Tensor  # buffers
    y_std: Tensor

    def __init__(self, d: int, m: int, hidden: tuple[int, ...], y_mean: Tensor, y_std: Tensor):
        super().__init__()
        widths = [d, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.SiLU()]
        self.net = nn.Sequential(*layers, nn.Linear(widths[-1], m))  # float32: ample for the outcomes' precision
        self.register_buffer("y_mean", y_mean.double())
        self.register_buffer("y_std", y_std.double())
        self.num_outputs = m

    def forward(self, X: Tensor) -> Tensor:
        """Outcomes (double) in their own units for `... x d` designs in the unit cube (`2 X - 1` goes in)."""
        return self.net((2.0 * X - 1.0).float()).double() * self.y_std + self.y_mean

    def posterior(
        self, X: Tensor, output_indices: list[int] | None = None, *, observation_noise: bool = False
    ) -> MeanVariance:
        """Mean `forward(X)` and zero variance, shaped like a botorch posterior's (`... x n x m`)."""
        mean = self(X) if output_indices is None else self(X)[..., output_indices]
        return MeanVariance(mean, torch.zeros_like(mean))


def train_mlp(
    X: Tensor,
    Y: Tensor,
    hidden: tuple[int, ...] = (256, 256, 256),
    epochs: int = 300,
    batch_size: int = 256,
    lr: float = 3e-3,
    seed: int = 0,
) -> MLPSurrogate:
    """Train an `MLPSurrogate` on the mean squared error (Adam, cosine-annealed step size, all rows).

    Args:
        X: `N x d` designs in the unit cube.
        Y: `N x m` outcomes.
        hidden: Widths of the hidden layers.
        epochs: Passes over the rows.
        batch_size: Rows per step.
        lr: Peak step size.
        seed: Seed of the initialization and the shuffling.

    Returns:
        The trained network, in evaluation mode.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = MLPSurrogate(X.shape[-1], Y.shape[-1], hidden, Y.mean(0), Y.std(0).clamp(min=1e-12))
    X, Z = (2.0 * X - 1.0).float(), ((Y.double() - model.y_mean) / model.y_std).float()
    steps = epochs * int(np.ceil(len(X) / batch_size))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=lr * 1e-3)
    with torch.enable_grad():
        for _ in range(epochs):
            for rows in torch.randperm(len(X), generator=generator).split(batch_size):
                loss = ((model.net(X[rows]) - Z[rows]) ** 2).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
    return model.eval()


def neural_adjoint(
    model: nn.Module,
    targets: Tensor,
    d: int,
    T: int = 10,
    starts: int = 256,
    steps: int = 300,
    lr: float = 0.01,
    seed: int = 0,
) -> Tensor:
    """The neural adjoint (Ren et al. 2020): descend prediction error plus boundary loss from random starts.

    Args:
        model: A network from `... x d` unit-cube designs to `... x m` outcomes (`model(X)`).
        targets: `B x m` target outcomes.
        d: Number of design columns.
        T: Designs kept per target (the lowest loss under the network).
        starts: Random starts per target.
        steps: Adam steps.
        lr: Adam's step size.
        seed: Seed of the starts.

    Returns:
        A `B x min(T, starts) x d` tensor of designs in the unit cube, lowest loss first.
    """
    B = targets.shape[0]
    generator = torch.Generator().manual_seed(seed)
    X = torch.rand(B, starts, d, generator=generator, dtype=torch.double).requires_grad_(True)
    optimizer = torch.optim.Adam([X], lr=lr)
    goal = targets.double()[:, None, :]
    scale = model.y_std if hasattr(model, "y_std") else torch.ones(targets.shape[-1], dtype=torch.double)

    def loss_of(X: Tensor) -> Tensor:
        error = (((model(X) - goal) / scale) ** 2).mean(-1)
        boundary = torch.relu((X - 0.5).abs() - 0.5).sum(-1)  # zero inside the box
        return error + boundary

    with torch.enable_grad():
        for _ in range(steps):
            loss = loss_of(X)
            optimizer.zero_grad()
            loss.sum().backward()
            optimizer.step()
    with torch.no_grad():
        X = X.detach().clamp(0.0, 1.0)
        order = torch.argsort(loss_of(X), dim=-1)[:, :T]
    return torch.gather(X, 1, order[..., None].expand(B, order.shape[1], d))


def knn_designs(train_X: Tensor, train_Y: Tensor, targets: Tensor, T: int = 10) -> Tensor:
    """The `T` training designs whose outcomes are nearest each target (outcomes standardized).

    Args:
        train_X: `N x d` training designs.
        train_Y: `N x m` their outcomes.
        targets: `B x m` target outcomes.
        T: Designs per target.

    Returns:
        A `B x T x d` tensor, nearest first.
    """
    scale = train_Y.std(0).clamp(min=1e-12)
    index = NearestNeighbors(n_neighbors=T).fit((train_Y / scale).numpy())
    _, rows = index.kneighbors((targets / scale).numpy())
    return train_X[torch.as_tensor(rows)]
