"""Search spaces and constraints, and the designers that propose what to make or measure next."""

from design.bo import (
    candidate_pool,
    choose_from_pool,
    make_acquisition,
    objective_function,
    optimize_batch,
    probability_safe,
    probability_safe_grad,
    space_filling,
    spread_rows,
)
from design.errors import InputError
from design.feasible import ConfidenceBarrier, FeasibilityWeighted, least_violation_samples
from design.goals import Objective, SafetyLimit, limits_hold
from design.inverse import InverseOptions, inverse_design
from design.inverse.goals import Goal, parse_goal
from design.inverse.select import verify_designs
from design.parameters import (
    CategoricalParameter,
    ContinuousParameter,
    IntegerParameter,
    Parameter,
    SequenceParameter,
)
from design.space import SearchSpace
from design.validation import validate_designs

__all__ = [
    "CategoricalParameter",
    "ConfidenceBarrier",
    "FeasibilityWeighted",
    "Goal",
    "InverseOptions",
    "SequenceParameter",
    "candidate_pool",
    "ContinuousParameter",
    "InputError",
    "IntegerParameter",
    "Objective",
    "Parameter",
    "SafetyLimit",
    "SearchSpace",
    "choose_from_pool",
    "inverse_design",
    "least_violation_samples",
    "limits_hold",
    "make_acquisition",
    "objective_function",
    "optimize_batch",
    "parse_goal",
    "probability_safe",
    "probability_safe_grad",
    "space_filling",
    "spread_rows",
    "validate_designs",
    "verify_designs",
]
