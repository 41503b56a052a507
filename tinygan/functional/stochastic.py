"""Dropout: elements zeroed at random (Srivastava et al. 2014)."""
from __future__ import annotations

from .. import backend
from .._tensor import Tensor


def dropout(x: Tensor, p: float = 0.5, training: bool = True, mask=None) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout).

    `mask` (an array of 0/1 of x's shape) fixes which elements are kept: for gradient
    checks and for replaying a step.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    if mask is None:
        keep = _uniform_like(x) >= p
    else:
        keep = mask.data if isinstance(mask, Tensor) else mask
        if tuple(keep.shape) != tuple(x.shape):
            raise ValueError(f"dropout: mask has shape {tuple(keep.shape)}, x has "
                             f"{tuple(x.shape)}")
        keep = backend.to_device(keep, x.device)  # a NumPy mask works for a GPU x too
    scale = keep.astype(x.dtype)
    scale *= x.dtype.type(1.0 / (1.0 - p))
    return x * Tensor(scale)


def _uniform_like(x: Tensor):
    """U[0, 1) samples shaped like x and laid out in memory as x is (channels-last stays
    channels-last), so that the product with x walks both arrays in the same order."""
    data = x.data
    order = sorted(range(data.ndim), key=lambda d: -data.strides[d])  # outermost first
    u = backend.generator(x.device).random(tuple(data.shape[d] for d in order),
                                           dtype=x.dtype)
    inverse = sorted(range(data.ndim), key=lambda d: order[d])
    return u.transpose(inverse)
