"""Precision, recall, density and coverage of a generated feature set against a real one.

Precision and recall: Kynkaanniemi et al. 2019, "Improved Precision and Recall Metric for
Assessing Generative Models", section 2: each set's manifold is the union of balls around
its samples, each ball reaching the sample's k-th nearest neighbour in its own set.
Density and coverage: Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for
Generative Models", eqs. (1)-(2), which count balls instead of asking "inside any?".

Distances are computed in row chunks, so 10,000 x 10,000 pairs never sit in memory at
once. NumPy only, float64.
"""
from __future__ import annotations

import numpy as np

# About 64 MB of float64 per distance block.
_BLOCK_ELEMENTS = 8_000_000

# Balls are closed (Kynkaanniemi et al. 2019, eq. 1: ||phi - phi'|| <= radius). The radii
# and the real-vs-fake distances come from different matrix products, whose round-off
# differs, so a sample lying exactly on a radius (the k-th neighbour itself, when fake
# repeats real) could fall out by a few ulps. Squared radii get this relative slack.
_RADIUS_SLACK = 1e-9


def _row_chunks(n_rows: int, n_cols: int):
    """Yield slices of rows such that each block of rows x n_cols stays near _BLOCK_ELEMENTS."""
    step = max(1, _BLOCK_ELEMENTS // max(1, n_cols))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """D_ij = |x_i|^2 + |y_j|^2 - 2 x_i . y_j, clipped at 0 (round-off can go below)."""
    d = (x * x).sum(axis=1)[:, None] + (y * y).sum(axis=1)[None, :] - 2.0 * (x @ y.T)
    return np.maximum(d, 0.0, out=d)


def knn_radii(features, k: int = 5) -> np.ndarray:
    """r_i = distance from x_i to its k-th nearest neighbour in the same set, x_i itself left out."""
    x = np.asarray(features, dtype=np.float64)
    n = x.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"knn_radii: k must be in [1, N-1] = [1, {n - 1}], got {k}")
    squared_radii = np.empty(n)
    for rows in _row_chunks(n, n):
        block = squared_distances(x[rows], x)
        # Leave each point out of its own neighbours (a duplicate of it still counts).
        block[np.arange(rows.stop - rows.start), np.arange(rows.start, rows.stop)] = np.inf
        squared_radii[rows] = np.partition(block, k - 1, axis=1)[:, k - 1]
    return np.sqrt(squared_radii)


def prdc(real, fake, k: int = 5) -> dict:
    """precision = P_fake[in real manifold], recall = P_real[in fake manifold], density, coverage (k-NN balls)."""
    real = np.asarray(real, dtype=np.float64)
    fake = np.asarray(fake, dtype=np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"prdc: expected (N, D) real and (M, D) fake features, got {real.shape} and {fake.shape}")
    n_real, n_fake = real.shape[0], fake.shape[0]
    real_r2 = knn_radii(real, k) ** 2 * (1.0 + _RADIUS_SLACK)
    fake_r2 = knn_radii(fake, k) ** 2 * (1.0 + _RADIUS_SLACK)

    # One pass over real-vs-fake distances, a chunk of real rows at a time.
    balls_holding_fake = np.zeros(n_fake, dtype=np.int64)   # per fake j: #{i: fake_j in B(real_i)}
    real_in_fake_manifold = np.zeros(n_real, dtype=bool)     # per real i: some fake ball holds it
    nearest_fake_in_ball = np.zeros(n_real, dtype=bool)      # per real i: nearest fake in B(real_i)
    for rows in _row_chunks(n_real, n_fake):
        block = squared_distances(real[rows], fake)          # (chunk of real, all fake)
        inside_real_balls = block <= real_r2[rows, None]
        balls_holding_fake += inside_real_balls.sum(axis=0)
        real_in_fake_manifold[rows] = (block <= fake_r2[None, :]).any(axis=1)
        nearest_fake_in_ball[rows] = block.min(axis=1) <= real_r2[rows]

    return {
        # Kynkaanniemi et al. 2019, eqs. (1)-(2)
        "precision": float((balls_holding_fake > 0).mean()),
        "recall": float(real_in_fake_manifold.mean()),
        # Naeem et al. 2020, eq. (1): density = 1/(kM) sum_j sum_i 1[fake_j in B(real_i, r_i)]
        "density": float(balls_holding_fake.sum() / (k * n_fake)),
        # Naeem et al. 2020, eq. (2): coverage = 1/N sum_i 1[exists j: fake_j in B(real_i, r_i)]
        "coverage": float(nearest_fake_in_ball.mean()),
    }
