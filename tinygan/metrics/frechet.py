"""Frechet distance between two Gaussians fitted to feature sets (the maths behind FID).

Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local
Nash Equilibrium", eq. (6): the Frechet (2-Wasserstein) distance between N(mu1, S1) and
N(mu2, S2) is

    d^2 = |mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^{1/2}).

Everything here is NumPy in float64; no SciPy.
"""
from __future__ import annotations

import numpy as np


def _as_features(features, name: str) -> np.ndarray:
    """Check that `features` is a 2-D (N, D) array with N >= 2 and return it in float64."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"frechet: {name} must be a 2-D (N, D) array of features, got shape {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"frechet: {name} needs at least 2 samples for a covariance, got {x.shape[0]}")
    return x


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """mu = mean_i x_i, sigma = sum_i (x_i - mu)(x_i - mu)^T / (N - 1)."""
    x = _as_features(features, "features")
    mu = x.mean(axis=0)
    centred = x - mu
    # N - 1, as numpy.cov and the reference FID code (TTUR's fid.py) use.
    sigma = centred.T @ centred / (x.shape[0] - 1)
    return mu, sigma


def _sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    """A^{1/2} = V diag(sqrt(max(l, 0))) V^T for a symmetric PSD A = V diag(l) V^T."""
    sym = (matrix + matrix.T) / 2  # remove round-off asymmetry before eigh
    eigenvalues, eigenvectors = np.linalg.eigh(sym)
    # A covariance is PSD, but round-off gives tiny negative eigenvalues: clip them.
    root = np.sqrt(np.clip(eigenvalues, 0.0, None))
    return (eigenvectors * root) @ eigenvectors.T


def trace_sqrt_product(sigma1, sigma2) -> float:
    """Tr((S1 S2)^{1/2}) = sum_i sqrt(lambda_i(S1^{1/2} S2 S1^{1/2}))."""
    # Why this identity holds: with A = S1^{1/2} (symmetric), S1 S2 = A (A S2 A) A^{-1}
    # when A is invertible, so S1 S2 is similar to A S2 A and has the same eigenvalues.
    # A S2 A is symmetric PSD, so those eigenvalues are real and >= 0, and the principal
    # square root of S1 S2 has eigenvalues sqrt(lambda_i); its trace is their sum.
    # (If A is singular the two products A A S2 and A S2 A still share their eigenvalues,
    # since XY and YX always do, with X = A and Y = A S2.) This avoids the non-symmetric
    # sqrtm of S1 S2 (scipy.linalg.sqrtm), which can return complex round-off.
    a = _sqrtm_psd(np.asarray(sigma1, dtype=np.float64))
    middle = a @ np.asarray(sigma2, dtype=np.float64) @ a
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """d^2 = |mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^{1/2})  (Heusel et al. 2017, eq. 6)."""
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape or mu1.ndim != 1:
        raise ValueError(f"frechet_distance: means must be 1-D of one length, got {mu1.shape} and {mu2.shape}")
    d = mu1.shape[0]
    for name, s in (("sigma1", sigma1), ("sigma2", sigma2)):
        if s.shape != (d, d):
            raise ValueError(f"frechet_distance: {name} must have shape {(d, d)} to match the means, got {s.shape}")
    diff = mu1 - mu2
    distance = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2)
    # It is a squared distance, so >= 0; round-off may leave a tiny negative number.
    return float(max(distance, 0.0))


def frechet_distance_from_features(features1, features2) -> float:
    """d^2 between the Gaussians N(mu, sigma) fitted to two (N, D) feature sets."""
    f1 = _as_features(features1, "features1")
    f2 = _as_features(features2, "features2")
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"frechet_distance_from_features: feature widths differ, {f1.shape} vs {f2.shape}")
    mu1, sigma1 = feature_statistics(f1)
    mu2, sigma2 = feature_statistics(f2)
    return frechet_distance(mu1, sigma1, mu2, sigma2)
