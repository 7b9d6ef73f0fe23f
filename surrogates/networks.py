"""The member network of a neural ensemble: an MLP on tabular columns, with a 1-D CNN per sequence block."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

import torch
from torch import Tensor, nn

_PAIR_INIT = 0.1  # small couplings at the start: factorized weights then learn low-rank structure first
SequenceBlock = tuple[int, int, int]  # (start column, length L, alphabet size A)

_ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh}
_T = TypeVar("_T")


def _as(kind: type[_T], value: object) -> _T:
    """`value`, checked to be a `kind`: a layer or weight that the architecture guarantees."""
    if not isinstance(value, kind):
        raise TypeError(f"Expected a {kind.__name__}. Got {type(value).__name__} instead.")
    return value


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

    x_shift: Tensor  # buffers
    x_scale: Tensor

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
        self.spec = spec
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
            layers += [nn.Linear(width, h), act()]
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
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, PairFeatures):
                module.reset_parameters(generator)
        with torch.no_grad():
            self.out.weight.mul_(0.1)

    def forward(self, X: Tensor) -> Tensor:
        """Map a `n x d` tensor to `n x n_out` raw outputs."""
        features = [(X[:, self.tabular] - self.x_shift) / self.x_scale]
        pairwise = []  # each block's pairwise features: the skip layer's input
        for (start, L, A), cnn, pair in zip(self.blocks, self.cnns, self.pairs, strict=True):
            P = X[:, start : start + L * A].reshape(-1, L, A)
            h = cnn(P.transpose(1, 2))
            features += [h.amax(-1), h.mean(-1)]
            if pair.channels:
                pairwise.append(pair(P))
                features.append(pairwise[-1])
        out = self.out(self.head(torch.cat(features, dim=-1)))
        if self.skip is not None:
            out = out + self.skip(torch.cat(pairwise, dim=-1))
        return out


class PairFeatures(nn.Module):
    """`C` pairwise features of a `n x L x A` (relaxed) one-hot block: `sum_ij J_c[i,j] p_i^T W_c p_j`.

    `J_c` is made symmetric with a zero diagonal and `W_c` symmetric, so each channel is a
    quadratic form in the one-hot encoding (a Potts-model energy with couplings `J_c[i,j] W_c`).
    Differentiable in the input, so gradient design over relaxed sequences sees it.
    """

    off_diagonal: Tensor  # buffer

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


class GroupedLinear(nn.Module):
    """`M` independent linear layers applied at once (`torch.baddbmm` on member-stacked weights).

    Maps a `M x n x i` tensor (one batch per member) or a `n x i` tensor (shared by all members)
    to `M x n x o`.
    """

    def __init__(self, layers: Sequence[nn.Linear]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.stack([layer.weight.detach().T for layer in layers]).contiguous())
        self.bias = nn.Parameter(torch.stack([layer.bias.detach() for layer in layers]).unsqueeze(1))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            return torch.matmul(x, self.weight) + self.bias
        return torch.baddbmm(self.bias, x, self.weight)


class GroupedConv1d(nn.Module):
    """`M` independent 1-D convolutions as one grouped convolution (`groups=M`).

    Works on the member-major channel layout `n x (M * C_in) x L` -> `n x (M * C_out) x L`.
    """

    def __init__(self, convs: Sequence[nn.Conv1d]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.stack([conv.weight.detach() for conv in convs]).clone())
        self.bias = nn.Parameter(torch.stack([_as(Tensor, conv.bias).detach() for conv in convs]).clone())
        self.padding = convs[0].padding

    def forward(self, x: Tensor) -> Tensor:
        M = self.weight.shape[0]
        return nn.functional.conv1d(x, self.weight.flatten(0, 1), self.bias.flatten(), padding=self.padding, groups=M)


class GroupedPairFeatures(nn.Module):
    """`M` members' `PairFeatures` at once: a `M x n x L x A` block -> `M x n x C`."""

    off_diagonal: Tensor  # buffer

    def __init__(self, pairs: Sequence[PairFeatures]) -> None:
        super().__init__()
        self.J = nn.Parameter(torch.stack([p.J.detach() for p in pairs]).clone())
        self.W = nn.Parameter(torch.stack([p.W.detach() for p in pairs]).clone())
        with_E = pairs[0].E is not None
        self.E = nn.Parameter(torch.stack([_as(Tensor, p.E).detach() for p in pairs]).clone()) if with_E else None
        self.register_buffer("off_diagonal", pairs[0].off_diagonal.clone())

    def forward(self, P: Tensor) -> Tensor:
        J = 0.5 * (self.J + self.J.transpose(-1, -2)) * self.off_diagonal
        W = 0.5 * (self.W + self.W.transpose(-1, -2))
        if self.E is not None:
            P = P @ self.E.unsqueeze(1)  # letters embedded: M x n x L x r
        return torch.einsum("mnia,mcab,mnjb,mcij->mnc", P, W, P, J)


