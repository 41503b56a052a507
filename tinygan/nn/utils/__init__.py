"""Helpers that act on modules: spectral normalisation."""
from .spectral import SpectralNorm, remove_spectral_norm, spectral_norm

__all__ = ["SpectralNorm", "remove_spectral_norm", "spectral_norm"]
