"""Baseline optimizers for the benchmark: random designs, plain BoTorch and Ax, on a bundled system.

Each runner plays the same game as `run_simulated_campaign`: a given initial design
(`initial_df`, the same for every method), then `rounds` batches of `batch`, every batch measured with noise by
`system.simulate(designs_df, rng)` and fed back before the next. Each returns its trace: one
row per proposed design with `round`, `seconds` (wall time spent proposing its batch, divided by
the batch size) and one column per parameter in user units. Scoring is left to the benchmark.

The BoTorch baseline is what a user would write from the BoTorch tutorials: inputs in user units
(normalized by the `Normalize` input transform), integers and categories treated as continuous
numbers and rounded afterwards (a categorical is coded `0 .. k - 1`), log-scaled parameters on
their linear scale, and no safety model beyond qLogNEI's outcome constraints.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from botorch.acquisition import AcquisitionFunction, qLogNoisyExpectedImprovement
from botorch.acquisition.objective import GenericMCObjective
from botorch.fit import fit_gpytorch_mll
from botorch.models import ModelListGP, SingleTaskGP
from botorch.models.transforms import Normalize, Standardize
from botorch.optim import optimize_acqf
from botorch.sampling import SobolQMCNormalSampler
from gpytorch.mlls import SumMarginalLogLikelihood
from torch import Tensor

from data import System, sample_designs
from data.constraints import parse_constraint

BotorchConstraint = tuple[Tensor, Tensor, float]


def run_random(system: System, rounds: int, batch: int, initial_df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Uniform random designs (`data.sample_designs`), in the same rounds as a campaign.

    Args:
        system: A bundled system (`data.get_system`).
        rounds: Batches after the initial design.
        batch: Designs per batch.
        initial_df: The designs measured first (one column per parameter, user units).
        seed: Seeds every random choice of the run (and, for the others, the measurement noise).

    Returns:
        The run's trace: `round`, `seconds` (per design) and one column per parameter.

    Example:
        >>> initial_df = sample_designs(get_system("gardner").config, 3, np.random.default_rng(0))
        >>> trace_df = run_random(get_system("gardner"), rounds=2, batch=3, initial_df=initial_df, seed=0)
    """
    rng = np.random.default_rng(seed)
    traces = []
    for r in range(rounds + 1):
        start = time.perf_counter()
        designs_df = initial_df if r == 0 else sample_designs(system.config, batch, rng)
        traces.append(_trace(designs_df, r, time.perf_counter() - start))
    return pd.concat(traces, ignore_index=True)


