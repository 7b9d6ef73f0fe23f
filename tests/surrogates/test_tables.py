"""The ensembles take tables as scikit-learn estimators do, and give tables back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from design import CategoricalParameter, ContinuousParameter, SearchSpace
from surrogates import NeuralClassifierEnsemble, NeuralEnsemble, TrainingOptions

QUICK = TrainingOptions(epochs=30, step_budget=300)


def _designs(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.uniform(0, 2, n), "coating": rng.choice(["none", "gold"], n)})


def _outcomes(df: pd.DataFrame) -> pd.DataFrame:
    gold = (df["coating"] == "gold").to_numpy()
    return pd.DataFrame({"strength": np.sin(2 * df["x"]) + gold, "cost": df["x"] + 3 * gold})


SPACE = SearchSpace(
    [ContinuousParameter(name="x", bounds=(0, 2)), CategoricalParameter(name="coating", values=["none", "gold"])]
)


def test_a_table_fit_predicts_a_table_equal_to_the_encoded_tensor_fit():
    train, new = _designs(80, 0), _designs(5, 1)
    on_tables = NeuralEnsemble(2, training=QUICK, seed=3).fit(train, _outcomes(train), space=SPACE)
    on_tensors = NeuralEnsemble(2, training=QUICK, seed=3).fit(
        SPACE.encode(train), torch.tensor(_outcomes(train).to_numpy()), bounds=SPACE.bounds
    )
    table = on_tables.predict(new)
    mean, var = on_tensors.predict(SPACE.encode(new))
    assert list(table.columns) == ["strength_mean", "strength_sd", "cost_mean", "cost_sd"]
    assert list(table.index) == list(new.index)
    np.testing.assert_allclose(table["cost_mean"], mean[:, 1].detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(table["strength_sd"], var[:, 0].sqrt().detach().numpy(), rtol=1e-5)


def test_numeric_columns_need_no_space_and_text_without_one_is_refused_by_name():
    train = _designs(40, 0)
    numeric = train.assign(gold=(train["coating"] == "gold").astype(float)).drop(columns="coating")
    model = NeuralEnsemble(1, training=QUICK).fit(numeric, _outcomes(train)["cost"], progress=True)
    assert list(model.predict(numeric.iloc[:3]).columns) == ["cost_mean", "cost_sd"]
    with pytest.raises(ValueError, match="column 'coating' must hold numbers"):
        NeuralEnsemble(1, training=QUICK).fit(train, _outcomes(train))
    with pytest.raises(ValueError, match="Missing: \\['gold'\\]"):
        model.predict(numeric.drop(columns="gold"))


def test_the_classifier_takes_a_table_and_gives_p_per_label():
    train = _designs(60, 2)
    labels = pd.Series((train["x"] > 1).astype(float), name="binds")
    clf = NeuralClassifierEnsemble(2, training=QUICK).fit(train, labels, space=SPACE)
    p = clf.predict_proba(_designs(4, 3))
    assert list(p.columns) == ["p_binds"] and ((p["p_binds"] >= 0) & (p["p_binds"] <= 1)).all()


def test_a_tensor_fit_refuses_a_table_with_a_clear_message():
    model = NeuralEnsemble(1, training=QUICK).fit(torch.rand(20, 2), torch.rand(20))
    with pytest.raises(ValueError, match="fitted on tensors"):
        model.predict(pd.DataFrame({"a": [0.1], "b": [0.2]}))
