"""Evaluation maths: Frechet distance, KID, precision/recall/density/coverage, mode and class coverage.

Everything here takes NumPy feature arrays and computes in float64 with NumPy alone.
"""
import importlib

from .frechet import feature_statistics, frechet_distance, frechet_distance_from_features
from .kid import kernel_inception_distance, mmd2_unbiased
from .manifolds import prdc
from .coverage import class_coverage, kl_to_uniform, stacked_modes
from .mixtures import mixture_metrics

__all__ = [
    "feature_statistics", "frechet_distance", "frechet_distance_from_features",
    "kernel_inception_distance", "mmd2_unbiased",
    "prdc",
    "class_coverage", "kl_to_uniform", "stacked_modes",
    "mixture_metrics",
]

# Scoring GANs needs the engine (feature networks are tinygan models) and the data, so it
# loads on first use and `import tinygan.metrics` stays NumPy-only.
_SCORING = {"evaluate_gan": ".evaluate", "describe_scores": ".evaluate",
            "feature_network": ".features", "FeatureNetwork": ".features",
            "stacked_mnist": "..data", "stacked_mnist_modes": ".stacked"}
__all__ += list(_SCORING)


def __getattr__(name):
    if name in _SCORING:
        return getattr(importlib.import_module(_SCORING[name], __name__), name)
    raise AttributeError(f"module 'tinygan.metrics' has no attribute {name!r}")
