"""The sequence oracle: strings and relaxed one-hot tensors agree, gradients flow, and the GA works."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from data.sequences import ALPHABET, LENGTH, generate_dataset, genetic_algorithm, one_hot, oracle_tensor, simulate


def test_strings_and_tensors_agree_and_relaxed_input_is_differentiable():
    df = generate_dataset(5, seed=3)
    P = one_hot(df["sequence"])
    assert torch.allclose(oracle_tensor(P)["fold_zscore"], torch.tensor(df["fold_zscore"].to_numpy()))
    logits = torch.zeros(2, LENGTH, len(ALPHABET), dtype=torch.double, requires_grad=True)
    oracle_tensor(torch.softmax(logits, -1))["fold_zscore"].sum().backward()
    assert logits.grad.abs().sum() > 0


def test_hydrophobic_fraction_and_bad_sequences():
    out = simulate(pd.DataFrame({"sequence": ["AAAAAADDDDDD"]}))
    assert out["hydrophobic_fraction"].item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="12 letters"):
        simulate(pd.DataFrame({"sequence": ["AAB"]}))


def test_ga_respects_its_budget_and_beats_random_sampling():
    score = lambda s: simulate(pd.DataFrame({"sequence": s}))["fold_zscore"].to_numpy()  # noqa: E731
    result = genetic_algorithm(score, budget=600, seed=0)
    assert result.attrs["calls"] == 600 and len(result) <= 600
    assert result["score"].iloc[0] > generate_dataset(600, seed=0)["fold_zscore"].max()
    again = genetic_algorithm(score, budget=600, seed=0)
    assert again["sequence"].iloc[0] == result["sequence"].iloc[0]
    assert np.isfinite(result["score"]).all()
