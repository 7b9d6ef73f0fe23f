"""Speed benchmark: the neural classifier ensemble against gradient boosting and logistic regression.

Data: the SYNTHETIC protein pairs of system 4 (`data.make_ppi_pairs`, about 2 % positives), as
802 count features per pair (`pair_counts`) or the one-hot columns of both sequences. Every
model is fitted in the same run on the same rows and scored on the same held-out pairs, with
its fit time measured around `fit` alone. Every number is measured in the run that prints it.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmarks.surrogates import ppi_features
from data import make_ppi_pairs
from data.ppi import AMINO_ACIDS
from surrogates import NetworkSpec, NeuralClassifierEnsemble, TrainingOptions

ONE_HOT_NETWORK = NetworkSpec(hidden=(32,), channels=16, shared_encoder=True)  # as in `bench_ppi`
Predict = Callable[[np.ndarray], np.ndarray]
Fit = Callable[[np.ndarray, np.ndarray], Predict]


def dipeptide_counts(sequences: pd.Series) -> np.ndarray:
    """The 400 dipeptide counts of each sequence: column `20 * a + b` counts letter `a` followed by `b`.

    Args:
        sequences: `n` strings over `AMINO_ACIDS` (any lengths).

    Returns:
        A `n x 400` float array of counts of overlapping adjacent letter pairs.
    """
    index = {letter: a for a, letter in enumerate(AMINO_ACIDS)}
    A = len(AMINO_ACIDS)
    counts = np.zeros((len(sequences), A * A))
    for row, seq in enumerate(sequences):
        codes = np.fromiter((index[c] for c in seq), dtype=int, count=len(seq))
        np.add.at(counts[row], A * codes[:-1] + codes[1:], 1.0)
    return counts


def pair_counts(pairs_df: pd.DataFrame) -> np.ndarray:
    """802 count features of a protein pair: 400 dipeptide counts of each sequence and both lengths.

    Columns 0-399 are `dipeptide_counts(seq_a)`, 400-799 `dipeptide_counts(seq_b)`, 800 and 801
    the lengths of `seq_a` and `seq_b` (constant in `make_ppi_pairs`, which draws one length; kept so
    that the features also describe pairs of unequal lengths). The order of the two sequences
    is kept, since the interaction rule is not symmetric.

    Args:
        pairs_df: A table with `seq_a` and `seq_b` columns (e.g. from `make_ppi_pairs`).

    Returns:
        A `n x 802` float array.
    """
    lengths = np.stack([pairs_df["seq_a"].str.len(), pairs_df["seq_b"].str.len()], axis=1).astype(float)
    return np.hstack([dipeptide_counts(pairs_df["seq_a"]), dipeptide_counts(pairs_df["seq_b"]), lengths])


def _ensemble(members: int, seed: int, batched: bool, blocks: list[tuple[int, int, int]] | None) -> Fit:
    network = ONE_HOT_NETWORK if blocks else None
    training = TrainingOptions(batched=batched)

    def fit(X: np.ndarray, y: np.ndarray) -> Predict:
        clf = NeuralClassifierEnsemble(members, network, training, blocks, seed=seed)
        clf.fit(torch.tensor(X, dtype=torch.float), torch.tensor(y, dtype=torch.float))
        return lambda X_test: clf.predict_proba(torch.as_tensor(X_test, dtype=torch.float)).numpy()

    return fit


def _sklearn(model: Any) -> Fit:  # a scikit-learn classifier (untyped)
    def fit(X: np.ndarray, y: np.ndarray) -> Predict:
        model.fit(X, y)
        return lambda X_test: model.predict_proba(X_test)[:, 1]

    return fit


def speed_models(
    members: int, seed: int, sequential: bool = True, blocks: list[tuple[int, int, int]] | None = None
) -> dict[str, Fit]:
    """The compared models, by label: each a function `fit(X, y)` that returns `predict(X_test)`.

    Args:
        members: Members of the neural ensembles.
        seed: Seed of the ensembles and of gradient boosting.
        sequential: Also train the ensemble one member after another (the reference for batching).
        blocks: One-hot sequence blocks of the features: the ensembles then read them with the
            siamese CNN `ONE_HOT_NETWORK`; None for the default network (an MLP).

    Returns:
        A dict from label to function, in the order of the table.
    """
    models = {f"Valley ensemble, {members} members, batched": _ensemble(members, seed, True, blocks)}
    if sequential:
        models[f"Valley ensemble, {members} members, one after another"] = _ensemble(members, seed, False, blocks)
    models["HistGradientBoostingClassifier"] = _sklearn(HistGradientBoostingClassifier(random_state=seed))
    models["LogisticRegression, balanced"] = _sklearn(
        make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000))
    )
    return models


def ensemble_speed(
    n_rows: int = 20000, seed: int = 0, members: int = 5, sequential: bool = True, features: str = "counts"
) -> pd.DataFrame:
    """Fit seconds and held-out average precision of the ensemble and two scikit-learn baselines.

    The models, fitted on the same `n_rows` SYNTHETIC protein pairs (`make_ppi_pairs`, 40 letters
    per sequence, about 2 % positives) as 802 count features (`pair_counts`) and scored on
    `n_rows // 4` pairs drawn with another seed: (a) `NeuralClassifierEnsemble(members,
    class_weight="balanced")` with default network and training (members trained together),
    (b) the same trained one member after another (`TrainingOptions(batched=False)`), (c)
    scikit-learn's `HistGradientBoostingClassifier()` and (d) `LogisticRegression(class_weight=
    "balanced")` on standardized features. Torch uses its default number of threads.

    With `features="one-hot"` every model gets instead the 1,600 one-hot columns of both
    sequences (`benchmarks.surrogates.ppi_features`) and the ensembles read them with a
    siamese CNN (`ONE_HOT_NETWORK`, the network of `bench_ppi`).

    Args:
        n_rows: Training pairs.
        seed: Seed of the data (pairs `2 * seed` and `2 * seed + 1`) and of the models.
        members: Members of the ensembles.
        sequential: Include (b), which takes about `members` times as long as (a).
        features: `"counts"` (802 count features) or `"one-hot"`.

    Returns:
        One row per model: `seed`, `model`, `features`, `fit_seconds` (wall clock),
        `fit_cpu_seconds` (CPU time of all the process's threads: less sensitive than wall clock to
        other programs on the machine), `average_precision`, `n_train`, `n_test`, `test_positives`.

    Example:
        >>> print(format_ensemble_speed(ensemble_speed(20000)))
    """
    if features not in ("counts", "one-hot"):
        raise ValueError(f'`features` must be "counts" or "one-hot". Got {features!r} instead.')
    train_df = make_ppi_pairs(n_rows, seed=2 * seed)
    test_df = make_ppi_pairs(max(n_rows // 4, 100), seed=2 * seed + 1)
    blocks = None
    if features == "counts":
        X, X_test = pair_counts(train_df), pair_counts(test_df)
    else:
        (one_hot, blocks), (one_hot_test, _) = ppi_features(train_df), ppi_features(test_df)
        X, X_test = one_hot.numpy(), one_hot_test.numpy()
    y, y_test = train_df["interacts"].to_numpy(), test_df["interacts"].to_numpy()
    rows = []
    for label, fit in speed_models(members, seed, sequential, blocks).items():
        start, cpu_start = time.perf_counter(), time.process_time()
        predict = fit(X, y)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        scores = predict(X_test)
        rows.append(
            {
                "seed": seed,
                "model": label,
                "features": f"{X.shape[1]} {features}",
                "fit_seconds": seconds,
                "fit_cpu_seconds": cpu_seconds,
                "average_precision": float(average_precision_score(y_test, scores)),
                "n_train": len(y),
                "n_test": len(y_test),
                "test_positives": int(y_test.sum()),
            }
        )
    return pd.DataFrame(rows)


def format_ensemble_speed(table_df: pd.DataFrame) -> str:
    """The speed table as text: fit seconds and held-out average precision per model and seed."""
    first = table_df.iloc[0]
    title = (
        f"SYNTHETIC protein pairs ({first['n_train']} training, {first['n_test']} held-out pairs with "
        f"{first['test_positives']} positives; features: {first['features']}; torch threads: {torch.get_num_threads()})"
    )
    columns = ["seed", "model", "fit_seconds", "fit_cpu_seconds", "average_precision"]
    return "\n".join([title, table_df[columns].to_string(index=False, float_format=lambda v: f"{v:.3f}")])


def _cyclic_step_size(
    optimizer: torch.optim.Optimizer, lr_schedule: str, steps_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The removed `cyclic_lr` option's schedule: `lr / 10` to `lr`, "triangular2", a half-cycle of two epochs."""
    lr = optimizer.param_groups[0]["lr"]
    return torch.optim.lr_scheduler.CyclicLR(
        optimizer, lr / 10, lr, step_size_up=2 * steps_per_epoch, mode="triangular2", cycle_momentum=False
    )


def _removed_option(name: str) -> contextlib.AbstractContextManager:
    """Training as with a removed option: `"amsgrad"` (AdamW's AMSGrad variant) or `"cyclic"` (the cyclic step size)."""
    if name == "amsgrad":
        return mock.patch("torch.optim.AdamW", functools.partial(torch.optim.AdamW, amsgrad=True))
    if name == "cyclic":
        return mock.patch("surrogates.ensemble_training._lr_schedule", _cyclic_step_size)
    return contextlib.nullcontext()


def toolkit_row(seed: int = 0) -> dict:
    """Issue 21 item 8 in one row: the unused training options against the defaults without them.

    `TrainingOptions.amsgrad`, `TrainingOptions.cyclic_lr` and `NetworkSpec.dropout` were removed
    because none beat the defaults (see `TrainingOptions`); this re-measures the two optimizer
    options by training with them put back for the run (AMSGrad: `torch.optim.AdamW(...,
    amsgrad=True)`; the cyclic step size: `CyclicLR`, as the options did). Each setting trains
    (a) `NeuralClassifierEnsemble(2)` on 4,000 SYNTHETIC protein pairs (`pair_counts`), scored
    by average precision on 2,000 pairs of another seed, and (b) `NeuralEnsemble(2)` on 1,000
    rows of the sine wave (`benchmarks.sine_wave`), scored by the RMSE of its mean on 2,000 rows
    of another seed. One torch thread; about a minute.

    Args:
        seed: Seed of the data (pairs `2 * seed`, `2 * seed + 1`; sine rows `2 * seed`,
            `2 * seed + 1`) and of the ensembles.

    Returns:
        A dict: `item`, `plain` (what the baseline is), `plain_figure` (the defaults' AP and
        RMSE), `valley_figure` (the same with each removed option) and `seconds` (wall clock).
    """
    from benchmarks import sine_wave
    from surrogates import NeuralEnsemble

    start, threads = time.perf_counter(), torch.get_num_threads()
    train_df, test_df = make_ppi_pairs(4000, seed=2 * seed), make_ppi_pairs(2000, seed=2 * seed + 1)
    X, X_test = (torch.tensor(pair_counts(df), dtype=torch.float) for df in (train_df, test_df))
    y, y_test = (torch.tensor(df["interacts"].to_numpy(), dtype=torch.float) for df in (train_df, test_df))
    sine, sine_test = sine_wave.generate_dataset(1000, 2 * seed), sine_wave.generate_dataset(2000, 2 * seed + 1)
    S, S_test = (torch.tensor(df[list(sine_wave.PARAMETERS)].to_numpy()) for df in (sine, sine_test))
    s, s_test = (torch.tensor(df[list(sine_wave.OUTCOMES)].to_numpy()) for df in (sine, sine_test))
    figures = {}
    torch.set_num_threads(1)
    try:
        for name in ("defaults", "amsgrad", "cyclic"):
            with _removed_option(name):
                clf = NeuralClassifierEnsemble(2, seed=seed).fit(X, y)
                model = NeuralEnsemble(2, seed=seed).fit(S, s)
            with torch.no_grad():
                ap = average_precision_score(y_test.numpy(), clf.predict_proba(X_test).numpy())
                rmse = float((model.predict(S_test)[0] - s_test).square().mean().sqrt())
            figures[name] = f"AP {ap:.3f}, sine RMSE {rmse:.4f}"
    finally:
        torch.set_num_threads(threads)
    return {
        "item": "8 unused options",
        "plain": "defaults without them",
        "plain_figure": figures["defaults"],
        "valley_figure": f"AMSGrad: {figures['amsgrad']}; cyclic step size: {figures['cyclic']} (both removed)",
        "seconds": time.perf_counter() - start,
    }
