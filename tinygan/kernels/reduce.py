"""Sums over several axes, read in memory order: one kernel on a GPU, gemv elsewhere.

A per-channel sum of an (N, C, H, W) activation (BatchNorm's statistics, a bias's
gradient) reduces every axis but one. CuPy's generic reduction gives each output one
thread block that strides through memory, and on a GPU it ran 50 times slower than the
memory allows (250 us for a 2 MB activation). Read in memory order, though, the summed
axes and the kept ones form at most three blocks: channels-last memory is
(summed, kept), NCHW memory is (summed, kept, summed), so every such sum is

    out[k] = sum over r1, r2 of x[r1, k, r2]      x seen as an (R1, K, R2) array.

On a GPU that is one small kernel (a thread block per k, its threads over (r1, r2),
a tree sum in shared memory: deterministic, one launch); a sum over everything stays
CuPy's own (one block would be too few). On NumPy arrays it is the kernel's twin,
`reshape(R1, K, R2).sum(axis=(0, 2))`, so the tests check the layout logic on the CPU.
What the ops call on the CPU (`sum_axes`) is NumPy's own sum, or where R2 is 1 (a large
channels-last float32 array) BLAS's gemv, ones(R1) @ x (`_ones_times`).
Layouts that do not split so fall back to the array library's own sum.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from . import compile_once, enabled

_kernels: dict = {}
_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

_SOURCE = r"""
extern "C" __global__ void tinygan_sum_runs_DTYPE(
    const DTYPE* x, DTYPE* out, const long long R1, const long long K, const long long R2) {
  // out[k] = sum over r1, r2 of x[(r1 K + k) R2 + r2]: block k, its threads over (r1, r2)
  __shared__ DTYPE part[512];
  const long long k = blockIdx.x, n = R1 * R2;
  DTYPE acc = 0;
  for (long long i = threadIdx.x; i < n; i += 512) {
    long long r1 = i / R2, r2 = i - r1 * R2;
    acc += x[(r1 * K + k) * R2 + r2];
  }
  part[threadIdx.x] = acc;
  __syncthreads();
  for (int s = 256; s > 0; s >>= 1) {
    if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[k] = part[0];
}
"""


def _sum_runs(t, r1: int, k: int, r2: int):
    """out[k] = sum of the C-contiguous CuPy array t seen as (r1, k, r2), in one launch."""
    cp = backend.cupy_module()
    ctype = _CTYPES[t.dtype]
    fn = compile_once(_kernels, ctype, lambda: cp.RawModule(
        code=_SOURCE.replace("DTYPE", ctype)).get_function(f"tinygan_sum_runs_{ctype}"))
    out = cp.empty(k, dtype=t.dtype)
    fn((k,), (512,), (t, out, np.int64(r1), np.int64(k), np.int64(r2)))
    return out


def sum_generic(a, axes, keepdims=False):
    return a.sum(axis=axes, keepdims=keepdims)


def sum_axes(a, axes, keepdims=False):
    """What the ops call: `sum_over` for CuPy arrays (kernels on), BLAS's gemv for a
    large channels-last float32 NumPy array (`_ones_times`), the plain sum elsewhere."""
    if enabled(a):
        return sum_over(a, axes, keepdims)
    if type(a) is np.ndarray and a.dtype == np.float32 and a.size >= _GEMV_MIN:
        plan = _cached_plan(a, axes, keepdims)
        if plan is not None and plan[1][2] == 1 and plan[1][0] > 1 and plan[1][1] > 1:
            # (summed, kept) in memory: the columns of an (R1, K) matrix
            return _in_own_order(_ones_times(a.transpose(plan[0]).reshape(plan[1][:2])), plan)
    return sum_generic(a, axes, keepdims)


def _plan(shape, strides, axes, keepdims):
    """How to sum an array of this shape and these strides over `axes`, or None (its
    memory does not split into summed, kept, summed): (the transpose to memory order,
    (R1, K, R2), the kept shape in memory order, the transpose back, the result's shape)."""
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
    runs = [1, 1, 1]  # R1 (summed), K (kept), R2 (summed), in memory order
    part = 0
    for d in order:
        if d in axes:
            part = 0 if part == 0 else 2
        elif part == 2:
            return None  # kept axes on both sides of a summed one
        else:
            part = 1
        runs[part] *= shape[d]
    kept = [d for d in order if d not in axes]
    result = [1 if d in axes else shape[d] for d in range(ndim)]
    if not keepdims:
        result = [n for d, n in enumerate(result) if d not in axes]
    return (order + [d for d in range(ndim) if shape[d] == 1], tuple(runs),
            [shape[d] for d in kept], [kept.index(d) for d in sorted(kept)], result)


_plans: dict = {}


_GEMV_MIN = 1 << 16  # floats; below, the two ways differ by microseconds


def _ones_times(t):
    """The column sums of a C-contiguous (R, K) NumPy matrix, as ones(R) @ t: BLAS's gemv.

    A per-channel sum of a channels-last activation is this. NumPy's own sum(axis=0)
    adds it row by row, each row a short loop of K: on one core here a (16384, 64)
    matrix took 0.57 ms so, 0.10 as a gemv; (65536, 32) 1.91 against 0.24, (16384, 8)
    0.41 against 0.02. BLAS's sum runs down each column as NumPy's does, in its own
    grouping of the rows; one call, on any thread count. float32 only: float64, the
    gradient checks' and the distributed tests' type, keeps NumPy's sum (50 Adam steps
    of a two-process GAN drifted from the one-process run by 1.3e-9 with gemv's), as do
    matrices under _GEMV_MIN floats (a (64, 1024) bias gradient: 14.6 us against 8.5;
    vanilla on ring8 with batches of 8 counted 3 modes at step 60 on two processes and
    4 on one with gemv's sums there, the same with NumPy's)."""
    return np.ones(t.shape[0], dtype=t.dtype) @ t


def _cached_plan(a, axes, keepdims):
    """_plan for this array's shape, strides, dtype and axes, made once; None where its
    memory does not split into (summed, kept, summed)."""
    key = (a.shape, a.strides, a.dtype, axes, keepdims)
    plan = _plans.get(key, False)
    if plan is False:
        normal = tuple(sorted(ax % a.ndim for ax in axes)) if a.ndim else ()
        plan = None
        if a.size and normal and a.dtype in _CTYPES:  # float32, float64
            plan = _plan(a.shape, a.strides, normal, keepdims)
        _plans[key] = plan
    return plan


def _in_own_order(out, plan):
    """The sums `out`, which hold the kept axes in memory order, in their own order and
    the result's shape."""
    _, _, kept_shape, back, result = plan
    if len(back) > 1:
        out = out.reshape(kept_shape).transpose(back)
    return out.reshape(result)


def sum_over(a, axes, keepdims=False):
    """a.sum(axis=axes, keepdims=keepdims), as out[k] = sum of a seen as (R1, K, R2)."""
    plan = _cached_plan(a, axes, keepdims)
    if plan is None:
        return sum_generic(a, axes, keepdims)
    order, runs = plan[:2]
    t = a.transpose(order)  # C-contiguous: the plan checked the strides
    if backend.get_array_module(a) is np:
        out = t.reshape(runs).sum(axis=(0, 2))  # the kernel's twin
    elif runs[1] == 1:
        out = t.reshape(-1).sum()  # a sum over everything: CuPy's own
    else:
        out = _sum_runs(t, *runs)
    return _in_own_order(out, plan)
