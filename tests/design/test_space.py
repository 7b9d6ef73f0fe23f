import pandas as pd
import pytest
import torch

from design import CategoricalParameter, ContinuousParameter, InputError, IntegerParameter, SearchSpace


def make_space() -> SearchSpace:
    return SearchSpace(
        [
            ContinuousParameter(name="size", bounds=(20, 200)),
            ContinuousParameter(name="charge", bounds=(-40, 40)),
            ContinuousParameter(name="peg", bounds=(0, 10)),
            CategoricalParameter(name="ligand", values=["none", "a", "b"]),
            IntegerParameter(name="layers", bounds=(1, 5)),
            ContinuousParameter(name="dose", bounds=(1, 100), log=True),
        ],
        ["peg + 0.1 * charge <= 8"],
    )


def test_encode_decode_round_trip():
    space = make_space()
    df = pd.DataFrame(
        {
            "size": [20.0, 110.0],
            "charge": [-40.0, 12.5],
            "peg": [3.0, 0.0],
            "ligand": ["b", "none"],
            "layers": [5, 1],
            "dose": [1.0, 10.0],
        }
    )
    X = space.encode(df)
    assert X.shape == (2, 6)
    assert X[1, 5].item() == pytest.approx(0.5)  # log scale: 10 is halfway between 1 and 100
    assert X[0, 3].item() == 2.0  # categorical code
    pd.testing.assert_frame_equal(space.decode(X), df, check_dtype=False)


def test_decode_rounds_integers_and_clamps():
    space = make_space()
    X = torch.tensor([[1.2, 0.5, 0.0, 1.6, 0.6, -0.1]], dtype=torch.double)
    df = space.decode(X)
    assert df["size"].item() == 200 and df["layers"].item() == 3 and df["ligand"].item() == "b"
    assert df["dose"].item() == pytest.approx(1.0)


def test_sample_respects_bounds_levels_and_constraints():
    space = make_space()
    X = space.sample(200, seed=3)
    df = space.decode(X)
    assert len(df) == 200
    assert (df["peg"] + 0.1 * df["charge"] <= 8 + 1e-9).all()
    assert set(df["layers"]) <= {1, 2, 3, 4, 5}
    assert torch.allclose(space.encode(df), X, atol=1e-12)


def test_sample_is_seeded():
    space = make_space()
    assert torch.equal(space.sample(10, seed=1), space.sample(10, seed=1))
    assert not torch.equal(space.sample(10, seed=1), space.sample(10, seed=2))


def test_equality_constraint_is_exact():
    space = SearchSpace([ContinuousParameter(name=n, bounds=(0, 1)) for n in "abc"], ["a + b + c == 1"])
    df = space.decode(space.sample(50, seed=0))
    assert len(df) == 50
    assert ((df.sum(axis=1) - 1).abs() < 1e-9).all()


def test_botorch_constraints_match_user_units():
    space = make_space()
    ((indices, coefficients, rhs),) = space.botorch_constraints()[0]
    df = space.decode(space.sample(100, seed=0))
    X = space.encode(df)
    encoded_ok = (X[:, indices] * coefficients).sum(-1) >= rhs - 1e-9
    assert torch.equal(encoded_ok, torch.as_tensor(space.feasible(df)))


@pytest.mark.parametrize(
    "constraint, match",
    [("dose + peg <= 3", "log-scaled"), ("ligand <= 1", "categorical"), ("layers == 2", "integer")],
)
def test_constraints_on_unsupported_parameters_are_refused(constraint, match):
    with pytest.raises(InputError, match=match):
        SearchSpace(make_space().parameters, [constraint])