def run_botorch(system: System, rounds: int, batch: int, initial_df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Plain BoTorch: one `SingleTaskGP` per outcome, constrained qLogNEI batches.

    Arguments and trace as for `run_random`.

    Example:
        >>> trace_df = run_botorch(get_system("gardner"), rounds=2, batch=3, initial_df=initial_df, seed=0)
    """
    params = system.config["parameters"]
    bounds = torch.tensor([_box(p) for p in params], dtype=torch.double).T
    inequalities = _inequalities(system.config)
    outcomes = [system.objective] + [limit["name"] for limit in system.config["safety"]]
    rng = np.random.default_rng(seed)
    X = torch.empty(0, len(params), dtype=torch.double)
    Y = torch.empty(0, len(outcomes), dtype=torch.double)
    traces = []
    for r in range(rounds + 1):
        start = time.perf_counter()
        with torch.random.fork_rng():
            torch.manual_seed(1000 * seed + r)
            if r == 0:
                X_new = _numbers(initial_df, params)
            else:
                X_new = _next_batch(system, X, Y, bounds, inequalities, batch, seed=1000 * seed + r)
        X_new = _round_discrete(X_new, params)
        seconds = time.perf_counter() - start
        designs_df = _designs(X_new, params)
        measured_df = system.simulate(designs_df, rng)[outcomes]
        X = torch.cat([X, X_new])
        Y = torch.cat([Y, torch.tensor(measured_df.to_numpy(dtype=float), dtype=torch.double)])
        traces.append(_trace(designs_df, r, seconds))
    return pd.concat(traces, ignore_index=True)


def run_ax(system: System, rounds: int, batch: int, initial_df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Ax's `Client` with its default ("fast") generation strategy, the initial designs attached as trials.

    The attached trials count as Ax's initialization, so it goes straight to its BoTorch model.
    It may hand out fewer trials than asked for (it does so when it switches), so each batch is
    topped up with further calls until it has its full size, pending trials being known to Ax.
    Arguments and trace as for `run_random`.

    Raises:
        ImportError: If Ax is not installed (`pip install 'valley[bench]'`).

    Example:
        >>> trace_df = run_ax(get_system("gardner"), rounds=2, batch=3, initial_df=initial_df, seed=0)
    """
    from ax import Client

    with _quiet_ax():
        client = Client(random_seed=seed)
        client.configure_experiment(
            parameters=[_ax_parameter(p) for p in system.config["parameters"]],
            parameter_constraints=system.config.get("constraints") or None,
        )
        client.configure_optimization(
            objective=system.objective if system.maximize else f"-{system.objective}",
            outcome_constraints=_ax_outcome_constraints(system.config["safety"]) or None,
        )
        client.configure_generation_strategy(initialization_budget=len(initial_df), initialization_random_seed=seed)
        return _ax_campaign(client, system, rounds, batch, initial_df, seed)


def _trace(designs_df: pd.DataFrame, round_: int, seconds: float) -> pd.DataFrame:
    trace_df = designs_df.reset_index(drop=True).copy()
    trace_df.insert(0, "seconds", seconds / max(len(designs_df), 1))
    trace_df.insert(0, "round", round_)
    return trace_df


# -- BoTorch, as a user would write it ------------------------------------------------------


def _box(parameter: dict[str, Any]) -> tuple[float, float]:
    if parameter["type"] == "categorical":
        return 0.0, float(len(parameter["values"]) - 1)
    low, high = parameter["bounds"]
    return float(low), float(high)


def _inequalities(config: dict[str, Any]) -> list[BotorchConstraint]:
    """The config's linear constraints as botorch's `sum(coefficients * X[indices]) >= rhs`."""
    names = [p["name"] for p in config["parameters"]]
    out = []
    for text in config.get("constraints", []):
        c = parse_constraint(text, names)
        if c.op == "==":
            raise ValueError(f"The BoTorch baseline handles inequality constraints only. Got {text!r} instead.")
        sign = -1.0 if c.op == "<=" else 1.0
        indices = torch.tensor([names.index(n) for n in c.coefficients], dtype=torch.long)
        coefficients = torch.tensor([sign * a for a in c.coefficients.values()], dtype=torch.double)
        out.append((indices, coefficients, sign * c.rhs))
    return out


def _numbers(designs_df: pd.DataFrame, params: list[dict[str, Any]]) -> Tensor:
    """Designs in user units as a tensor, a categorical as its code `0 .. k - 1` (inverse of `_designs`)."""
    columns = []
    for parameter in params:
        values = designs_df[parameter["name"]]
        if parameter["type"] == "categorical":
            values = values.astype(str).map(list(parameter["values"]).index)
        columns.append(torch.tensor(values.to_numpy(dtype=float), dtype=torch.double))
    return torch.stack(columns, dim=-1)


def _next_batch(
    system: System, X: Tensor, Y: Tensor, bounds: Tensor, inequalities: list[BotorchConstraint], q: int, seed: int
) -> Tensor:
    """Fit one GP per outcome and maximize qLogNEI with the safety limits as outcome constraints."""
    acqf = botorch_acquisition(system, X, Y, bounds, seed)
    candidates, _ = optimize_acqf(
        acqf, bounds, q=q, num_restarts=4, raw_samples=128, inequality_constraints=inequalities or None
    )
    return candidates.detach()


def botorch_acquisition(system: System, X: Tensor, Y: Tensor, bounds: Tensor, seed: int) -> AcquisitionFunction:
    """Plain BoTorch's qLogNEI on `(X, Y)` (objective first, then each safety outcome), limits as constraints.

    One `SingleTaskGP` per outcome (inputs normalized to `bounds`, outcomes standardized), fitted
    together by `fit_gpytorch_mll`, as BoTorch's tutorials write it.
    """
    d = X.shape[-1]
    model = ModelListGP(
        *(
            SingleTaskGP(X, Y[:, [j]], input_transform=Normalize(d, bounds=bounds), outcome_transform=Standardize(1))
            for j in range(Y.shape[-1])
        )
    )
    fit_gpytorch_mll(SumMarginalLogLikelihood(model.likelihood, model))
    sign = 1.0 if system.maximize else -1.0
    constraints: list[Callable[[Tensor], Tensor]] = []
    for j, limit in enumerate(system.config["safety"], start=1):  # column 0 is the objective
        if "upper" in limit:
            constraints.append(partial(_above, j=j, limit=limit["upper"]))
        if "lower" in limit:
            constraints.append(partial(_below, j=j, limit=limit["lower"]))
    return qLogNoisyExpectedImprovement(
        model=model,
        X_baseline=X,
        sampler=SobolQMCNormalSampler(sample_shape=torch.Size([128]), seed=seed),
        objective=GenericMCObjective(partial(_signed_objective, sign=sign)),
        constraints=constraints or None,
        prune_baseline=True,
    )


def _signed_objective(Z: Tensor, X: Tensor | None = None, sign: float = 1.0) -> Tensor:
    """The objective (column 0) as botorch maximizes it: negated when it is minimized."""
    return sign * Z[..., 0]


def _above(Z: Tensor, j: int, limit: float) -> Tensor:
    """botorch's outcome-constraint convention: `<= 0` where `Z[..., j] <= limit` holds."""
    return Z[..., j] - limit


def _below(Z: Tensor, j: int, limit: float) -> Tensor:
    return limit - Z[..., j]


def _round_discrete(X: Tensor, params: list[dict[str, Any]]) -> Tensor:
    X = X.clone()
    for i, parameter in enumerate(params):
        if parameter["type"] != "continuous":
            X[:, i] = torch.round(X[:, i])
    return X


def _designs(X: Tensor, params: list[dict[str, Any]]) -> pd.DataFrame:
    columns: dict[str, Any] = {}
    for i, parameter in enumerate(params):
        low, high = _box(parameter)
        x = np.clip(X[:, i].numpy(), low, high)
        if parameter["type"] == "categorical":
            columns[parameter["name"]] = [parameter["values"][int(k)] for k in x]
        elif parameter["type"] == "integer":
            columns[parameter["name"]] = x.astype(int)
        else:
            columns[parameter["name"]] = x
    return pd.DataFrame(columns)


# -- Ax ---------------------------------------------------------------------------------------


def _ax_campaign(client, system: System, rounds: int, batch: int, initial_df: pd.DataFrame, seed: int) -> pd.DataFrame:
    names = [p["name"] for p in system.config["parameters"]]
    rng = np.random.default_rng(seed)
    traces = []
    for r in range(rounds + 1):
        start = time.perf_counter()
        if r == 0:
            trials = {client.attach_trial(_ax_values(row)): row for row in initial_df[names].to_dict("records")}
        else:
            trials = _ax_batch(client, batch)
        seconds = time.perf_counter() - start
        designs_df = pd.DataFrame([dict(trials[i]) for i in trials])[names]
        measured_df = system.simulate(designs_df, rng)
        for index, (_, row) in zip(trials, measured_df.iterrows(), strict=True):
            client.complete_trial(index, raw_data={name: float(v) for name, v in row.items()})
        traces.append(_trace(designs_df, r, seconds))
    return pd.concat(traces, ignore_index=True)


def _ax_batch(client, n: int) -> dict[int, Any]:
    trials: dict[int, Any] = {}
    while len(trials) < n:
        new = client.get_next_trials(max_trials=n - len(trials))
        if not new:
            break
        trials.update(new)
    return trials


@contextmanager
def _quiet_ax() -> Iterator[None]:
    """Keep Ax's per-trial INFO lines (and its "fewer trials" warning) out of the benchmark output."""
    handlers = logging.getLogger("ax").handlers
    levels = [handler.level for handler in handlers]
    for handler in handlers:
        handler.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for handler, level in zip(handlers, levels, strict=True):
            handler.setLevel(level)


def _ax_values(row: dict[str, Any]) -> dict[str, Any]:
    """A design row as Ax wants a parameterization: plain Python numbers and strings."""
    return {name: value.item() if hasattr(value, "item") else value for name, value in row.items()}


def _ax_parameter(parameter: dict[str, Any]):
    from ax import ChoiceParameterConfig, RangeParameterConfig

    if parameter["type"] == "categorical":
        return ChoiceParameterConfig(
            name=parameter["name"], values=list(parameter["values"]), parameter_type="str", is_ordered=False
        )
    low, high = parameter["bounds"]
    kind: Literal["int", "float"] = "int" if parameter["type"] == "integer" else "float"
    return RangeParameterConfig(
        name=parameter["name"],
        bounds=(low, high) if kind == "int" else (float(low), float(high)),
        parameter_type=kind,
        scaling="log" if parameter.get("log", False) else "linear",
    )


def _ax_outcome_constraints(safety: list[dict[str, Any]]) -> list[str]:
    out = []
    for limit in safety:
        if "upper" in limit:
            out.append(f"{limit['name']} <= {limit['upper']}")
        if "lower" in limit:
            out.append(f"{limit['name']} >= {limit['lower']}")
    return out
