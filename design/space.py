"""The search space: the one translator between user tables (DataFrames) and model tensors.

Encoding, column by column (a `n x d` double tensor):
- continuous: `(x - low) / (high - low)`, on `log(x)` for log-scaled parameters, so in `[0, 1]`;
- integer: the same affine map, so its values are the levels `{0, 1/(m), ..., 1}`;
- categorical: the index of the value in the parameter's list, `0 .. k - 1`.
Linear constraints are re-expressed in these coordinates in botorch's
`(indices, coefficients, rhs)` form, meaning `sum(coefficients * X[indices]) >= rhs`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from design.constraints import LinearConstraint, parse_constraint
from design.errors import InputError
from design.parameters import CategoricalParameter, ContinuousParameter, IntegerParameter

AnyParameter = ContinuousParameter | IntegerParameter | CategoricalParameter
BotorchConstraint = tuple[Tensor, Tensor, float]


class SearchSpace:
    """Parameters and linear constraints of a design problem.

    Example:
        >>> space = SearchSpace([ContinuousParameter(name="x", bounds=(0, 10))], ["x <= 5"])
        >>> space.encode(pd.DataFrame({"x": [2.5]}))
        tensor([[0.2500]], dtype=torch.float64)
    """

    def __init__(self, parameters: Sequence[AnyParameter], constraints: Sequence[str] = ()):
        self.parameters = list(parameters)
        self.names = [p.name for p in self.parameters]
        if len(set(self.names)) != len(self.names):
            raise InputError(f"parameter names must be unique. Got {self.names} instead.")
        self.constraints = [self._checked(parse_constraint(c, self.names)) for c in constraints]

    @property
    def d(self) -> int:
        return len(self.parameters)

    @property
    def bounds(self) -> Tensor:
        """A `2 x d` tensor of bounds in encoded coordinates."""
        high = [len(p.values) - 1 if _is_cat(p) else 1.0 for p in self.parameters]
        return torch.tensor([[0.0] * self.d, high], dtype=torch.double)

    @property
    def cat_dims(self) -> dict[int, list[float]]:
        return {
            i: [float(k) for k in range(len(p.values))]
            for i, p in enumerate(self.parameters)
            if isinstance(p, CategoricalParameter)
        }

    @property
    def discrete_dims(self) -> dict[int, list[float]]:
        """Integer parameters and their levels in encoded coordinates."""
        out = {}
        for i, p in enumerate(self.parameters):
            if isinstance(p, IntegerParameter):
                m = p.bounds[1] - p.bounds[0]
                out[i] = [k / m for k in range(m + 1)]
        return out

    def encode(self, df: pd.DataFrame) -> Tensor:
        """Map validated designs (user units) to an `n x d` tensor."""
        cols = []
        for p in self.parameters:
            if isinstance(p, CategoricalParameter):
                lookup = {v: float(k) for k, v in enumerate(p.values)}
                cols.append(df[p.name].astype(str).map(lookup).to_numpy(dtype=float))
            else:
                low, high = _scaled_bounds(p)
                x = df[p.name].to_numpy(dtype=float)
                x = np.log(x) if getattr(p, "log", False) else x
                cols.append((x - low) / (high - low))
        return torch.tensor(np.stack(cols, axis=-1), dtype=torch.double).reshape(len(df), self.d)

    def decode(self, X: Tensor) -> pd.DataFrame:
        """Map an `n x d` tensor back to designs in user units (integers and categories exact)."""
        U = X.detach().cpu().double().numpy().reshape(-1, self.d)
        data: dict[str, object] = {}
        for i, p in enumerate(self.parameters):
            u = U[:, i]
            if isinstance(p, CategoricalParameter):
                idx = np.clip(np.rint(u), 0, len(p.values) - 1).astype(int)
                data[p.name] = [p.values[k] for k in idx]
                continue
            low, high = _scaled_bounds(p)
            x = low + (high - low) * np.clip(u, 0.0, 1.0)
            if isinstance(p, IntegerParameter):
                data[p.name] = np.clip(np.rint(x), *p.bounds).astype(int)
            else:
                x = np.exp(x) if p.log else x
                data[p.name] = np.clip(x, *p.bounds)
        return pd.DataFrame(data)

    def botorch_constraints(self) -> tuple[list[BotorchConstraint], list[BotorchConstraint]]:
        """`(inequality_constraints, equality_constraints)` in encoded coordinates."""
        inequalities, equalities = [], []
        for c in self.constraints:
            idx, coef, shift = [], [], 0.0
            for name, a in c.coefficients.items():
                i = self.names.index(name)
                low, high = self.parameters[i].bounds  # type: ignore[union-attr]
                idx.append(i)
                coef.append(a * (high - low))
                shift += a * low
            rhs = c.rhs - shift
            indices = torch.tensor(idx, dtype=torch.long)
            coefficients = torch.tensor(coef, dtype=torch.double)
            if c.op == "<=":
                inequalities.append((indices, -coefficients, -rhs))
            elif c.op == ">=":
                inequalities.append((indices, coefficients, rhs))
            else:
                equalities.append((indices, coefficients, rhs))
        return inequalities, equalities

    def feasible(self, df: pd.DataFrame) -> np.ndarray:
        """Boolean mask of the rows that satisfy every linear constraint."""
        ok = np.ones(len(df), dtype=bool)
        for c in self.constraints:
            ok &= c.residual(df) <= c.tolerance()
        return ok

    def sample(self, n: int, seed: int = 0) -> Tensor:
        """Up to `n` feasible designs, scrambled Sobol (rejection) or hit-and-run if equalities."""
        _, equalities = self.botorch_constraints()
        if equalities:
            X = self._polytope_sample(max(n, 64), seed)
        else:
            engine = torch.quasirandom.SobolEngine(self.d, scramble=True, seed=seed)
            X = self._from_unit_cube(engine.draw(max(256, 16 * n), dtype=torch.double))
            if self.feasible(self.decode(X)).sum() < n:
                X = torch.cat([X, self._polytope_sample(max(n, 64), seed)])
        X = X[torch.as_tensor(self.feasible(self.decode(X)))]
        return X[:n]

    def _from_unit_cube(self, S: Tensor) -> Tensor:
        """Map unit-cube samples onto categorical indices and integer levels."""
        X = S.clone()
        for i, values in self.cat_dims.items():
            X[:, i] = torch.clamp(torch.floor(S[:, i] * len(values)), max=len(values) - 1)
        for i, levels in self.discrete_dims.items():
            m = len(levels) - 1
            X[:, i] = torch.round(S[:, i] * m) / m
        return X

    def _polytope_sample(self, n: int, seed: int) -> Tensor:
        from botorch.utils.sampling import get_polytope_samples

        inequalities, equalities = self.botorch_constraints()
        X = get_polytope_samples(n, self.bounds, inequalities or None, equalities or None, seed=seed, n_burnin=500)
        return self.snap(X)

    def snap(self, X: Tensor) -> Tensor:
        """Round encoded categorical codes and integer levels to their nearest valid value."""
        X = X.clone()
        for i in self.cat_dims:
            X[:, i] = torch.round(X[:, i])
        for i, levels in self.discrete_dims.items():
            m = len(levels) - 1
            X[:, i] = torch.round(X[:, i] * m) / m
        return X

    def _checked(self, c: LinearConstraint) -> LinearConstraint:
        for name in c.coefficients:
            p = self.parameters[self.names.index(name)]
            if isinstance(p, CategoricalParameter) or getattr(p, "log", False):
                kind = "categorical" if isinstance(p, CategoricalParameter) else "log-scaled"
                raise InputError(
                    f"constraint {c.text!r} uses {name!r}, which is {kind}. Linear constraints "
                    "may only use continuous (not log) or integer parameters."
                )
            if c.op == "==" and isinstance(p, IntegerParameter):
                raise InputError(
                    f"constraint {c.text!r} is an equality on the integer parameter {name!r}. "
                    "Equalities may only use continuous parameters."
                )
        return c


def _is_cat(p: AnyParameter) -> bool:
    return isinstance(p, CategoricalParameter)


def _scaled_bounds(p: ContinuousParameter | IntegerParameter) -> tuple[float, float]:
    low, high = float(p.bounds[0]), float(p.bounds[1])
    if getattr(p, "log", False):
        return float(np.log(low)), float(np.log(high))
    return low, high
