"""Mode coverage on 2D Gaussian mixtures (ring of 8, grid of 25).

The protocol of VEEGAN (Srivastava et al. 2017, section 5.1) and PacGAN (Lin et al. 2018,
section 4.1): draw samples from the generator (2,500 in those papers; drawing them is the
caller's business), give each one its nearest mixture centre, call it high quality when
it lies within 3 standard deviations of that centre, and call a mode covered when at
least one high-quality sample falls to it. Reverse KL compares the modes' share of the
high-quality samples with the uniform share 1/K of the true mixture.

Note: for an isotropic 2D Gaussian the distance to its centre is Rayleigh distributed, so
even true samples are within 3 std with probability 1 - exp(-9/2) ~ 0.9889, not 1.

NumPy only, float64.
"""
from __future__ import annotations

import numpy as np

from .coverage import kl_to_uniform


def mixture_metrics(samples, centers, std: float, n_std: float = 3.0) -> dict:
    """modes_covered, high_quality_fraction = P[|x - c(x)| <= 3 std], reverse_kl = KL(q || U_K), histogram (counts)."""
    x = np.asarray(samples, dtype=np.float64)
    c = np.asarray(centers, dtype=np.float64)
    if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1]:
        raise ValueError(f"mixture_metrics: expected (N, D) samples and (K, D) centres, got {x.shape} and {c.shape}")
    if x.shape[0] == 0:
        raise ValueError("mixture_metrics: no samples")
    if std <= 0:
        raise ValueError(f"mixture_metrics: std must be positive, got {std}")
    # (N, K) distances: K is small (8 or 25), so the direct difference is cheap and exact.
    distances = np.sqrt(((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=2))
    nearest = distances.argmin(axis=1)
    high_quality = distances[np.arange(x.shape[0]), nearest] <= n_std * std
    histogram = np.bincount(nearest[high_quality], minlength=c.shape[0])
    # No high-quality sample means nothing of the mixture was matched: infinitely far.
    reverse_kl = kl_to_uniform(histogram) if histogram.sum() > 0 else float("inf")
    return {
        "modes_covered": int((histogram > 0).sum()),
        "high_quality_fraction": float(high_quality.mean()),
        "reverse_kl": reverse_kl,
        "histogram": histogram.tolist(),
    }
