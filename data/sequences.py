"""System 3: a bundled, differentiable sequence-to-property oracle.

This oracle is SYNTHETIC. It mimics the threading score of protein design on a toy scale: a
sequence of `L = 12` amino acids (20-letter alphabet) is placed on a target fold, a compact
self-avoiding walk on the 2-D square lattice; every pair of residues that touch on the lattice
without being chain neighbours (a contact) adds a pair energy `M[a, b]`. The same sequence is
threaded on 40 decoy folds (other random walks), and the property is the Z-score of the target
energy among the decoys::

    E_f(s)      = sum_{i < j, C_f[i, j] = 1} M[s_i, s_j]
    fold_zscore = (mean_decoys E - E_target) / std_decoys E          (larger: folds more specifically)

The pair matrix is Miyazawa-Jernigan-like but not theirs: `M[a, b] = -h_a h_b + 0.5 q_a q_b +
0.2 e_ab`, with `h` the Kyte-Doolittle hydropathy scaled to [-1, 1], `q` the charge (K, R +1;
D, E -1) and `e` a fixed symmetric Gaussian matrix (seed 0). A second outcome,
`hydrophobic_fraction`, is the share of residues in AILMFVWC. Folds are drawn once from seed 0.

Both outcomes are differentiable functions of a one-hot (or relaxed, softmax) `n x L x 20`
tensor: `oracle_tensor` takes one; `simulate` takes strings. With a generator, `simulate` adds
`N(0, 0.05^2)` to the Z-score.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

ALPHABET = "ACDEFGHIKLMNPQRSTVWY"
LENGTH = 12
N_DECOYS = 40
HYDROPHOBIC = "AILMFVWC"
ZSCORE_NOISE = 0.05
_KYTE_DOOLITTLE = dict(
    zip(
        ALPHABET,
        [
            1.8,
            2.5,
            -3.5,
            -3.5,
            2.8,
            -0.4,
            -3.2,
            4.5,
            -3.9,
            3.8,
            1.9,
            -3.5,
            -1.6,
            -3.5,
            -4.5,
            -0.8,
            -0.7,
            4.2,
            -0.9,
            -1.3,
        ],
        strict=True,
    )
)


def config() -> dict[str, Any]:
    """Campaign-style config: one sequence parameter; raise the Z-score, keep 5 of 12 residues hydrophobic."""
    return {
        "name": "sequences",
        "seed": 0,
        "parameters": [{"name": "sequence", "type": "sequence", "alphabet": ALPHABET, "length": LENGTH}],
        "constraints": [],
        "objectives": [{"name": "fold_zscore", "goal": "maximize"}],
        "safety": [],
        "surrogate": {"kind": "gp"},
    }


@lru_cache(maxsize=1)
def pair_matrix() -> Tensor:
    """The `20 x 20` symmetric pair-energy matrix `M` (double)."""
    h = np.array([_KYTE_DOOLITTLE[a] for a in ALPHABET]) / 4.5
    q = np.array([1.0 if a in "KR" else -1.0 if a in "DE" else 0.0 for a in ALPHABET])
    e = np.random.default_rng(0).standard_normal((20, 20))
    M = -np.outer(h, h) + 0.5 * np.outer(q, q) + 0.2 * (e + e.T) / np.sqrt(2)
    return torch.tensor(M, dtype=torch.double)


@lru_cache(maxsize=1)
def folds() -> Tensor:
    """Contact maps `(1 + N_DECOYS) x L x L` (double, 0/1): the target fold first, then the decoys."""
    rng = np.random.default_rng(0)
    walks = [_random_walk(LENGTH, rng) for _ in range(4 * N_DECOYS)]
    maps = np.stack([_contacts(w) for w in walks])
    order = np.argsort(-maps.sum(axis=(1, 2)), kind="stable")  # most compact walk is the target
    return torch.tensor(maps[np.concatenate([order[:1], order[1 : 1 + N_DECOYS]])], dtype=torch.double)


def oracle_tensor(P: Tensor) -> dict[str, Tensor]:
    """Outcomes of `n x L x 20` one-hot or relaxed sequences, differentiable in `P`.

    Returns:
        `{"fold_zscore": n, "hydrophobic_fraction": n}` tensors.
    """
    P = P.double()
    C = folds()
    energies = 0.5 * torch.einsum("nia,fij,njb,ab->nf", P, C, P, pair_matrix())
    decoys = energies[:, 1:]
    z = (decoys.mean(-1) - energies[:, 0]) / decoys.std(-1)
    mask = torch.tensor([a in HYDROPHOBIC for a in ALPHABET], dtype=torch.double)
    return {"fold_zscore": z, "hydrophobic_fraction": (P @ mask).mean(-1)}


def one_hot(sequences: list[str] | pd.Series) -> Tensor:
    """`n x L x 20` one-hot tensor of sequences over `ALPHABET`.

    Raises:
        ValueError: On a sequence of the wrong length or with a letter outside the alphabet.
    """
    index = {a: i for i, a in enumerate(ALPHABET)}
    rows = []
    for s in sequences:
        s = str(s)
        if len(s) != LENGTH or any(c not in index for c in s):
            raise ValueError(
                f"a sequence must have {LENGTH} letters from {ALPHABET!r}. Got {s!r} instead. Fix the sequence."
            )
        rows.append([index[c] for c in s])
    return torch.nn.functional.one_hot(torch.tensor(rows).reshape(-1, LENGTH), len(ALPHABET)).double()


def simulate(designs_df: pd.DataFrame, rng: np.random.Generator | None = None) -> pd.DataFrame:
    """Score the strings in the `sequence` column; noise on the Z-score when `rng` is given.

    Example:
        >>> simulate(pd.DataFrame({"sequence": ["AAAAAAAAAAAA"]}))["hydrophobic_fraction"].item()
        1.0
    """
    with torch.no_grad():
        out = oracle_tensor(one_hot(designs_df["sequence"]))
    df = pd.DataFrame({k: v.numpy() for k, v in out.items()}, index=designs_df.index)
    if rng is not None:
        df["fold_zscore"] += ZSCORE_NOISE * rng.standard_normal(len(df))
    return df


def generate_dataset(n: int, seed: int = 0) -> pd.DataFrame:
    """`n` uniformly random sequences and their noise-free outcomes."""
    rng = np.random.default_rng(seed)
    letters = np.asarray(list(ALPHABET))[rng.integers(0, len(ALPHABET), size=(n, LENGTH))]
    designs_df = pd.DataFrame({"sequence": ["".join(row) for row in letters]})
    return pd.concat([designs_df, simulate(designs_df)], axis=1)


def _random_walk(n: int, rng: np.random.Generator) -> np.ndarray:
    """A self-avoiding walk of `n` sites on the square lattice (grown step by step, restarted when stuck)."""
    steps = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]])
    while True:
        walk = [(0, 0)]
        occupied = {(0, 0)}
        for _ in range(n - 1):
            options = [(walk[-1][0] + dx, walk[-1][1] + dy) for dx, dy in steps]
            options = [p for p in options if p not in occupied]
            if not options:
                break
            site = options[rng.integers(len(options))]
            walk.append(site)
            occupied.add(site)
        if len(walk) == n:
            return np.array(walk)


def _contacts(walk: np.ndarray) -> np.ndarray:
    distance = np.abs(walk[:, None, :] - walk[None, :, :]).sum(-1)
    i, j = np.indices(distance.shape)
    return ((distance == 1) & (np.abs(i - j) > 1)).astype(float)
