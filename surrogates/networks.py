"""The member network of a neural ensemble: an MLP on tabular columns, with a 1-D CNN per sequence block."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

SequenceBlock = tuple[int, int, int]  # (start column, length L, alphabet size A)

_ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh}


def one_hot(sequences: Sequence[str], alphabet: str) -> Tensor:
    """Encode equal-length sequences as flat one-hot rows, position-major.

    Column `i * A + a` of a row is 1 when position `i` holds letter `alphabet[a]`, so a block
    of `L` positions over an alphabet of `A` letters takes `L * A` columns; pass
    `(start, L, A)` in `sequence_blocks` to let the ensemble's CNN read it.

    Args:
        sequences: `n` strings of the same length `L`.
        alphabet: The `A` letters, e.g. `"ACDEFGHIKLMNPQRSTVWY"`.

    Returns:
        A `n x (L * A)` double tensor.

    Raises:
        ValueError: If lengths differ or a letter is not in `alphabet`.

    Example:
        >>> one_hot(["AC", "CA"], "AC")
        tensor([[1., 0., 0., 1.],
                [0., 1., 1., 0.]], dtype=torch.float64)
    """
    lengths = {len(s) for s in sequences}
    if len(lengths) > 1:
        raise ValueError(
            f"`sequences` must all have the same length. Got lengths {sorted(lengths)} instead. "
            "Pad or trim them to one length."
        )
    index = {letter: a for a, letter in enumerate(alphabet)}
    unknown = sorted({c for s in sequences for c in s} - set(index))
    if unknown:
        raise ValueError(f"`sequences` must use only letters of {alphabet!r}. Got {unknown} instead.")
    length = lengths.pop() if lengths else 0
    codes = torch.tensor([[index[c] for c in s] for s in sequences], dtype=torch.long).reshape(-1, length)
    return nn.functional.one_hot(codes, len(alphabet)).reshape(len(sequences), -1).double()


@dataclass
class NetworkSpec:
    """Architecture of each ensemble member.

    Attributes:
        hidden: Widths of the MLP head's hidden layers.
        activation: `"silu"` (smooth; needed for second-derivative physics terms), `"relu"` or `"tanh"`.
        channels: Convolution channels per sequence block.
        kernel_size: Width of the convolution windows (odd).
        variance_floor: Smallest predicted variance, in standardized outcome units.
    """

    hidden: tuple[int, ...] = (64, 64)
    activation: str = "silu"
    channels: int = 32
    kernel_size: int = 5
    variance_floor: float = 1e-4

    def __post_init__(self) -> None:
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"`activation` must be one of {sorted(_ACTIVATIONS)}. Got {self.activation!r} instead.")


class SurrogateNet(nn.Module):
    """One member: CNN features of each sequence block + normalized tabular columns -> MLP -> outputs.

    Each sequence block's `L * A` columns are reshaped to `batch x A x L` and go through two
    convolutions; global max and mean pooling over positions make `2 * channels` features per
    block, which do not depend on where a motif sits. Weights get He (Kaiming normal)
    initialization, biases zero; the output layer is scaled down by 10 so that training
    starts near the mean of the (standardized) data.
    """

    def __init__(
        self,
        d: int,
        n_out: int,
        blocks: Sequence[SequenceBlock],
        spec: NetworkSpec,
        x_shift: Tensor,
        x_scale: Tensor,
    ) -> None:
        super().__init__()
        self.blocks = [tuple(int(v) for v in b) for b in blocks]
        in_block = {c for start, L, A in self.blocks for c in range(start, start + L * A)}
        self.tabular = [c for c in range(d) if c not in in_block]
        act = _ACTIVATIONS[spec.activation]
        pad = spec.kernel_size // 2
        self.cnns = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(A, spec.channels, spec.kernel_size, padding=pad),
                act(),
                nn.Conv1d(spec.channels, spec.channels, spec.kernel_size, padding=pad),
                act(),
            )
            for _, _, A in self.blocks
        )
        width = len(self.tabular) + 2 * spec.channels * len(self.blocks)
        layers: list[nn.Module] = []
        for h in spec.hidden:
            layers += [nn.Linear(width, h), act()]
            width = h
        self.head = nn.Sequential(*layers)
        self.out = nn.Linear(width, n_out)
        self.register_buffer("x_shift", x_shift[self.tabular].clone())
        self.register_buffer("x_scale", x_scale[self.tabular].clone())

    def reset_parameters(self, generator: torch.Generator) -> None:
        """He initialization from `generator` (so a seed fixes the weights)."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Conv1d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu", generator=generator)
                nn.init.zeros_(module.bias)
        with torch.no_grad():
            self.out.weight.mul_(0.1)

    def forward(self, X: Tensor) -> Tensor:
        """Map a `n x d` tensor to `n x n_out` raw outputs."""
        features = [(X[:, self.tabular] - self.x_shift) / self.x_scale]
        for (start, L, A), cnn in zip(self.blocks, self.cnns, strict=True):
            h = cnn(X[:, start : start + L * A].reshape(-1, L, A).transpose(1, 2))
            features += [h.amax(-1), h.mean(-1)]
        return self.out(self.head(torch.cat(features, dim=-1)))
