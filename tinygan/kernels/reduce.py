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
    key = (xp.__name__, n, dtype)
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


def _plan(shape, strides, axes, keepdims):
    """How to sum an array of this shape and these strides over `axes`, or None (no gemv
    split): (order, pattern, block sizes, kept shape in memory order, the transpose back,
    the result's shape)."""
    ndim = len(shape)
    big = [d for d in range(ndim) if shape[d] > 1]  # size-1 axes lie anywhere
    order = sorted(big, key=lambda d: -strides[d])  # outermost in memory first
    expected = 1  # dense: each axis's stride is the product of the sizes inside it
    itemsize = None
    for d in reversed(order):
        if itemsize is None:
            itemsize = strides[d]
        if strides[d] != expected * itemsize:
            return None
        expected *= shape[d]
    blocks = []  # runs of summed / kept axes in memory order: [summed?, size]
    for d in order:
        summed = d in axes
        if blocks and blocks[-1][0] == summed:
            blocks[-1][1] *= shape[d]
        else:
            blocks.append([summed, shape[d]])
    pattern = tuple(s for s, _ in blocks)
    if pattern not in _PATTERNS:
        return None
    kept = [d for d in order if d not in axes]
    result = [1 if d in axes else shape[d] for d in range(ndim)]
    if not keepdims:
        result = [n for d, n in enumerate(result) if d not in axes]
    return (order + [d for d in range(ndim) if shape[d] == 1], pattern,
            [n for _, n in blocks], [shape[d] for d in kept],
            [kept.index(d) for d in sorted(kept)], result)


_PATTERNS = {(), (True,), (False,), (True, False), (False, True), (True, False, True)}
_plans: dict = {}


def sum_over(a, axes, keepdims=False):
    """a.sum(axis=axes, keepdims=keepdims), by at most two matrix-vector products."""
    key = (a.shape, a.strides, a.dtype, axes, keepdims)
    plan = _plans.get(key, False)
    if plan is False:
        normal = tuple(sorted(ax % a.ndim for ax in axes)) if a.ndim else ()
        plan = None
        if a.size and normal and a.dtype.kind == "f":
            plan = _plan(a.shape, a.strides, normal, keepdims)
        _plans[key] = plan
    if plan is None:
        return sum_generic(a, axes, keepdims)
    xp = backend.get_array_module(a)
    order, pattern, sizes, kept_shape, back, result = plan
    t = a.transpose(order)  # C-contiguous: the plan checked the strides
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
    else:  # (True, False, True)
        inner = t.reshape(sizes[0] * sizes[1], sizes[2]) @ _ones_of(xp, sizes[2], a.dtype)
        out = _ones_of(xp, sizes[0], a.dtype) @ inner.reshape(sizes[0], sizes[1])
    # `out` holds the kept axes in memory order; give them back their own order
    if len(back) > 1:
        out = out.reshape(kept_shape).transpose(back)
    return out.reshape(result)
