"""The ensemble part of the speed benchmark: every model fitted and scored on the same held-out pairs."""

from __future__ import annotations


def test_ensemble_speed_reports_every_model_on_the_same_held_out_pairs():
    import torch

    from benchmarks.ensemble import ensemble_speed, format_ensemble_speed, pair_counts
    from data import make_ppi_pairs

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        table = ensemble_speed(n_rows=600, seed=0, members=2)
    finally:
        torch.set_num_threads(threads)
    assert list(table.columns) == [
        "seed",
        "model",
        "features",
        "fit_seconds",
        "fit_cpu_seconds",
        "average_precision",
        "n_train",
        "n_test",
        "test_positives",
    ]
    assert len(table) == 4 and table["model"].is_unique and "batched" in table["model"].iloc[0]
    assert table["average_precision"].between(0, 1).all() and (table["fit_seconds"] > 0).all()
    assert (table["n_train"] == 600).all() and (table["n_test"] == 150).all() and (table["test_positives"] > 0).all()
    assert "HistGradientBoostingClassifier" in format_ensemble_speed(table)
    X = pair_counts(make_ppi_pairs(3, seed=0, length=10))
    assert X.shape == (3, 802) and (X[:, :400].sum(1) == 9).all() and (X[:, 800:] == 10).all()


def test_toolkit_row_trains_with_each_removed_option_put_back():
    import torch

    from benchmarks.ensemble import _removed_option
    from surrogates import NetworkSpec, NeuralEnsemble, TrainingOptions

    with _removed_option("amsgrad"):
        assert torch.optim.AdamW([torch.zeros(1, requires_grad=True)]).defaults["amsgrad"]
    assert not torch.optim.AdamW([torch.zeros(1, requires_grad=True)]).defaults["amsgrad"]
    X = torch.rand(64, 2, generator=torch.Generator().manual_seed(0))
    opts = TrainingOptions(epochs=6, validation_fraction=0.0)
    lrs = {}
    for name in ("defaults", "cyclic"):
        with _removed_option(name):
            model = NeuralEnsemble(1, NetworkSpec(hidden=(4,)), opts).fit(X, X.sum(1))
        lrs[name] = model.history_["lr"].to_numpy()
    assert (lrs["defaults"][1:] < lrs["defaults"][:-1]).all()  # the cosine decay
    assert (lrs["cyclic"][1:2] > lrs["cyclic"][:1]).all()  # the cycle's rising half
