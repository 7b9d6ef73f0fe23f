"""The sequence oracle: strings and relaxed one-hot tensors agree, and gradients flow."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from data.sequences import ALPHABET, LENGTH, generate_dataset, one_hot, oracle_tensor, simulate


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
