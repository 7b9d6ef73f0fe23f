"""Bilevel tuning of a penalty weight by implicit-function-theorem (IFT) hypergradients.

The inner problem trains the weights `w` of a model on `data(w) + lambda * penalty(w)` (a physics
term's weight, or an L2 strength); the outer problem picks `lambda` to minimize a validation loss
`val(w*(lambda))`. With `s = log(lambda)` and the inner stationarity condition
`grad_w data + lambda * grad_w penalty = 0`, the implicit function theorem gives::

    d val / d s = - lambda * grad_w val^T  H^{-1}  grad_w penalty,     H = d2 (data + lambda penalty) / dw2

`H^{-1} grad_w val` is solved by conjugate gradient (or a truncated Neumann series) with
Hessian-vector products by double backward (`torch.autograd.grad` of the gradient's dot product
with a vector). `torch.func` transforms cannot be used here: physics residuals call
`torch.autograd.grad` for their input derivatives, which `torch.func.grad` does not trace (its
result is an "unused tensor" error).

`tune_weight_ift` is the outer loop on any set of parameters; `tune_ensemble_ift` applies it to a
fitted `NeuralEnsemble` and its physics terms, warm-starting from the fit. `tune_physics_weight`
(`surrogates.physics`) calls it with `method="ift"`; its default stays the grid, see there for
the measured comparison (`valley benchmark bilevel`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pandas as pd
import torch
from torch import Tensor

from surrogates.ensemble_training import clip_per_member
from surrogates.physics import PhysicsTerm

if TYPE_CHECKING:
    from surrogates.ensemble import NeuralEnsemble

Closure = Callable[[], Tensor]
SOLVERS = ("cg", "neumann")
HYPER_POINTS = 4  # the hypergradient's collocation points, in multiples of `n_collocation`


def _dot(a: Sequence[Tensor], b: Sequence[Tensor]) -> Tensor:
    return sum((x * y).sum() for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _grads(value: Tensor, params: Sequence[Tensor], create_graph: bool = False) -> list[Tensor]:
    grads = torch.autograd.grad(value, params, create_graph=create_graph, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params, strict=True)]


def solve_hessian(
    hvp: Callable[[list[Tensor]], list[Tensor]],
    b: list[Tensor],
    solver: str = "cg",
    iters: int = 20,
    damping: float = 1e-3,
    tol: float = 1e-6,
) -> list[Tensor]:
    """Approximately solve `(H + damping I) x = b` from Hessian-vector products `hvp(v)`.

    `"cg"`: conjugate gradient, stopped after `iters` products, at a relative residual `tol`, or at
    a direction of non-positive curvature (a network's Hessian need not be positive definite; the
    iterate so far is returned, as truncated Newton methods do). `"neumann"`: `x = alpha * sum_k
    (I - alpha A)^k b` for `k < iters`, with `alpha = 1 / lambda_max(A)` from 10 power iterations
    (converges on the positive part of the spectrum, slowly for small eigenvalues).

    Args:
        hvp: `v -> H v` on lists of tensors shaped like the parameters.
        b: The right-hand side.
        solver: `"cg"` or `"neumann"`.
        iters: Hessian-vector products (CG) or series terms (Neumann).
        damping: `delta` added to the diagonal.
        tol: CG's relative residual tolerance.

    Returns:
        `x`, a list of tensors like `b`.
    """
    if solver not in SOLVERS:
        raise ValueError(f"`solver` must be one of {SOLVERS}. Got {solver!r} instead.")

    def A(v: list[Tensor]) -> list[Tensor]:
        return [h + damping * x for h, x in zip(hvp(v), v, strict=True)]

    if solver == "neumann":
        v = [x / (float(_dot(b, b)) ** 0.5 + 1e-30) for x in b]
        top = 1.0
        for _ in range(10):
            Av = A(v)
            top = float(_dot(Av, Av)) ** 0.5
            v = [x / (top + 1e-30) for x in Av]
        alpha = 1.0 / max(top, 1e-12)
        term = [x.clone() for x in b]
        total = [x.clone() for x in b]
        for _ in range(iters - 1):
            term = [t - alpha * a for t, a in zip(term, A(term), strict=True)]
            total = [s + t for s, t in zip(total, term, strict=True)]
        return [alpha * s for s in total]
    x = [torch.zeros_like(t) for t in b]
    r = [t.clone() for t in b]
    p = [t.clone() for t in b]
    rr = float(_dot(r, r))
    stop = tol**2 * rr
    for _ in range(iters):
        if rr <= stop:
            break
        Ap = A(p)
        curvature = float(_dot(p, Ap))
        if curvature <= 0:
            if not any(bool(t.any()) for t in x):  # no progress yet: a gradient step on the quadratic
                x = [rr / max(abs(curvature), 1e-12) * t for t in p] if curvature < 0 else x
            break
        step = rr / curvature
        x = [xi + step * pi for xi, pi in zip(x, p, strict=True)]
        r = [ri - step * ai for ri, ai in zip(r, Ap, strict=True)]
        rr_new = float(_dot(r, r))
        p = [ri + rr_new / rr * pi for ri, pi in zip(r, p, strict=True)]
        rr = rr_new
    return x


def hypergradient(
    params: Sequence[Tensor],
    data_loss: Closure,
    penalty: Closure,
    val_loss: Closure,
    log_weight: float,
    solver: str = "cg",
    iters: int = 20,
    damping: float = 1e-3,
) -> float:
    """`d val / d log(lambda)` at the current parameters, taken as the inner problem's minimizer.

    Args:
        params: The tensors the inner problem trains (requiring grad).
        data_loss: `() -> data(w)` from the current `params`.
        penalty: `() -> penalty(w)` (unweighted).
        val_loss: `() -> val(w)`.
        log_weight: `log(lambda)`.
        solver, iters, damping: See `solve_hessian`.

    Returns:
        The hypergradient, a float.

    Example:
        >>> h = hypergradient([w], lambda: ((X @ w - y) ** 2).mean(), lambda: (w**2).sum(),
        ...                   lambda: ((Xv @ w - yv) ** 2).mean(), math.log(0.1))
    """
    params = list(params)
    weight = math.exp(log_weight)
    g_pen = _grads(penalty(), params, create_graph=True)
    g_data = _grads(data_loss(), params, create_graph=True)
    g_inner = [d + weight * q for d, q in zip(g_data, g_pen, strict=True)]
    g_val = _grads(val_loss(), params)

    def hvp(v: list[Tensor]) -> list[Tensor]:
        out = torch.autograd.grad(g_inner, params, grad_outputs=v, retain_graph=True, allow_unused=True)
        return [torch.zeros_like(p) if o is None else o for o, p in zip(out, params, strict=True)]

    v = solve_hessian(hvp, g_val, solver, iters, damping)
    return -weight * float(_dot(v, [q.detach() for q in g_pen]))


@dataclass
class IFTResult:
    """What `tune_weight_ift` found.

    Attributes:
        weight: The weight `lambda` of the best validation loss seen (its parameters are restored).
        history: One row per outer step: `step`, `weight`, `val_loss`, `hypergradient`, `seconds`.
    """

    weight: float
    history: pd.DataFrame


def tune_weight_ift(
    params: Sequence[Tensor],
    data_loss: Closure,
    penalty: Closure,
    val_loss: Closure,
    weight: float = 1.0,
    bounds: tuple[float, float] = (1e-2, 1e2),
    outer_steps: int = 6,
    inner_steps: int = 300,
    inner_lr: float = 3e-3,
    outer_lr: float = 0.5,
    solver: str = "cg",
    iters: int = 20,
    damping: float = 1e-3,
    on_step: Callable[[int, float, float], None] | None = None,
    before_step: Callable[[], None] | None = None,
    inner_penalty: Closure | None = None,
) -> IFTResult:
    """Tune `lambda` in `data + lambda * penalty` against `val` by IFT hypergradients on `log(lambda)`.

    Each outer step trains `params` for `inner_steps` Adam steps at the current weight, warm-started
    from the previous step's parameters (the first from `params` as given, e.g. a fitted model)
    with a fresh Adam state (a state carried over from a smaller weight made the first steps at a
    larger one too long and the bar's training diverged),
    scores `val`, and moves `s = log(lambda)` by Adam on the hypergradient (`outer_lr` is the size
    of its first, sign-like step in `s`; 0.5 multiplies or divides the weight by 1.65), clipped to
    `log(bounds)`. The parameters and weight of the best validation loss are kept.

    Args:
        params: The tensors the inner problem trains (changed in place).
        data_loss: `() -> data(w)`.
        penalty: `() -> penalty(w)`, unweighted.
        val_loss: `() -> val(w)`.
        weight: Starting `lambda` (> 0).
        bounds: The range of `lambda`.
        outer_steps: Hypergradient steps (`outer_steps + 1` inner trainings, the last one scored only).
        inner_steps: Adam steps of each inner training (0: `params` are already trained).
        inner_lr: Adam's step size in the inner problem.
        outer_lr: Adam's step size in `log(lambda)`.
        solver, iters, damping: The inverse Hessian-vector product, see `solve_hessian`.
        on_step: Called with `(step, weight, val_loss)` after each scoring.
        before_step: Called after each inner backward pass, before Adam's step (e.g. gradient clipping).
        inner_penalty: A stochastic estimate of `penalty` for the inner training (e.g. on fresh
            collocation points each step); None for `penalty`.

    Returns:
        An `IFTResult`.

    Example:
        >>> result = tune_weight_ift(model.parameters(), train_mse, smoothness, val_mse, weight=1.0)
    """
    params = list(params)
    if not weight > 0 or not 0 < bounds[0] < bounds[1]:
        raise ValueError(f"`weight` and `bounds` must be positive, bounds[0] < bounds[1]. Got {weight!r}, {bounds!r}.")
    low, high = math.log(bounds[0]), math.log(bounds[1])
    s = torch.tensor(min(max(math.log(weight), low), high), dtype=torch.double, requires_grad=True)
    outer = torch.optim.Adam([s], lr=outer_lr)
    best = (math.inf, float(s.detach().exp()), [p.detach().clone() for p in params])
    rows = []
    start = time.perf_counter()
    with torch.enable_grad():
        for step in range(outer_steps + 1):
            lam = float(s.detach().exp())
            inner = torch.optim.Adam(params, lr=inner_lr)
            for _ in range(inner_steps):
                inner.zero_grad()
                (data_loss() + lam * (inner_penalty or penalty)()).backward()
                if before_step is not None:
                    before_step()
                inner.step()
            val = float(val_loss().detach())
            if val < best[0]:
                best = (val, lam, [p.detach().clone() for p in params])
            h = math.nan
            if step < outer_steps:
                h = hypergradient(params, data_loss, penalty, val_loss, float(s.detach()), solver, iters, damping)
                outer.zero_grad()
                s.grad = torch.tensor(h if math.isfinite(h) else 0.0, dtype=torch.double)
                outer.step()
                with torch.no_grad():
                    s.clamp_(low, high)
            rows.append(
                {
                    "step": step,
                    "weight": lam,
                    "val_loss": val,
                    "hypergradient": h,
                    "seconds": time.perf_counter() - start,
                }
            )
            if on_step is not None:
                on_step(step, lam, val)
    with torch.no_grad():
        for p, saved in zip(params, best[2], strict=True):
            p.copy_(saved)
    return IFTResult(best[1], pd.DataFrame(rows))


def gaussian_val_nll(model: NeuralEnsemble, X_val: Tensor, Y_val: Tensor) -> Tensor:
    """The ensemble's predictive Gaussian NLL per seen entry of `Y_val` (differentiable in its weights)."""
    mean, var = model.predict(X_val.to(torch.float))
    mean, var = mean.reshape(Y_val.shape), var.reshape(Y_val.shape).clamp_min(1e-12)
    Y = Y_val.to(mean)
    seen = ~torch.isnan(Y)
    nll = 0.5 * (torch.log(2 * torch.pi * var) + (torch.where(seen, Y, mean) - mean).square() / var)
    return nll[seen].mean()


def tune_ensemble_ift(
    model: NeuralEnsemble,
    terms: Sequence[PhysicsTerm],
    X: Tensor,
    Y: Tensor,
    X_val: Tensor,
    Y_val: Tensor,
    weight: float = 1.0,
    bounds: tuple[float, float] = (1e-2, 1e2),
    seed: int = 0,
    **options: object,
) -> tuple[float, pd.DataFrame]:
    """Tune one common scale `lambda` of a fitted ensemble's physics terms by IFT hypergradients.

    The inner problem is the ensemble's own training loss on all of `X, Y` (the members' NLL on
    standardized outcomes, full batch) plus `lambda * sum(term.weight * term value)` on
    `n_collocation` points drawn afresh from the fitted box at each step, as the ensemble trains
    (with one fixed draw the bar's network exploited the quadrature and its error grew tenfold),
    with the ensemble's gradient clipping per member and its step size (`training_options_.lr`) unless
    `inner_lr` is given. The outer loss is the predictive NLL on `X_val, Y_val` (the grid's score
    in `tune_physics_weight`). The hypergradient takes the penalty on one fixed draw of
    `HYPER_POINTS * n_collocation` points (a deterministic function of the weights). With
    `nll_beta > 0` the inner gradient is not that of a loss (its variance factor is detached) and
    the hypergradient is only approximate. The model is changed in place: it ends with
    the weights of the best validation loss, and `model.physics` with the terms at that scale.

    Args:
        model: A `NeuralEnsemble` fitted on `X, Y` (at `weight`: its weights are the warm start).
        terms: The terms; `lambda` multiplies each one's `weight` (a single term of weight 1: its weight).
        X: The training inputs, `n x d`.
        Y: The training outcomes, `n x m`.
        X_val: Validation inputs.
        Y_val: Validation outcomes.
        weight: Starting `lambda`.
        bounds: Range of `lambda`.
        seed: Seed of the collocation points.
        **options: Passed to `tune_weight_ift` (`outer_steps`, `inner_steps`, `solver`, ...).

    Returns:
        `(best_lambda, history)`: the `IFTResult` history with `val_nll` (= `val_loss`) and
        `val_rmse` per step.
    """
    terms = [t for t in terms if t.weight > 0]
    X, Y = torch.as_tensor(X).float(), torch.as_tensor(Y).reshape(len(X), -1).float()
    T = (Y - model.y_mean_) / model.y_std_  # NaN (missing) targets are skipped by the NLL
    low, high = model.bounds_
    gen = torch.Generator().manual_seed(seed)
    fixed = low + (high - low) * torch.rand(HYPER_POINTS * model.options.n_collocation, model.d_, generator=gen)
    net, M = model.net_, model.n_members
    Xn = net.normalize(X)

    def data_loss() -> Tensor:
        out = net(Xn, normalized=True)
        return sum(model._nll(out[k], T, None) for k in range(M))  # type: ignore[return-value]

    def penalty(colloc: Tensor = fixed) -> Tensor:
        total = torch.zeros(())
        for k in range(M):
            forward = net.member(k)
            for term in terms:
                total = total + term.weight * model._physics_value(forward, term, X, colloc)
        return total

    def fresh_penalty() -> Tensor:
        return penalty(low + (high - low) * torch.rand(model.options.n_collocation, model.d_, generator=gen))

    def val_loss() -> Tensor:
        return gaussian_val_nll(model, X_val, Y_val)

    rmse: list[float] = []
    clip_norm = model.options.clip_norm

    def clip() -> None:
        if clip_norm is not None:
            clip_per_member(net, clip_norm)

    def score(step: int, lam: float, val: float) -> None:
        with torch.no_grad():
            mean, _ = model.predict(X_val.to(torch.float))
            err = mean.reshape(Y_val.shape) - Y_val.to(mean)
            rmse.append(float(err[~torch.isnan(err)].square().mean().sqrt()))

    options.setdefault("inner_lr", model.training_options_.lr)
    result = tune_weight_ift(
        list(net.parameters()),
        data_loss,
        penalty,
        val_loss,
        weight,
        bounds,
        on_step=score,
        before_step=clip,
        **options,  # type: ignore[arg-type]
    )
    net.eval()
    model.physics = [replace(t, weight=t.weight * result.weight) for t in terms]
    history = result.history.rename(columns={"val_loss": "val_nll"}).assign(val_rmse=rmse)
    return result.weight, history
