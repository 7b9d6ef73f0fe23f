"""The member network of a neural ensemble: an MLP on tabular columns, with a 1-D CNN per sequence block."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

_PAIR_INIT = 0.1  # small couplings at the start: factorized weights then learn low-rank structure first
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
        pair_channels: Pairwise (Potts-like) features per sequence block, 0 for none. Channel `c`
            is `sum_{i,j} J_c[i, j] * p_i^T W_c p_j` over positions `i, j` with `p_i` the (relaxed)
            one-hot letter at position `i`, a learned position-pair coupling `J_c` (`L x L`,
            symmetric, zero diagonal) and a learned symmetric letter-pair matrix `W_c` (`A x A`):
            the form of contact energies and of Potts models, which a convolution with pooling
            only approximates. They join the CNN features in the MLP head and also reach the
            outputs through a linear skip connection (so that the model extrapolates like an energy).
        pair_rank: Rank `r` of the letter-pair matrices, `W_c = E B_c E^T` with a letter embedding
            `E` (`A x r`) shared by the channels; 0 for full `A x A` matrices.
        dropout: Dropout probability before each hidden layer of the MLP head (0: none).
        shared_encoder: Sequence blocks of the same shape share one CNN (a siamese encoder, e.g.
            for the two proteins of a pair): half the weights, and a motif learned in one
            sequence is recognized in the other.
    """

    hidden: tuple[int, ...] = (64, 64)
    activation: str = "silu"
    channels: int = 32
    kernel_size: int = 5
    variance_floor: float = 1e-4
    pair_channels: int = 0
    pair_rank: int = 0
    dropout: float = 0.0
    shared_encoder: bool = False

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

        def encoder(A: int) -> nn.Module:
            return nn.Sequential(
                nn.Conv1d(A, spec.channels, spec.kernel_size, padding=pad),
                act(),
                nn.Conv1d(spec.channels, spec.channels, spec.kernel_size, padding=pad),
                act(),
            )

        self.cnns = nn.ModuleList(encoder(A) for _, _, A in self.blocks)
        if spec.shared_encoder:  # one module per shape, the same object in every block of that shape
            first: dict[tuple[int, int], nn.Module] = {}
            for k, (_, L, A) in enumerate(self.blocks):
                self.cnns[k] = first.setdefault((L, A), self.cnns[k])
        self.pairs = nn.ModuleList(PairFeatures(L, A, spec.pair_channels, spec.pair_rank) for _, L, A in self.blocks)
        width = len(self.tabular) + (2 * spec.channels + spec.pair_channels) * len(self.blocks)
        layers: list[nn.Module] = []
        for h in spec.hidden:
            layers += ([nn.Dropout(spec.dropout)] if spec.dropout > 0 else []) + [nn.Linear(width, h), act()]
            width = h
        self.head = nn.Sequential(*layers)
        self.out = nn.Linear(width, n_out)
        n_pair = spec.pair_channels * len(self.blocks)
        self.skip = nn.Linear(n_pair, n_out) if n_pair else None
        self.register_buffer("x_shift", x_shift[self.tabular].clone())
        self.register_buffer("x_scale", x_scale[self.tabular].clone())

    def reset_parameters(self, generator: torch.Generator) -> None:
        """He initialization from `generator` (so a seed fixes the weights)."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Conv1d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu", generator=generator)
                nn.init.zeros_(module.bias)
            elif isinstance(module, PairFeatures):
                module.reset_parameters(generator)
        with torch.no_grad():
            self.out.weight.mul_(0.1)

    def forward(self, X: Tensor) -> Tensor:
        """Map a `n x d` tensor to `n x n_out` raw outputs."""
        features = [(X[:, self.tabular] - self.x_shift) / self.x_scale]
        for (start, L, A), cnn, pair in zip(self.blocks, self.cnns, self.pairs, strict=True):
            P = X[:, start : start + L * A].reshape(-1, L, A)
            h = cnn(P.transpose(1, 2))
            features += [h.amax(-1), h.mean(-1)]
            if pair.channels:
                features.append(pair(P))
        out = self.out(self.head(torch.cat(features, dim=-1)))
        if self.skip is not None:
            out = out + self.skip(torch.cat(features[-len(self.blocks) :], dim=-1))
        return out


class PairFeatures(nn.Module):
    """`C` pairwise features of a `n x L x A` (relaxed) one-hot block: `sum_ij J_c[i,j] p_i^T W_c p_j`.

    `J_c` is made symmetric with a zero diagonal and `W_c` symmetric, so each channel is a
    quadratic form in the one-hot encoding (a Potts-model energy with couplings `J_c[i,j] W_c`).
    Differentiable in the input, so gradient design over relaxed sequences sees it.
    """

    def __init__(self, L: int, A: int, channels: int, rank: int = 0) -> None:
        super().__init__()
        self.channels, self.rank = channels, rank
        self.J = nn.Parameter(torch.zeros(channels, L, L))
        r = rank or A
        self.W = nn.Parameter(torch.zeros(channels, r, r))
        self.E = nn.Parameter(torch.zeros(A, rank)) if rank else None
        self.register_buffer("off_diagonal", 1.0 - torch.eye(L))

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Small random couplings (a tenth of unit scale).

        Started small, the factorized couplings `J_c` and `W_c` grow their leading directions
        first (the implicit low-rank bias of small initialization), so that the model learns a
        contact-energy-like form instead of memorizing the training rows.
        """
        L = self.J.shape[-1]
        with torch.no_grad():
            self.J.copy_(_PAIR_INIT * torch.randn(self.J.shape, generator=generator) / L**0.5)
            self.W.copy_(_PAIR_INIT * torch.randn(self.W.shape, generator=generator) / 2.0)
            if self.E is not None:
                self.E.copy_(torch.randn(self.E.shape, generator=generator) / self.rank**0.5)

    def forward(self, P: Tensor) -> Tensor:
        J = 0.5 * (self.J + self.J.transpose(1, 2)) * self.off_diagonal
        W = 0.5 * (self.W + self.W.transpose(1, 2))
        if self.E is not None:
            P = P @ self.E  # letters embedded: n x L x r
        return torch.einsum("nia,cab,njb,cij->nc", P, W, P, J)