class EnsembleNet(nn.Module):
    """`M` `SurrogateNet` members as one network with member-stacked weights (grouped layers).

    Every parameter has the members along its first dimension, so member `k`'s weights are the
    slices `[k]`: linear layers become batched matrix products, each sequence block's CNN one
    grouped convolution. Training all members together costs about as much as one larger
    network instead of `M` small ones in a Python loop. Measured on 2 CPU cores, a forward and
    backward pass of 5 MLP members (802 inputs, hidden 64-64, batch 256) took 2.5 ms with
    grouped layers, 3.2 ms with `torch.func.vmap` over `functional_call` and 8.9 ms one member
    after another; for the sequence CNN (grouped `Conv1d`, `groups=M`) vmap and grouped layers
    were within 20 % of each other. It computes what the members compute (same architecture,
    same weights), including the shared encoder and the pairwise features.

    Args:
        members: The `M` networks, all built with the same `d`, blocks and `NetworkSpec`.
    """

    x_shift: Tensor  # buffers
    x_scale: Tensor

    def __init__(self, members: Sequence[SurrogateNet]) -> None:
        super().__init__()
        first = members[0]
        self.blocks, self.tabular, self.spec = first.blocks, first.tabular, first.spec
        self.act = _ACTIVATIONS[first.spec.activation]()
        self.register_buffer("x_shift", first.x_shift.clone())
        self.register_buffer("x_scale", first.x_scale.clone())
        unique = [k for k, cnn in enumerate(first.cnns) if all(cnn is not first.cnns[j] for j in range(k))]
        self.encoder_of = [next(u for u in unique if first.cnns[u] is cnn) for cnn in first.cnns]
        self.cnns = nn.ModuleDict(
            {
                str(u): nn.ModuleList(
                    GroupedConv1d([_as(nn.Conv1d, _as(nn.Sequential, m.cnns[u])[i]) for m in members]) for i in (0, 2)
                )
                for u in unique
            }
        )
        self.pairs = nn.ModuleList(
            GroupedPairFeatures([_as(PairFeatures, m.pairs[b]) for m in members])
            for b in range(len(self.blocks))
            if first.pairs[b].channels
        )
        linears = [i for i, layer in enumerate(first.head) if isinstance(layer, nn.Linear)]
        self.head = nn.ModuleList(GroupedLinear([_as(nn.Linear, m.head[i]) for m in members]) for i in linears)
        self.out = GroupedLinear([m.out for m in members])
        self.skip = GroupedLinear([_as(nn.Linear, m.skip) for m in members]) if first.skip is not None else None

    @property
    def n_members(self) -> int:
        """Number of members `M`."""
        return self.out.weight.shape[0]

    def normalize(self, X: Tensor) -> Tensor:
        """`X` with its tabular columns standardized, as `forward` does (for `forward(..., normalized=True)`)."""
        X = X.clone()
        X[..., self.tabular] = (X[..., self.tabular] - self.x_shift) / self.x_scale
        return X

    def forward(self, X: Tensor, normalized: bool = False) -> Tensor:
        """Map a `n x d` tensor (the same rows for every member) or a `M x n x d` tensor to `M x n x n_out`.

        Args:
            X: The inputs.
            normalized: The tabular columns of `X` are already standardized (`normalize`): saves
                that step in every mini-batch of training.
        """
        M = self.n_members
        tab = X[..., self.tabular] if self.blocks else X  # without blocks every column is tabular
        features = [tab if normalized else (tab - self.x_shift) / self.x_scale]
        if self.blocks:
            X = X.expand(M, *X.shape) if X.dim() == 2 else X
            features[0] = features[0].expand(M, *features[0].shape[-2:])
        pairwise: list[Tensor] = []  # each block's pairwise features: the skip layer's input
        for b, (start, L, A) in enumerate(self.blocks):
            P = X[..., start : start + L * A].reshape(M, -1, L, A)
            h = self._encode(cast(nn.ModuleList, self.cnns[str(self.encoder_of[b])]), P)
            features += [h.amax(-1), h.mean(-1)]
            if len(self.pairs):
                pairwise.append(self.pairs[b](P))
                features.append(pairwise[-1])
        x = torch.cat(features, dim=-1) if len(features) > 1 else features[0]
        for layer in self.head:
            x = self.act(layer(x))
        out = self.out(x)
        if self.skip is not None:  # the same features as `SurrogateNet.forward` passes to its skip layer
            out = out + self.skip(torch.cat(pairwise, dim=-1))
        return out

    def first_layer_l1(self) -> Tensor:
        """Each member's sum of absolute weights of the MLP's first layer (its inputs' weights): `M`."""
        first = _as(GroupedLinear, self.head[0]) if len(self.head) else self.out
        return first.weight.abs().sum((1, 2))

    def _encode(self, convs: nn.ModuleList, P: Tensor) -> Tensor:
        """Both convolutions of a block for all members: `M x n x L x A` -> `M x n x C x L`."""
        M, n, L, A = P.shape
        h = P.permute(1, 0, 3, 2).reshape(n, M * A, L)
        for conv in convs:
            h = self.act(conv(h))
        return h.reshape(n, M, -1, L).transpose(0, 1)

    def member(self, k: int) -> Callable[[Tensor], Tensor]:
        """Member `k` alone as a function `n x d` -> `n x n_out`, differentiable in its weights and inputs."""
        params = {name: p[k : k + 1] for name, p in self.named_parameters()}
        return lambda X: torch.func.functional_call(self, params, (X,))[0]

    def select(self, k: int) -> EnsembleNet:
        """A copy of member `k` alone, as an `EnsembleNet` of one member."""
        single = copy.deepcopy(self)
        with torch.no_grad():
            for p in single.parameters():
                p.data = p.data[k : k + 1].clone()
        return single

    def put(self, k: int, single: EnsembleNet) -> None:
        """Write the weights of a one-member `EnsembleNet` (from `select(k)`) into member `k`."""
        with torch.no_grad():
            for p, q in zip(self.parameters(), single.parameters(), strict=True):
                p[k].copy_(q[0])
