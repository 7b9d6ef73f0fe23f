"""Gradient-based inverse design through a differentiable surrogate.

`core` holds `inverse_design` and `InverseOptions`; the steps it is made of live beside it:
`goals` (parsing objectives, constraints and targets), `relax` (the relaxed design variables),
`score` (objective terms and violations through the surrogate), `select` (polishing, ranking and
picking distinct designs, and `verify_designs`), `batch` (many targets in one descent) and
`anchor` (designs anchored on the measured data). Submodules import one another, never this
package, so each imports alone.
"""

from design.inverse.core import InverseOptions, inverse_design
from design.inverse.goals import Goal, as_goals, parse_goal
from design.inverse.select import verify_designs

__all__ = ["Goal", "InverseOptions", "as_goals", "inverse_design", "parse_goal", "verify_designs"]
