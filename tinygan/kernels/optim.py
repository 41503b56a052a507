"""Adam and RMSprop on a GPU: every parameter of a group in one launch.

`optim.adam.adam` and `optim.rmsprop.rmsprop` update one parameter in about ten array
passes, each a launch on a GPU. A GAN's optimiser holds a few dozen parameters, and on a
GPU each launch costs the host 10-20 us whatever its size (plus the Python around it), so
`adam_multi` and `rmsprop_multi` do the same arithmetic, line for line, for all of them in
one launch: the kernel gets a table of the arrays' addresses and where each parameter's
elements begin, and every thread finds its parameter by a binary search over those
starts. The table is built and copied to the GPU only when the addresses change, and
reused while they stay the same. tests/test_optim_kernels.py compares each kernel with
the array function it stands for.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from . import compile_once, enabled

_kernels: dict = {}

_MULTI = r"""
__device__ inline int tinygan_find(const long long* starts, int count, long long i) {
  int lo = 0, hi = count;  // starts[lo] <= i < starts[hi]
  while (hi - lo > 1) {
    int mid = (lo + hi) / 2;
    if (i < starts[mid]) hi = mid; else lo = mid;
  }
  return lo;
}

extern "C" __global__ void tinygan_adam_multi_DTYPE(
    const long long* table, const long long* starts, const int count, const long long total,
    const DTYPE one_minus_b1, const DTYPE b2, const DTYPE one_minus_b2, const DTYPE root_c2,
    const DTYPE eps, const DTYPE minus_lr_c1, const DTYPE wd) {
  for (long long i = (long long)blockDim.x * blockIdx.x + threadIdx.x; i < total;
       i += (long long)blockDim.x * gridDim.x) {
    int k = tinygan_find(starts, count, i);
    long long j = i - starts[k];
    DTYPE* p = (DTYPE*)table[4 * k];
    const DTYPE* g = (const DTYPE*)table[4 * k + 1];
    DTYPE* m = (DTYPE*)table[4 * k + 2];
    DTYPE* v = (DTYPE*)table[4 * k + 3];
    DTYPE gj = g[j] + wd * p[j];
    DTYPE mj = m[j] + (gj - m[j]) * one_minus_b1;
    DTYPE vj = v[j] * b2 + gj * gj * one_minus_b2;
    m[j] = mj;
    v[j] = vj;
    p[j] += mj / (sqrt(vj) / root_c2 + eps) * minus_lr_c1;
  }
}

extern "C" __global__ void tinygan_rmsprop_multi_DTYPE(
    const long long* table, const long long* starts, const int count, const long long total,
    const DTYPE alpha, const DTYPE one_minus_alpha, const DTYPE eps, const DTYPE minus_lr,
    const DTYPE wd) {
  for (long long i = (long long)blockDim.x * blockIdx.x + threadIdx.x; i < total;
       i += (long long)blockDim.x * gridDim.x) {
    int k = tinygan_find(starts, count, i);
    long long j = i - starts[k];
    DTYPE* p = (DTYPE*)table[3 * k];
    const DTYPE* g = (const DTYPE*)table[3 * k + 1];
    DTYPE* s = (DTYPE*)table[3 * k + 2];
    DTYPE gj = g[j] + wd * p[j];
    DTYPE sj = s[j] * alpha + gj * gj * one_minus_alpha;
    s[j] = sj;
    p[j] += gj / (sqrt(sj) + eps) * minus_lr;
  }
}
"""

_tables: dict = {}  # the arrays' addresses -> their table on the GPU (the last few)


def fits_one_launch(*columns) -> bool:
    """True when one launch can update the parameters given as columns (params, grads,
    states...) of arrays: on a GPU with kernels on, every array C-contiguous and of the
    first parameter's dtype, float32 or float64."""
    if not columns[0] or not enabled(*columns[0], *columns[1]):
        return False
    dtype = columns[0][0].dtype
    return dtype in (np.float32, np.float64) and all(
        a.flags.c_contiguous and a.dtype == dtype for column in columns for a in column)


def adam_multi(params, grads, exp_avgs, exp_avg_sqs, *, lr, betas, eps, weight_decay, step):
    """`optim.adam.adam` on every (param, grad, m, v) at once, in place, in one launch."""
    b1, b2 = betas
    c1, c2 = 1 - b1 ** step, 1 - b2 ** step
    _launch("adam", (params, grads, exp_avgs, exp_avg_sqs),
            (1 - b1, b2, 1 - b2, math.sqrt(c2), eps, -lr / c1, weight_decay))


def rmsprop_multi(params, grads, square_avgs, *, lr, alpha, eps, weight_decay):
    """`optim.rmsprop.rmsprop` (plain: no momentum, not centered) on every (param, grad,
    square_avg) at once, in place, in one launch."""
    _launch("rmsprop", (params, grads, square_avgs), (alpha, 1 - alpha, eps, -lr, weight_decay))


def _launch(name, columns, scalars):
    """One launch over parameters given as columns (params, grads, states...) of arrays
    that `fits_one_launch` accepts."""
    cp = backend.cupy_module()
    rows = list(zip(*columns))
    addresses = tuple(a.data.ptr for row in rows for a in row)
    sizes = tuple(row[0].size for row in rows)
    key = (addresses, sizes)
    if key not in _tables:
        if len(_tables) >= 16:
            _tables.pop(next(iter(_tables)))
        starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        _tables[key] = (cp.asarray(np.array(addresses, np.int64)), cp.asarray(starts),
                        int(starts[-1]))
    table, starts, total = _tables[key]
    threads = 256
    blocks = max(1, min((total + threads - 1) // threads, 4096))  # then a grid-stride loop
    dtype = rows[0][0].dtype
    _kernel(name, dtype)((blocks,), (threads,), (
        table, starts, np.int32(len(rows)), np.int64(total),
        *(dtype.type(x) for x in scalars)))


def _kernel(name: str, dtype):
    cp = backend.cupy_module()
    ctype = {"float32": "float", "float64": "double"}[str(dtype)]
    # without fused multiply-adds every operation rounds as NumPy's and CuPy's do
    module = compile_once(_kernels, ("multi", ctype), lambda: cp.RawModule(
        code=_MULTI.replace("DTYPE", ctype), options=("--fmad=false",)))
    return compile_once(_kernels, (name, ctype),
                        lambda: module.get_function(f"tinygan_{name}_multi_{ctype}"))
