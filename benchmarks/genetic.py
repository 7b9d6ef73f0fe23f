"""A genetic algorithm over strings: the population baseline of the sequence benchmarks.

Where gradients do not reach (discrete sequences), a population method is the established
reference: `genetic_algorithm` maximizes any score of strings within a budget of calls. The
inverse-design benchmark (`benchmarks.inverse`) runs it on the surrogate and on the sequence
oracle of `data.sequences`, whose alphabet and length are its defaults.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from data.sequences import ALPHABET, LENGTH

__all__ = ["genetic_algorithm"]


def genetic_algorithm(
    score: Callable[[list[str]], np.ndarray],
    budget: int,
    seed: int = 0,
    population: int = 64,
    length: int = LENGTH,
    alphabet: str = ALPHABET,
) -> pd.DataFrame:
    """Maximize `score` over strings with a simple GA that calls it at most `budget` times in all.

    Tournament selection (size 3), uniform crossover, one expected mutation per child, and the
    best quarter carried over (elitism, not re-scored).

    Args:
        score: Takes a list of strings, returns their scores (higher is better).
        budget: Total number of strings scored (the oracle or surrogate calls).
        seed: Seed of the GA's random generator.
        population: Individuals per generation.
        length: String length.
        alphabet: Letters.

    Returns:
        Every distinct string scored, with `score`, best first; `attrs["calls"]` is the number of calls.

    Example:
        >>> best = genetic_algorithm(lambda s: np.array([x.count("A") for x in s]), 400, length=6, alphabet="AB")
        >>> best["sequence"].iloc[0]
        'AAAAAA'
    """
    rng = np.random.default_rng(seed)
    A = len(alphabet)
    pop = rng.integers(0, A, size=(min(population, budget), length))
    seen: dict[str, float] = {}

    def evaluate(codes: np.ndarray) -> np.ndarray:
        strings = ["".join(alphabet[c] for c in row) for row in codes]
        values = np.asarray(score(strings), dtype=float)
        seen.update(zip(strings, values, strict=True))
        return values

    fitness = evaluate(pop)
    calls = len(pop)
    elite = max(1, population // 4)
    while calls < budget:
        n_children = min(population - elite, budget - calls)
        contenders = rng.integers(0, len(pop), size=(2, n_children, 3))
        parents = [pop[c[np.arange(n_children), fitness[c].argmax(-1)]] for c in contenders]
        children = np.where(rng.random((n_children, length)) < 0.5, parents[0], parents[1])
        mutate = rng.random((n_children, length)) < 1.0 / length
        children = np.where(mutate, rng.integers(0, A, size=children.shape), children)
        child_fitness = evaluate(children)
        calls += n_children
        keep = np.argsort(-fitness)[:elite]
        pop = np.concatenate([pop[keep], children])
        fitness = np.concatenate([fitness[keep], child_fitness])
    out = pd.DataFrame({"sequence": list(seen), "score": list(seen.values())}).sort_values("score", ascending=False)
    out = out.reset_index(drop=True)
    out.attrs["calls"] = calls
    return out
