"""Search spaces and constraints, and the designers that propose what to make or measure next."""

from design.bo import (
    FeasibilityWeighted,
    candidate_pool,
    choose_from_pool,
    make_acquisition,
    optimize_batch,
    probability_safe,
    space_filling,
    spread_rows,
)
from design.errors import InputError
from design.goals import Objective, SafetyLimit
from design.parameters import CategoricalParameter, ContinuousParameter, IntegerParameter, Parameter
from design.space import SearchSpace
from design.validation import validate_designs

__all__ = [
    "CategoricalParameter",
    "FeasibilityWeighted",
    "candidate_pool",
    "ContinuousParameter",
    "InputError",
    "IntegerParameter",
    "Objective",
    "Parameter",
    "SafetyLimit",
    "SearchSpace",
    "choose_from_pool",
    "make_acquisition",
    "optimize_batch",
    "probability_safe",
    "space_filling",
    "spread_rows",
    "validate_designs",
]
