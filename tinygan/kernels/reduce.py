"""Sums over several axes as matrix-vector products with a vector of ones.

A per-channel sum of an (N, C, H, W) activation (BatchNorm's statistics, a bias's
gradient) reduces every axis but one. CuPy's generic reduction gives each output one
thread block that strides through memory, and on a GPU it ran 50 times slower than the
memory allows (250 us for a 2 MB activation). Read in memory order, though, the summed
axes and the kept ones form at most three blocks: channels-last memory is
(summed, kept), NCHW memory is (summed, kept, summed). Each block boundary is a matrix,
and a sum over a block is that matrix times a vector of ones: cuBLAS's gemv, at memory
speed. Layouts that do not split so fall back to the array library's own sum.

The function works on NumPy arrays as well (the tests check its layout logic on the CPU);
the ops use it only for CuPy arrays (see kernels.enabled).
"""
from __future__ import annotations

from .. import backend

_ones: dict = {}


def _ones_of(xp, n: int, dtype):
    key = (xp.__name__, n, str(dtype))
    if key not in _ones:
        _ones[key] = xp.ones(n, dtype=dtype)
    return _ones[key]


def sum_generic(a, axes, keepdims=False):
    return a.sum(axis=axes, keepdims=keepdims)


def sum_axes(a, axes, keepdims=False):
    """What the ops call: `sum_over` for CuPy arrays (kernels on), the plain sum elsewhere."""
    from . import enabled
    if enabled(a):
        return sum_over(a, axes, keepdims)
    return sum_generic(a, axes, keepdims)


def sum_over(a, axes, keepdims=False):
    """a.sum(axis=axes, keepdims=keepdims), by at most two matrix-vector products."""
    xp = backend.get_array_module(a)
    axes = tuple(sorted(ax % a.ndim for ax in axes)) if a.ndim else ()
    if a.size == 0 or not axes or a.dtype.kind != "f":
        return sum_generic(a, axes, keepdims)
    big = [d for d in range(a.ndim) if a.shape[d] > 1]  # size-1 axes lie anywhere
    order = sorted(big, key=lambda d: -a.strides[d])     # outermost in memory first
    t = a.transpose(order + [d for d in range(a.ndim) if a.shape[d] == 1])
    if not t.flags.c_contiguous:
        return sum_generic(a, axes, keepdims)
    blocks = []  # runs of summed / kept axes in memory order: [summed?, size]
    for d in order:
        summed = d in axes
        if blocks and blocks[-1][0] == summed:
            blocks[-1][1] *= a.shape[d]
        else:
            blocks.append([summed, a.shape[d]])
    pattern = tuple(s for s, _ in blocks)
    sizes = [n for _, n in blocks]
    if pattern == ():  # every axis of size 1
        out = t.reshape(())
    elif pattern == (True,):
        out = t.reshape(-1).sum()
    elif pattern == (False,):  # only size-1 axes summed
        out = t.reshape(-1).copy()
    elif pattern == (True, False):
        out = _ones_of(xp, sizes[0], a.dtype) @ t.reshape(sizes)
    elif pattern == (False, True):
        out = t.reshape(sizes) @ _ones_of(xp, sizes[1], a.dtype)
    elif pattern == (True, False, True):
        inner = t.reshape(sizes[0] * sizes[1], sizes[2]) @ _ones_of(xp, sizes[2], a.dtype)
        out = _ones_of(xp, sizes[0], a.dtype) @ inner.reshape(sizes[0], sizes[1])
    else:
        return sum_generic(a, axes, keepdims)
    # `out` holds the kept axes in memory order; give them back their own order
    kept = [d for d in order if d not in axes]
    out = out.reshape([a.shape[d] for d in kept])
    out = out.transpose([kept.index(d) for d in sorted(kept)])
    shape = [1 if d in axes else a.shape[d] for d in range(a.ndim)]
    return out.reshape(shape if keepdims else [n for d, n in enumerate(shape)
                                               if d not in axes])
