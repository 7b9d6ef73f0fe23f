"""Gradient-based inverse design through a differentiable surrogate.

`core` holds `inverse_design` and `InverseOptions`; the steps it is made of live beside it:
`goals` (parsing objectives, constraints and targets), `relax` (the relaxed design variables),
`score` (objective terms and violations through the surrogate), `select` (polishing, ranking and
picking distinct designs, and `verify_designs`), `batch` (many targets in one descent),
`anchor` (designs anchored on the measured data), `learned` (a meta-trained optimizer for the
descent), `population` (CMA-ES, where gradients do not reach) and `fanout` (groups of targets as
Ray tasks). Submodules import one another,
never this package, so each imports alone.
"""

from design.inverse.core import InverseOptions, inverse_design
from design.inverse.fanout import inverse_design_groups
from design.inverse.goals import Goal, as_goals, parse_goal
from design.inverse.learned import LearnedOptimizer, load_learned, meta_train, save_learned
from design.inverse.population import cmaes_design
from design.inverse.select import verify_designs

__all__ = [
    "Goal",
    "InverseOptions",
    "LearnedOptimizer",
    "as_goals",
    "cmaes_design",
    "inverse_design",
    "inverse_design_groups",
    "load_learned",
    "meta_train",
    "parse_goal",
    "save_learned",
    "verify_designs",
]
