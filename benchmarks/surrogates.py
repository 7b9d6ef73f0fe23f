"""Surrogate benchmark: class weighting on system 4, physics on system 5, calibration and training time.

Slow by design (a few minutes on one core); tests call the parts with tiny sizes. Every number is
measured in the run that prints it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, precision_recall_curve
from torch import Tensor

from data import get_system, hyperelastic, make_ppi_pairs, sample_designs
from data.ppi import AMINO_ACIDS
from data.ray_tasks import RayCluster, ray_gather
from surrogates import (
    EmaxMean,
    NetworkSpec,
    NeuralClassifierEnsemble,
    NeuralEnsemble,
    PhysicsTerm,
    TrainingOptions,
    cross_validate,
    fit_gp,
    fit_outcome_models,
)

Progress = Callable[[str], None] | None


def recall_at_precision(y: np.ndarray, score: np.ndarray, precision: float = 0.5) -> float:
    """Largest recall whose precision reaches `precision` (`sklearn.metrics.precision_recall_curve`)."""
    p, r, _ = precision_recall_curve(y, score)
    ok = p >= precision
    return float(r[ok].max()) if ok.any() else 0.0


def ppi_features(pairs_df: pd.DataFrame) -> tuple[Tensor, list[tuple[int, int, int]]]:
    """Flattened one-hot of both sequences (the same features for every model) and their blocks."""
    from surrogates import one_hot

    a, b = one_hot(list(pairs_df["seq_a"]), AMINO_ACIDS), one_hot(list(pairs_df["seq_b"]), AMINO_ACIDS)
    L = len(pairs_df["seq_a"].iloc[0])
    return torch.cat([a, b], dim=1), [(0, L, len(AMINO_ACIDS)), (L * len(AMINO_ACIDS), L, len(AMINO_ACIDS))]


def bench_ppi(
    seed: int,
    n_train: int = 10000,
    n_test: int = 4000,
    length: int = 20,
    members: int = 3,
    ray: str | RayCluster | None = None,
) -> pd.DataFrame:
    """Average precision and recall at precision 0.5 on held-out SYNTHETIC protein pairs (system 4).

    Both ensembles (class-weighted and unweighted) get the same network, a siamese CNN (one encoder
    shared by the two sequences), and the same training: 20 % of the training pairs held out
    (stratified) and early stopping on their average precision. About 200 of the 10,000 training
    pairs are positives (with 4,000 pairs, about 80, the networks memorized them). With `ray`
    (`"auto"`, an address or a `RayCluster`), the two ensembles train in two Ray tasks: the same
    scores.
    """
    X_train, y_train, X_test, y_test, _ = _ppi_data(seed, n_train, n_test, length)
    weights = {"ensemble, class-weighted": "balanced", "ensemble, unweighted": None}
    tasks = [(seed, n_train, n_test, length, members, weight) for weight in weights.values()]
    score = _ppi_ensemble_scores
    fitted = [score(*task) for task in tasks] if ray is None else ray_gather(score, tasks, ray)
    scores = dict(zip(weights, fitted, strict=True))
    logistic = LogisticRegression(class_weight="balanced", max_iter=3000).fit(X_train.numpy(), y_train)
    scores["logistic regression, balanced"] = logistic.predict_proba(X_test.numpy())[:, 1]
    return pd.DataFrame(
        [
            {
                "seed": seed,
                "model": label,
                "average_precision": average_precision_score(y_test, s),
                "recall_at_precision_0.5": recall_at_precision(y_test, s),
                "test_positives": int(y_test.sum()),
            }
            for label, s in scores.items()
        ]
    )


def _ppi_data(seed: int, n_train: int, n_test: int, length: int) -> tuple:
    """Training and test features and labels of `bench_ppi`, and the sequence blocks."""
    train_df = make_ppi_pairs(n_train, seed=2 * seed, length=length)
    test_df = make_ppi_pairs(n_test, seed=2 * seed + 1, length=length)
    X_train, blocks = ppi_features(train_df)
    X_test, _ = ppi_features(test_df)
    return X_train, train_df["interacts"].to_numpy(), X_test, test_df["interacts"].to_numpy(), blocks


def _ppi_ensemble_scores(
    seed: int, n_train: int, n_test: int, length: int, members: int, class_weight: str | None
) -> np.ndarray:
    """The held-out scores of one classifier ensemble of `bench_ppi` (a Ray task's work: it builds its own data)."""
    X_train, y_train, X_test, _, blocks = _ppi_data(seed, n_train, n_test, length)
    network = NetworkSpec(hidden=(32,), channels=16, shared_encoder=True)
    training = TrainingOptions(
        epochs=60, batch_size=64, validation_fraction=0.2, weight_decay=1e-2, patience=10, stop_on="average_precision"
    )
    clf = NeuralClassifierEnsemble(members, network, training, blocks, class_weight=class_weight, seed=seed)
    return clf.fit(X_train, torch.tensor(y_train, dtype=torch.double)).predict_proba(X_test).numpy()


def dem_terms(weight: float) -> list[PhysicsTerm]:
    """The deep-energy-method terms for system 5: potential energy on collocation points + clamp `u(0) = 0`."""
    return [
        PhysicsTerm(
            "potential energy", weight, hyperelastic.potential_energy_density, energy=True, points="collocation"
        ),
        PhysicsTerm("clamp u(0)=0", 100.0 * weight, hyperelastic.clamp_residual, points=torch.zeros(1, 1)),
    ]


def fit_bar(n: int, seed: int, weight: float, members: int = 3) -> NeuralEnsemble:
    """An ensemble of the bar's displacement from `n` noisy measurements, with DEM terms of `weight` (0: none).

    Trained on the plain NLL (`nll_beta=0`): the beta-NLL scales the data term by the predicted
    variance, which would change what a given physics weight means.
    """
    data_df = hyperelastic.sample_measurements(n, seed=seed)
    X = torch.tensor(data_df[["x"]].to_numpy())
    Y = torch.tensor(data_df[["u"]].to_numpy())
    model = NeuralEnsemble(
        n_members=members,
        network=NetworkSpec(hidden=(32, 32), activation="tanh"),
        training=TrainingOptions(
            epochs=400,
            batch_size=32,
            validation_fraction=0.0,
            n_collocation=128,
            lr=3e-3,
            nll_beta=0.0,
            lr_schedule="constant",  # the step size the physics weight was tuned with
        ),
        physics=dem_terms(weight) if weight > 0 else None,
        seed=seed,
    )
    return model.fit(X, Y, bounds=torch.tensor([[0.0], [hyperelastic.LENGTH]]))


def bench_physics(
    seed: int, sizes: Sequence[int] = (10, 30, 100), weight: float = 300.0, ray: str | RayCluster | None = None
) -> pd.DataFrame:
    """Relative L2 error of the displacement field with and without the energy term (system 5).

    With `ray` (`"auto"`, an address or a `RayCluster`), each fit is one Ray task: the same table.
    """
    tasks = [(seed, n, label, w) for n in sizes for label, w in (("data only", 0.0), ("data + energy (DEM)", weight))]
    rows = [_physics_row(*task) for task in tasks] if ray is None else ray_gather(_physics_row, tasks, ray)
    return pd.DataFrame(rows)


def _physics_row(seed: int, n: int, label: str, weight: float) -> dict:
    """One row of `bench_physics`: the bar fitted to `n` measurements with DEM terms of `weight` (0: none)."""
    x = np.linspace(0.0, hyperelastic.LENGTH, 201)
    model = fit_bar(n, seed, weight)
    with torch.no_grad():
        u = model.posterior(torch.as_tensor(x).reshape(-1, 1)).mean.numpy().ravel()
    return {"seed": seed, "n": n, "model": label, "rel_l2_error": hyperelastic.displacement_error(u, x)}


def encode_nanoparticles(designs_df: pd.DataFrame, config: dict) -> Tensor:
    """Min-max (log where the config says so) for numbers, one-hot for categories; a `n x d` double tensor."""
    columns = []
    for p in config["parameters"]:
        if p["type"] == "categorical":
            columns += [(designs_df[p["name"]] == v).to_numpy(dtype=float) for v in p["values"]]
            continue
        low, high = p["bounds"]
        v = designs_df[p["name"]].to_numpy(dtype=float)
        if p.get("log"):
            v, low, high = np.log(v), np.log(low), np.log(high)
        columns.append((v - low) / (high - low))
    return torch.as_tensor(np.stack(columns, axis=1))


def nanoparticle_data(n: int, seed: int) -> tuple[Tensor, Tensor, list[str]]:
    """`n` random feasible nanoparticle designs, encoded, with noisy simulated outcomes."""
    system = get_system("nanoparticles")
    rng = np.random.default_rng(seed)
    designs_df = sample_designs(system.config, n, rng)
    outcomes_df = system.simulate(designs_df, rng)
    return encode_nanoparticles(designs_df, system.config), torch.tensor(outcomes_df.to_numpy()), list(outcomes_df)


def _gp(X_train: Tensor, Y_train: Tensor, X_test: Tensor) -> tuple[Tensor, Tensor]:
    model = fit_outcome_models(X_train, Y_train)
    with torch.no_grad():
        post = model.posterior(X_test, observation_noise=True)
    return post.mean, post.variance


def _ensemble(X_train: Tensor, Y_train: Tensor, X_test: Tensor) -> tuple[Tensor, Tensor]:
    model = NeuralEnsemble(5, NetworkSpec(hidden=(64, 64)), TrainingOptions(epochs=300, patience=30)).fit(
        X_train, Y_train
    )
    with torch.no_grad():
        return model.predict(X_test)


def bench_coverage(seed: int, n: int = 120, k: int = 5) -> pd.DataFrame:
    """5-fold CV of GP and ensemble on the nanoparticle simulator: R2, NLL, 68/95 % coverage."""
    X, Y, names = nanoparticle_data(n, seed)
    frames = []
    for label, fit_predict in (("GP", _gp), ("ensemble", _ensemble)):
        cv_df, _ = cross_validate(fit_predict, X, Y, k=k, seed=seed, outcome_names=names)
        frames.append(cv_df.drop(columns="verdict").assign(model=label, seed=seed))
    return pd.concat(frames, ignore_index=True)


def bench_timing(seed: int, n: int = 500) -> pd.DataFrame:
    """Training seconds per 1,000 rows for GP (one per outcome) and ensemble on `n` nanoparticle rows."""
    X, Y, _ = nanoparticle_data(n, seed)
    rows = []
    for label, fit in (
        ("GP", lambda: fit_outcome_models(X, Y)),
        ("ensemble", lambda: NeuralEnsemble(5, training=TrainingOptions(epochs=300, patience=30)).fit(X, Y)),
    ):
        start = time.perf_counter()
        fit()
        seconds = time.perf_counter() - start
        rows.append(
            {"seed": seed, "model": label, "rows": n, "seconds": seconds, "seconds_per_1000_rows": seconds * 1000 / n}
        )
    return pd.DataFrame(rows)


def bench_prior_knowledge(seed: int, sizes: Sequence[int] = (8, 16), n_test: int = 1000) -> pd.DataFrame:
    """GP test error on T-cell activation with few data: constant vs Emax mean, and trust weights.

    Emax: the GP's mean is `EmaxMean` in the dose (log-scaled, the last encoded column) instead of a
    constant. Trust: `n` rows from this lab plus `n` "legacy" rows from another lab whose assay
    reads 40 % low with noise of sd 1 (several times this lab's), fitted with every row at weight 1
    or the legacy rows at 0.1, and this lab's rows alone for reference. Error: RMSE against the
    noise-free simulator on `n_test` random designs.
    """
    system = get_system("nanoparticles")
    dose = next(p for p in system.config["parameters"] if p["name"] == "dose_ug")
    rng = np.random.default_rng([seed, 7])
    test_df = sample_designs(system.config, n_test, rng)
    X_test = encode_nanoparticles(test_df, system.config)
    y_test = torch.tensor(system.simulate(test_df, None)[system.objective].to_numpy())

    def rmse(X: Tensor, y: Tensor, **kwargs) -> float:
        model = fit_gp(X, y, **kwargs)
        with torch.no_grad():
            return float((model.posterior(X_test).mean.squeeze(-1) - y_test).pow(2).mean().sqrt())

    rows = []
    for n in sizes:
        X, Y, names = nanoparticle_data(n, seed)
        j = names.index(system.objective)
        X_old, Y_old, _ = nanoparticle_data(n, seed + 1000)
        y_old = 0.6 * Y_old[:, j] + torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=Y.dtype)
        emax = EmaxMean(X.shape[-1] - 1, lower=dose["bounds"][0], upper=dose["bounds"][1], log=dose.get("log", False))
        X_all, y_all = torch.cat([X, X_old]), torch.cat([Y[:, j], y_old])
        trust = torch.cat([torch.ones(n), torch.full((n,), 0.1)]).to(X)
        own = rmse(X, Y[:, j])  # a constant mean, on this lab's rows only: the reference of both comparisons
        errors = {
            "constant mean": own,
            "Emax mean in dose": rmse(X, Y[:, j], mean_module=emax),
            "own rows only": own,
            "+ legacy rows, weight 1": rmse(X_all, y_all),
            "+ legacy rows, weight 0.1": rmse(X_all, y_all, weights=trust),
        }
        rows += [{"seed": seed, "n": n, "model": label, "rmse": e} for label, e in errors.items()]
    return pd.DataFrame(rows)


