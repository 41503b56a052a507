"""Inputs for gradient checks: float64 leaves kept away from kinks and ties."""
import numpy as np

import tinygan


def away(*shape, seed=0, margin=0.1):
    """float64 values at least `margin` from 0: sign * (margin + |N(0,1)|)."""
    r = np.random.default_rng(seed).standard_normal(shape)
    return np.asarray(np.where(r >= 0, 1.0, -1.0) * (margin + np.abs(r)))


def distinct(*shape, seed=0):
    """float64 values with no ties (0.05 apart, shuffled), so max has a unique arg-max."""
    n = int(np.prod(shape))
    values = np.random.default_rng(seed).permutation(n) * 0.05 - n * 0.025
    return values.reshape(shape)


def leaf(a):
    """A float64 tensor that requires grad."""
    return tinygan.tensor(np.asarray(a, np.float64), requires_grad=True)


def transposed(*shape, seed=0):
    """A leaf whose data is a transposed (non-contiguous) view."""
    t = tinygan.Tensor(away(*reversed(shape), seed=seed).T, requires_grad=True)
    assert not t.data.flags.c_contiguous
    return t
