"""Evaluation maths: Frechet distance, KID, precision/recall/density/coverage, mode and class coverage.

Everything here takes NumPy feature arrays and computes in float64 with NumPy alone.
"""
from .frechet import feature_statistics, frechet_distance, frechet_distance_from_features
from .kid import kernel_inception_distance, mmd2_unbiased
from .prdc import prdc
from .coverage import class_coverage, kl_to_uniform, stacked_modes
from .mixtures import mixture_metrics

__all__ = [
    "feature_statistics", "frechet_distance", "frechet_distance_from_features",
    "kernel_inception_distance", "mmd2_unbiased",
    "prdc",
    "class_coverage", "kl_to_uniform", "stacked_modes",
    "mixture_metrics",
]