def run_surrogate_benchmark(seeds: Sequence[int] = (0,), progress: Progress = None) -> dict[str, pd.DataFrame]:
    """Run the five parts for each seed; return `{"ppi", "physics", "coverage", "prior", "timing"}` tables.

    Args:
        seeds: Seeds to repeat each part with.
        progress: Optional callback for one line per finished part (e.g. `print`).

    Returns:
        A dict of DataFrames, printable with `format_benchmark`.

    Example:
        >>> results = run_surrogate_benchmark(seeds=(0,), progress=print)
        >>> print(format_benchmark(results))
    """
    parts: dict[str, Callable[[int], pd.DataFrame]] = {
        "ppi": bench_ppi,
        "physics": bench_physics,
        "coverage": bench_coverage,
        "prior": bench_prior_knowledge,
        "timing": bench_timing,
    }
    results: dict[str, list[pd.DataFrame]] = {name: [] for name in parts}
    with _single_thread():
        for seed in seeds:
            for name, part in parts.items():
                start = time.perf_counter()
                results[name].append(part(seed))
                if progress is not None:
                    progress(f"{name} (seed {seed}) done in {time.perf_counter() - start:.0f} s")
                    progress(format_benchmark({name: results[name][-1]}))
    return {name: pd.concat(frames, ignore_index=True) for name, frames in results.items()}


