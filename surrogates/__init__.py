"""Differentiable surrogates of a system: Gaussian processes, and the interface designers use."""

from surrogates.classifier import FeasibilityModel
from surrogates.gp import SurrogateWarning, fit_gp, fit_outcome_models
from surrogates.protocol import Surrogate

__all__ = ["FeasibilityModel", "Surrogate", "SurrogateWarning", "fit_gp", "fit_outcome_models"]
