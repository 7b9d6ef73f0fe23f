"""A simulator's batch of designs as one Ray task per design, with the noise the whole batch would get.

A bundled simulator (`System.simulate`) draws its measurement noise for a batch at once, one
vector of `n` values per outcome, from the generator it is given. Simulating each design alone
would draw other numbers. Here each design's task gets a copy of the generator wrapped so that
each draw of one value takes the batch's draw of `n` values from the copy and keeps the design's
own entry: every design gets the noise it would get in the batch, and every copy ends where the
batch's generator would end, which the caller's generator is then set to. So a seeded campaign
measures the same values with and without Ray.

This works for simulators whose noise draws do not depend on the designs' values (every bundled
one: `normal`, `standard_normal`, ... with scalar parameters and a size of `len(designs_df)`);
a simulator whose draws do is refused with a clear error rather than given other numbers.

Example:
    >>> measured_df, true_df = simulate_designs(system.simulate, designs_df, [rng, None], ray="auto")
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd

from data.ray_tasks import RayCluster, ray_gather

Simulate = Callable[[pd.DataFrame, "np.random.Generator | None"], pd.DataFrame]
SPLIT_HOW = "Run it without Ray, or draw its noise as one vector of len(designs_df) values per outcome."


class NoiseNotSplittable(ValueError):
    """The simulator draws its noise in a way that cannot be given to each design alone."""


def simulate_designs(
    simulate: Simulate,
    designs_df: pd.DataFrame,
    rngs: Sequence[np.random.Generator | None],
    ray: str | RayCluster | None = None,
) -> list[pd.DataFrame]:
    """`[simulate(designs_df, rng) for rng in rngs]`, here or with one Ray task per design.

    Args:
        simulate: A simulator, `simulate(designs_df, rng)` (`data.System.simulate`, or a closure
            around one such as the bearing's with its grid).
        designs_df: One row per design.
        rngs: A generator (noisy measurements) or None (true values) per call, each generator at
            most once; each is advanced as the call here would advance it.
        ray: None simulates here, in one call per entry of `rngs`; an address or `RayCluster`
            sends each design to Ray as one task that makes every call for that design.

    Returns:
        One DataFrame per entry of `rngs`, rows as in `designs_df`: the same values with and
        without Ray.

    Raises:
        NoiseNotSplittable: With `ray`, if the simulator draws noise that depends on the designs.
        data.ray_tasks.RayUnavailable: If Ray is missing or its cluster does not answer.
    """
    generators = [r for r in rngs if r is not None]
    if len({id(r) for r in generators}) < len(generators):
        raise ValueError("`rngs` must hold each generator at most once. Got one twice instead.")
    if ray is None or len(designs_df) == 0:
        return [simulate(designs_df, rng) for rng in rngs]
    n = len(designs_df)
    tasks = [(simulate, designs_df.iloc[[row]], list(rngs), row, n) for row in range(n)]
    results = ray_gather(_simulate_one_design, tasks, ray)
    for j, rng in enumerate(rngs):
        if rng is None:
            continue
        ends = [ends_of_task[j] for _, ends_of_task in results]
        if any(end != ends[0] for end in ends[1:]):
            raise NoiseNotSplittable(f"the simulator drew different noise for different designs. {SPLIT_HOW}")
        rng.bit_generator.state = ends[0]
    return [pd.concat([frames[j] for frames, _ in results]) for j in range(len(rngs))]


def _simulate_one_design(
    simulate: Simulate, design_df: pd.DataFrame, rngs: list[np.random.Generator | None], row: int, n: int
) -> tuple[list[pd.DataFrame], list[dict[str, Any] | None]]:
    """Design `row` of a batch of `n`: each call's outcomes, and where each generator copy ended."""
    frames: list[pd.DataFrame] = []
    ends: list[dict[str, Any] | None] = []
    for rng in rngs:
        if rng is None:
            frames.append(simulate(design_df, None))
            ends.append(None)
            continue
        own = copy.deepcopy(rng)  # a worker's copy already is one; a local cluster's may share memory
        frames.append(simulate(design_df, cast(np.random.Generator, _RowOfBatch(own, row, n))))
        ends.append(dict(own.bit_generator.state))
    return frames, ends


class _RowOfBatch:
    """Stands in for `np.random.Generator` in a call on one design: draws as the batch's call would.

    A draw of size 1 with scalar parameters (e.g. `normal(0.0, sd, 1)`) draws `n` values from the
    wrapped generator, as the batch's call would, and returns entry `row` of them.
    """

    def __init__(self, rng: np.random.Generator, row: int, n: int) -> None:
        self._rng, self._row, self._n = rng, row, n

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._rng, name)
        try:
            signature = inspect.signature(method)
        except (TypeError, ValueError):
            signature = None
        if signature is None or "size" not in signature.parameters:
            raise NoiseNotSplittable(f"the simulator uses the generator's `{name}`. {SPLIT_HOW}")

        def draw(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            size = bound.arguments.pop("size", None)
            one = isinstance(size, int | np.integer) and size == 1 or size == (1,)
            if not one or any(np.ndim(v) for v in bound.arguments.values()):
                raise NoiseNotSplittable(
                    f"the simulator drew `{name}` with size {size!r} for one design, or with parameters that "
                    f"depend on it. {SPLIT_HOW}"
                )
            values = method(*bound.args, **{**bound.kwargs, "size": self._n})
            return values[self._row : self._row + 1]

        return draw