class _single_thread:
    """Torch on one thread for the duration (small models run faster, and timings compare fairly)."""

    def __enter__(self) -> None:
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.threads)


def format_benchmark(results: dict[str, pd.DataFrame]) -> str:
    """The benchmark tables as text, averaged over seeds."""
    out = []
    if "ppi" in results:
        grouped = results["ppi"].groupby("model", sort=False)[["average_precision", "recall_at_precision_0.5"]]
        table = grouped.mean().join(grouped.std(ddof=0).add_suffix(" sd"))
        seeds = results["ppi"]["seed"].nunique()
        title = f"System 4 (SYNTHETIC protein pairs, ~2% positives): held-out ranking, mean and sd over {seeds} seed(s)"
        out += [title, table.to_string(), ""]
    if "physics" in results:
        table = results["physics"].pivot_table(index="n", columns="model", values="rel_l2_error", aggfunc="mean")
        out += ["System 5 (neo-Hookean bar): relative L2 error of u(x) vs the reference", table.to_string(), ""]
    if "coverage" in results:
        cols = ["r2", "nll", "coverage_68", "coverage_95"]
        table = results["coverage"].groupby(["model", "outcome"], sort=False)[cols].mean()
        out += ["Nanoparticles: 5-fold CV (target: 95% intervals cover 90-98%)", table.to_string(), ""]
    if "prior" in results:
        table = results["prior"].pivot_table(index="model", columns="n", values="rmse", aggfunc="mean", sort=False)
        out += ["Nanoparticles, few data: GP test RMSE of T-cell activation (prior mean; trust weights)"]
        out += [table.to_string(), ""]
    if "timing" in results:
        table = results["timing"].groupby("model", sort=False)[["rows", "seconds_per_1000_rows"]].mean()
        out += ["Training seconds per 1,000 rows (one thread)", table.to_string(), ""]
    return "\n".join(out)
