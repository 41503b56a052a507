"""Kernel Inception Distance: an unbiased MMD^2 between feature sets.

Binkowski et al. 2018, "Demystifying MMD GANs", section 4 (KID): the squared maximum mean
discrepancy with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, estimated without
bias and averaged over random subsets. Unlike FID it has an unbiased estimator, so two
samples of one distribution score 0 on average whatever the sample size.

NumPy only, float64.
"""
from __future__ import annotations

import numpy as np


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """K_ij = (x_i . y_j / d + 1)^3, with d the feature width."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x, y) -> float:
    """MMD_u^2 = sum_{i!=j} k(x_i,x_j)/(m(m-1)) + sum_{i!=j} k(y_i,y_j)/(n(n-1)) - 2 sum_ij k(x_i,y_j)/(mn)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    m, n = x.shape[0], y.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f"mmd2_unbiased: each set needs at least 2 samples, got {m} and {n}")
    k_xx = polynomial_kernel(x, x)
    k_yy = polynomial_kernel(y, y)
    k_xy = polynomial_kernel(x, y)
    # Gretton et al. 2012, eq. (3): leaving out the diagonal k(x_i, x_i) is what removes
    # the bias (E k(x, x) != E k(x, x') for independent x, x').
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    between = k_xy.sum() / (m * n)
    return float(within_x + within_y - 2.0 * between)


def kernel_inception_distance(real, fake, n_subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
    """KID = mean over subsets of MMD_u^2(real subset, fake subset); returns (mean, std)."""
    real = np.asarray(real, dtype=np.float64)
    fake = np.asarray(fake, dtype=np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"kernel_inception_distance: expected (N, D) and (M, D) features, got {real.shape} and {fake.shape}")
    if n_subsets < 1:
        raise ValueError(f"kernel_inception_distance: n_subsets must be >= 1, got {n_subsets}")
    # Subsets are drawn without replacement from each set, so they cannot be larger
    # than the smaller set (Binkowski et al. use 1,000; small sets get what they have).
    size = min(subset_size, real.shape[0], fake.shape[0])
    rng = np.random.default_rng(seed)
    estimates = np.empty(n_subsets)
    for s in range(n_subsets):
        x = real[rng.choice(real.shape[0], size, replace=False)]
        y = fake[rng.choice(fake.shape[0], size, replace=False)]
        estimates[s] = mmd2_unbiased(x, y)
    return float(estimates.mean()), float(estimates.std())
