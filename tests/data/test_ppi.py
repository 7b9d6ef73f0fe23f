"""Tests for system 4, the synthetic protein-pair interaction generator."""

from __future__ import annotations

import pytest

from data import make_ppi_pairs
from data.ppi import AMINO_ACIDS, MOTIF_PAIRS, true_interaction


@pytest.fixture(scope="module")
def pairs_df():
    return make_ppi_pairs(5000, seed=0)


def test_about_two_percent_positives_and_valid_sequences(pairs_df):
    assert list(pairs_df.columns) == ["seq_a", "seq_b", "interacts", "true_interacts"]
    assert 0.015 < pairs_df["interacts"].mean() < 0.025
    assert set("".join(pairs_df["seq_a"])) <= set(AMINO_ACIDS)
    assert pairs_df["seq_a"].str.len().eq(40).all() and pairs_df["seq_b"].str.len().eq(40).all()
    assert 0.1 < make_ppi_pairs(1000, seed=1, positive_rate=0.1)["interacts"].mean() < 0.14


def test_labels_follow_the_motif_rule_with_some_noise(pairs_df):
    truth = [true_interaction(a, b) for a, b in zip(pairs_df["seq_a"], pairs_df["seq_b"], strict=True)]
    assert (pairs_df["true_interacts"] == truth).all()
    disagree = (pairs_df["interacts"] != pairs_df["true_interacts"]).mean()
    assert 0 < disagree < 0.01
    a, b = MOTIF_PAIRS[0]
    assert true_interaction("xx" + a + "yy", b) and not true_interaction(a, MOTIF_PAIRS[1][1])
    # decoys: half sites occur in negatives, so neither sequence alone decides
    negatives = pairs_df[pairs_df["true_interacts"] == 0]
    assert negatives["seq_a"].str.contains("|".join(m for m, _ in MOTIF_PAIRS)).sum() > 50


def test_seeded_and_checked():
    assert make_ppi_pairs(50, seed=3).equals(make_ppi_pairs(50, seed=3))
    with pytest.raises(ValueError, match="positive_rate"):
        make_ppi_pairs(10, positive_rate=0.99)
