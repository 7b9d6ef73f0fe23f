"""The search space: the one translator between user tables (DataFrames) and model tensors.

Encoding, column by column (a `n x d` double tensor):
- continuous: `(x - low) / (high - low)`, on `log(x)` for log-scaled parameters, so in `[0, 1]`;
- integer: the same affine map, so its values are the levels `{0, 1/(m), ..., 1}`;
- categorical: the index of the value in the parameter's list, `0 .. k - 1`;
- sequence: after all the columns above (one per scalar parameter, in order), one one-hot block
  of `L * A` columns per sequence parameter, position-major: column `start + i * A + a` is 1 when
  letter `a` of the alphabet sits at position `i` (`sequence_blocks` lists `(start, L, A)`).
Linear constraints are re-expressed in these coordinates in botorch's
`(indices, coefficients, rhs)` form, meaning `sum(coefficients * X[indices]) >= rhs`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from data.constraints import LinearConstraint, parse_constraint
from design.errors import InputError
from design.parameters import CategoricalParameter, ContinuousParameter, IntegerParameter, SequenceParameter

AnyParameter = ContinuousParameter | IntegerParameter | CategoricalParameter | SequenceParameter
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
        # Scalar parameters take one column each, in order; sequence blocks follow them.
        self.scalars = [p for p in self.parameters if not isinstance(p, SequenceParameter)]
        self.sequences = [p for p in self.parameters if isinstance(p, SequenceParameter)]
        self.constraints = [self._checked(parse_constraint(c, self.names)) for c in constraints]

    @property
    def d(self) -> int:
        """Number of encoded columns (one per scalar parameter plus every sequence's one-hot block)."""
        return len(self.scalars) + sum(p.n_columns for p in self.sequences)

    @property
    def n_choices(self) -> int:
        """Choices that make a design: one per scalar parameter and one per sequence position.

        A model needs about `n_choices + 1` distinct designs, not `d + 1`: a one-hot block
        has `L * A` columns but only `L` free letters.
        """
        return len(self.scalars) + sum(p.length for p in self.sequences)

    @property
    def sequence_blocks(self) -> list[tuple[int, int, int]]:
        """`(start, L, A)` of each sequence parameter's one-hot block, in parameter order."""
        blocks, start = [], len(self.scalars)
        for p in self.sequences:
            blocks.append((start, p.length, len(p.alphabet)))
            start += p.n_columns
        return blocks

    def column(self, name: str) -> int:
        """First encoded column of the parameter `name`."""
        for i, p in enumerate(self.scalars):
            if p.name == name:
                return i
        for seq, (start, _, _) in zip(self.sequences, self.sequence_blocks, strict=True):
            if seq.name == name:
                return start
        raise InputError(f"`name` must be a parameter of the space ({self.names}). Got {name!r} instead.")

    @property
    def bounds(self) -> Tensor:
        """A `2 x d` tensor of bounds in encoded coordinates."""
        high = [len(p.values) - 1 if isinstance(p, CategoricalParameter) else 1.0 for p in self.scalars]
        high += [1.0] * (self.d - len(self.scalars))
        return torch.tensor([[0.0] * self.d, high], dtype=torch.double)

    @property
    def cat_dims(self) -> dict[int, list[float]]:
        return {
            i: [float(k) for k in range(len(p.values))]
            for i, p in enumerate(self.scalars)
            if isinstance(p, CategoricalParameter)
        }

    @property
    def discrete_dims(self) -> dict[int, list[float]]:
        """Integer parameters and their levels in encoded coordinates."""
        out = {}
        for i, p in enumerate(self.scalars):
            if isinstance(p, IntegerParameter):
                m = p.bounds[1] - p.bounds[0]
                out[i] = [k / m for k in range(m + 1)]
        return out

    def encode(self, df: pd.DataFrame) -> Tensor:
        """Map validated designs (user units) to an `n x d` tensor."""
        cols = []
        for p in self.scalars:
            if isinstance(p, CategoricalParameter):
                lookup = {v: float(k) for k, v in enumerate(p.values)}
                cols.append(df[p.name].astype(str).map(lookup).to_numpy(dtype=float))
            else:
                low, high = _scaled_bounds(p)
                x = df[p.name].to_numpy(dtype=float)
                x = np.log(x) if getattr(p, "log", False) else x
                cols.append((x - low) / (high - low))
        for seq in self.sequences:
            cols.extend(one_hot(df[seq.name], seq).T)
        if not cols:
            return torch.zeros(len(df), 0, dtype=torch.double)
        return torch.tensor(np.stack(cols, axis=-1), dtype=torch.double).reshape(len(df), self.d)

    def decode(self, X: Tensor) -> pd.DataFrame:
        """Map an `n x d` tensor back to designs in user units (integers, categories, letters exact).

        A sequence position takes the letter with the largest value in its block (so a relaxed,
        softmax block decodes to its most likely letter).
        """
        U = X.detach().cpu().double().numpy().reshape(-1, self.d)
        data: dict[str, object] = {}
        blocks = dict(zip([p.name for p in self.sequences], self.sequence_blocks, strict=True))
        scalar_index = {p.name: i for i, p in enumerate(self.scalars)}
        for p in self.parameters:
            if isinstance(p, SequenceParameter):
                start, L, A = blocks[p.name]
                letters = np.asarray(list(p.alphabet))[U[:, start : start + L * A].reshape(-1, L, A).argmax(-1)]
                data[p.name] = ["".join(row) for row in letters]
                continue
            i = scalar_index[p.name]
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
                i = self.column(name)
                low, high = self.scalars[i].bounds  # type: ignore[union-attr]
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
            engine = torch.quasirandom.SobolEngine(max(len(self.scalars), 1), scramble=True, seed=seed)
            S = engine.draw(max(256, 16 * n), dtype=torch.double)[:, : len(self.scalars)]
            X = self._from_unit_cube(torch.cat([S, self._random_sequences(len(S), seed)], dim=-1))
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
        k = len(self.scalars)
        X = get_polytope_samples(
            n, self.bounds[:, :k], inequalities or None, equalities or None, seed=seed, n_burnin=500
        )
        return self.snap(torch.cat([X, self._random_sequences(len(X), seed)], dim=-1))

    def _random_sequences(self, n: int, seed: int) -> Tensor:
        """`n` uniformly random sequences for every sequence parameter, one-hot encoded."""
        generator = torch.Generator().manual_seed(seed)
        blocks = []
        for _, L, A in self.sequence_blocks:
            letters = torch.randint(A, (n, L), generator=generator)
            blocks.append(torch.nn.functional.one_hot(letters, A).double().reshape(n, L * A))
        return torch.cat(blocks, dim=-1) if blocks else torch.zeros(n, 0, dtype=torch.double)

    def snap(self, X: Tensor) -> Tensor:
        """Round categorical codes and integer levels to the nearest valid value; sequences to one-hot."""
        X = X.clone()
        for i in self.cat_dims:
            X[:, i] = torch.round(X[:, i])
        for i, levels in self.discrete_dims.items():
            m = len(levels) - 1
            X[:, i] = torch.round(X[:, i] * m) / m
        for start, L, A in self.sequence_blocks:
            block = X[:, start : start + L * A].reshape(-1, L, A)
            hot = torch.nn.functional.one_hot(block.argmax(-1), A).to(X)
            X[:, start : start + L * A] = hot.reshape(-1, L * A)
        return X

    def room(self) -> float | None:
        """How much room the linear constraints leave: None if no design satisfies them all.

        Otherwise the radius, in encoded coordinates (each range scaled to [0, 1]; integers
        relaxed to real values), of the largest ball inside the inequality constraints (and
        equalities) of a feasible design, capped at 1. A tiny radius means the designs that
        satisfy the constraints form a sliver too thin to search. Solved as a small LP with
        scipy's `linprog` (the Chebyshev center).
        """
        from scipy.optimize import linprog

        inequalities, equalities = self.botorch_constraints()
        if not inequalities and not equalities:
            return 1.0
        k = len(self.scalars)

        def rows(constraints: list[BotorchConstraint], sign: float) -> tuple[np.ndarray, np.ndarray]:
            A, b = np.zeros((len(constraints), k + 1)), np.zeros(len(constraints))
            for r, (indices, coefficients, rhs) in enumerate(constraints):
                norm = float(coefficients.abs().max())  # rows scaled to unit size: tolerances mean the same
                A[r, indices.numpy()] = sign * coefficients.numpy() / norm
                b[r] = sign * rhs / norm
                A[r, k] = float(np.linalg.norm(A[r, :k])) if sign < 0 else 0.0
            return A, b

        A_ub, b_ub = rows(inequalities, -1.0) if inequalities else (None, None)
        A_eq, b_eq = rows(equalities, 1.0) if equalities else (None, None)
        high = self.bounds[1, :k].tolist()
        cost = np.zeros(k + 1)
        cost[k] = -1.0  # maximize the radius
        result = linprog(
            cost, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=[(0.0, h) for h in high] + [(0.0, 1.0)]
        )
        if result.status == 2:  # infeasible
            return None
        return float(result.x[k]) if result.status == 0 else 0.0

    def _checked(self, c: LinearConstraint) -> LinearConstraint:
        for name in c.coefficients:
            p = self.parameters[self.names.index(name)]
            if isinstance(p, CategoricalParameter | SequenceParameter) or getattr(p, "log", False):
                kind = "log-scaled" if getattr(p, "log", False) else p.type
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


def one_hot(values: pd.Series | Sequence[str], p: SequenceParameter) -> np.ndarray:
    """Encode strings of `p`'s alphabet and length as an `n x (L * A)` position-major one-hot array.

    Raises:
        InputError: If a string has the wrong length or a letter outside the alphabet.
    """
    lookup = {letter: a for a, letter in enumerate(p.alphabet)}
    A = len(p.alphabet)
    strings = [str(v) for v in values]
    out = np.zeros((len(strings), p.length * A))
    for row, s in enumerate(strings):
        bad = [c for c in s if c not in lookup]
        if len(s) != p.length or bad:
            raise InputError(
                f"`{p.name}` must be a string of {p.length} letters from {p.alphabet!r}. Got {s!r} instead. "
                "Fix the sequence or the parameter's alphabet and length."
            )
        out[row, [i * A + lookup[c] for i, c in enumerate(s)]] = 1.0
    return out


def _is_cat(p: AnyParameter) -> bool:
    return isinstance(p, CategoricalParameter)


def _scaled_bounds(p: ContinuousParameter | IntegerParameter) -> tuple[float, float]:
    low, high = float(p.bounds[0]), float(p.bounds[1])
    if getattr(p, "log", False):
        return float(np.log(low)), float(np.log(high))
    return low, high
