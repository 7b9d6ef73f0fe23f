"""Differentiable surrogates of a system: GPs, neural ensembles, weighted losses, physics terms, diagnostics."""

from surrogates.classifier import FeasibilityModel
from surrogates.diagnostics import calibration_verdict, cross_validate, fit_predict_ensemble, fit_predict_gp
from surrogates.ensemble import NeuralEnsemble
from surrogates.ensemble_classifier import NeuralClassifierEnsemble
from surrogates.ensemble_training import TrainingOptions
from surrogates.gp import SurrogateWarning, fit_gp, fit_outcome_models
from surrogates.losses import balanced_class_weights, binary_cross_entropy, gaussian_nll, weighted_mse
from surrogates.means import CustomMean, EmaxMean, mean_from_config
from surrogates.networks import NetworkSpec, one_hot
from surrogates.noise import TrustWeightedLikelihood
from surrogates.physics import (
    PhysicsTerm,
    bounded,
    monotonic,
    physics_terms_from_config,
    saturating,
    tune_physics_weight,
)
from surrogates.protocol import Surrogate

__all__ = [
    "CustomMean",
    "EmaxMean",
    "FeasibilityModel",
    "NetworkSpec",
    "NeuralClassifierEnsemble",
    "NeuralEnsemble",
    "PhysicsTerm",
    "Surrogate",
    "SurrogateWarning",
    "TrainingOptions",
    "TrustWeightedLikelihood",
    "balanced_class_weights",
    "binary_cross_entropy",
    "bounded",
    "calibration_verdict",
    "cross_validate",
    "fit_gp",
    "fit_outcome_models",
    "fit_predict_ensemble",
    "fit_predict_gp",
    "gaussian_nll",
    "mean_from_config",
    "monotonic",
    "one_hot",
    "physics_terms_from_config",
    "saturating",
    "tune_physics_weight",
    "weighted_mse",
]
