"""The acquisition optimizer over sequences: exact one-hot designs, new ones, the optimum when it is easy."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from design import ContinuousParameter, SearchSpace, SequenceParameter, validate_designs
from design.errors import InputError
from design.sequence_acq import SequenceOptions, known_designs, optimize_sequences, single_mutants

L, ALPHABET = 6, "ACDEFG"
SPACE = SearchSpace([SequenceParameter(name="pep", alphabet=ALPHABET, length=L)])


class LetterScore:
    """A stand-in acquisition: the sum of per-position letter weights (optimum: "GFEDCA"), minus pending overlap."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        start, length, A = space.sequence_blocks[0]
        self.block = slice(start, start + length * A)
        target = torch.tensor([5, 4, 3, 2, 1, 0])
        self.W = torch.nn.functional.one_hot(target, A).double().reshape(-1) * 2 - 1
        self.X_pending = None

    def set_X_pending(self, X_pending=None) -> None:
        self.X_pending = X_pending

    def __call__(self, X):  # `b x 1 x d` -> `b`
        return (X[..., self.block] @ self.W).sum(-1)


def letters_ok(sequences) -> bool:
    return all(len(s) == L and set(s) <= set(ALPHABET) for s in sequences)


@pytest.mark.parametrize("method", ["evolution", "gradient"])
def test_finds_the_optimum_and_returns_exact_distinct_one_hot_designs(method):
    acqf = LetterScore(SPACE)
    X = optimize_sequences(acqf, SPACE, 3, seed=0, options=SequenceOptions(method=method))
    assert X.shape == (3, SPACE.d) and ((X == 0) | (X == 1)).all()
    assert (X.reshape(3, L, -1).sum(-1) == 1).all()
    decoded = SPACE.decode(X)["pep"]
    assert decoded.iloc[0] == "GFEDCA" and decoded.is_unique and letters_ok(decoded)
    assert acqf.X_pending is None  # restored


def test_excluded_designs_are_never_returned():
    best = SPACE.encode(pd.DataFrame({"pep": ["GFEDCA", "AFEDCA"]}))
    X = optimize_sequences(LetterScore(SPACE), SPACE, 4, seed=1, exclude=best)
    decoded = set(SPACE.decode(X)["pep"])
    assert len(decoded) == 4 and not decoded & {"GFEDCA", "AFEDCA"}


def test_scalar_parameters_beside_a_sequence_keep_the_constraints():
    space = SearchSpace(
        [
            ContinuousParameter(name="x1", bounds=(0, 1)),
            ContinuousParameter(name="x2", bounds=(0, 1)),
            SequenceParameter(name="pep", alphabet=ALPHABET, length=L),
        ],
        ["x1 + x2 <= 0.5"],
    )
    X = optimize_sequences(LetterScore(space), space, 3, seed=2)
    designs = space.decode(X)
    assert space.feasible(designs).all() and letters_ok(designs["pep"])
    assert designs["pep"].iloc[0] == "GFEDCA"


def test_single_mutants_and_known_designs():
    x = SPACE.encode(pd.DataFrame({"pep": ["AAAAAA"]}))[0]
    mutants = SPACE.decode(single_mutants(SPACE, x))["pep"]
    assert len(mutants) == L * (len(ALPHABET) - 1) and mutants.is_unique
    assert all(sum(a != b for a, b in zip(m, "AAAAAA", strict=True)) == 1 for m in mutants)
    acqf = LetterScore(SPACE)
    acqf.X_baseline = x.unsqueeze(0)
    acqf.set_X_pending(x.unsqueeze(0))
    assert known_designs(acqf).shape == (2, SPACE.d)


def test_validation_names_row_column_and_fix_for_sequences():
    with pytest.raises(InputError, match=r"t.csv, row 7, column 'pep': 'AAAAAB' has the letter 'B'"):
        validate_designs(SPACE, pd.DataFrame({"pep": ["AAAAAB"]}, index=[7]), "t.csv")
    with pytest.raises(InputError, match=r"'AAA' has 3 letters; pep has length 6"):
        validate_designs(SPACE, pd.DataFrame({"pep": ["AAA"]}), "t.csv")
    clean, _ = validate_designs(SPACE, pd.DataFrame({"pep": [" GFEDCA "]}), "t.csv")
    assert clean["pep"].tolist() == ["GFEDCA"]
