"""System 4: SYNTHETIC protein-pair interaction data with rare positives (about 2 %).

This data set is SYNTHETIC. No real protein is involved; the sequences are random strings
over the 20 standard amino-acid letters and the "interaction" rule is a made-up stand-in for
complementary binding sites, chosen so that the label depends on both sequences together.

How a row is made (`make_ppi_pairs`):

1. `seq_a` and `seq_b` are drawn uniformly at random, `length` letters each.
2. Hidden complementary motif pairs (`MOTIF_PAIRS`): `KRKR`/`EDEE` (opposite charges),
   `WFLW`/`YLFY` (a hydrophobic patch) and `HCHC`/`CHHC` (a metal-binding site).
3. A row is made to interact with probability `q`: one motif pair `k` is picked at random
   and motif `a_k` is written into `seq_a`, `b_k` into `seq_b`, each at a random position.
4. Decoys, so that neither sequence alone decides: with probability `DECOY_RATE` a row that
   was not made to interact gets half a site (only `a_k` in `seq_a`, or only `b_k` in `seq_b`)
   and with probability `DECOY_RATE` a mismatched pair (`a_k` in `seq_a`, `b_j` in `seq_b`, `j != k`).
5. The true label is 1 when, for some `k`, `a_k` occurs in `seq_a` and `b_k` in `seq_b`
   (checked on the final strings, so chance occurrences count too).
6. Label noise: a true positive is recorded as 0 with probability `MISSED_RATE` (an assay
   that misses a binder) and a true negative as 1 with probability `FALSE_ALARM_RATE`.

`q` is set from `positive_rate` so that the expected share of recorded positives is
`positive_rate`: `q = (positive_rate - FALSE_ALARM_RATE) / (1 - MISSED_RATE - FALSE_ALARM_RATE)`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
MOTIF_PAIRS = (("KRKR", "EDEE"), ("WFLW", "YLFY"), ("HCHC", "CHHC"))
DECOY_RATE = 0.05
MISSED_RATE = 0.05
FALSE_ALARM_RATE = 0.001


def true_interaction(seq_a: str, seq_b: str) -> bool:
    """The noise-free rule: some complementary pair has `a_k` in `seq_a` and `b_k` in `seq_b`."""
    return any(a in seq_a and b in seq_b for a, b in MOTIF_PAIRS)


def make_ppi_pairs(n: int, seed: int = 0, positive_rate: float = 0.02, length: int = 40) -> pd.DataFrame:
    """Generate `n` SYNTHETIC protein pairs with interaction labels (see the module docstring).

    Args:
        n: Number of pairs.
        seed: Seed of the random generator (same seed, same table).
        positive_rate: Expected share of rows recorded as interacting, in
            `(FALSE_ALARM_RATE, 1 - MISSED_RATE)`.
        length: Letters per sequence (at least 8).

    Returns:
        A DataFrame with columns `seq_a`, `seq_b` (strings over `AMINO_ACIDS`), `interacts`
        (the recorded 0/1 label) and `true_interacts` (the noise-free label).

    Raises:
        ValueError: If `positive_rate` or `length` is out of range.

    Example:
        >>> pairs_df = make_ppi_pairs(2000, seed=0)
        >>> round(pairs_df["interacts"].mean(), 2)
        0.02
    """
    if not FALSE_ALARM_RATE < positive_rate < 1 - MISSED_RATE:
        raise ValueError(
            f"`positive_rate` must lie in ({FALSE_ALARM_RATE}, {1 - MISSED_RATE}). Got {positive_rate!r} instead."
        )
    if length < 8:
        raise ValueError(f"`length` must be at least 8 (two motifs fit). Got {length!r} instead.")
    rng = np.random.default_rng(seed)
    q = (positive_rate - FALSE_ALARM_RATE) / (1 - MISSED_RATE - FALSE_ALARM_RATE)
    letters = np.array(list(AMINO_ACIDS))
    rows = []
    for _ in range(n):
        a = "".join(rng.choice(letters, length))
        b = "".join(rng.choice(letters, length))
        k = int(rng.integers(len(MOTIF_PAIRS)))
        u = rng.random()
        if u < q:
            a, b = _plant(a, MOTIF_PAIRS[k][0], rng), _plant(b, MOTIF_PAIRS[k][1], rng)
        elif u < q + DECOY_RATE:
            if rng.random() < 0.5:
                a = _plant(a, MOTIF_PAIRS[k][0], rng)
            else:
                b = _plant(b, MOTIF_PAIRS[k][1], rng)
        elif u < q + 2 * DECOY_RATE:
            j = (k + 1 + int(rng.integers(len(MOTIF_PAIRS) - 1))) % len(MOTIF_PAIRS)
            a, b = _plant(a, MOTIF_PAIRS[k][0], rng), _plant(b, MOTIF_PAIRS[j][1], rng)
        truth = true_interaction(a, b)
        flip = rng.random() < (MISSED_RATE if truth else FALSE_ALARM_RATE)
        rows.append((a, b, int(truth != flip), int(truth)))
    return pd.DataFrame(rows, columns=["seq_a", "seq_b", "interacts", "true_interacts"])


def _plant(seq: str, motif: str, rng: np.random.Generator) -> str:
    start = int(rng.integers(len(seq) - len(motif) + 1))
    return seq[:start] + motif + seq[start + len(motif) :]
