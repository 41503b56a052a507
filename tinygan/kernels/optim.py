"""Adam and RMSprop: every parameter of a group in one launch.

Per parameter, the generic update is five to seven array passes, each a launch on a GPU;
the elementwise kernels `adam` and `rmsprop` do one parameter in one launch. A GAN's
optimiser holds a few dozen parameters, and on a GPU each launch costs the host 10-20 us
whatever its size (plus the Python around it), so `adam_multi` and `rmsprop_multi`
update them all in one launch: the kernel gets a table of the arrays' addresses and
where each parameter's elements begin, and every thread finds its parameter by a binary
search over those starts. The table is built and copied to the GPU only when the
addresses change, and reused while they stay the same.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from . import compile_once

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
    const DTYPE lr, const DTYPE b1, const DTYPE b2, const DTYPE eps, const DTYPE wd,
    const DTYPE bc1, const DTYPE bc2) {
  for (long long i = (long long)blockDim.x * blockIdx.x + threadIdx.x; i < total;
       i += (long long)blockDim.x * gridDim.x) {
    int k = tinygan_find(starts, count, i);
    long long j = i - starts[k];
    DTYPE* p = (DTYPE*)table[4 * k];
    const DTYPE* g = (const DTYPE*)table[4 * k + 1];
    DTYPE* m = (DTYPE*)table[4 * k + 2];
    DTYPE* v = (DTYPE*)table[4 * k + 3];
    DTYPE gg = g[j] + wd * p[j];
    DTYPE mj = b1 * m[j] + ((DTYPE)1 - b1) * gg;
    DTYPE vj = b2 * v[j] + ((DTYPE)1 - b2) * gg * gg;
    m[j] = mj;
    v[j] = vj;
    p[j] -= lr * (mj / bc1) / (sqrt(vj / bc2) + eps);
  }
}

extern "C" __global__ void tinygan_rmsprop_multi_DTYPE(
    const long long* table, const long long* starts, const int count, const long long total,
    const DTYPE lr, const DTYPE alpha, const DTYPE eps, const DTYPE wd) {
  for (long long i = (long long)blockDim.x * blockIdx.x + threadIdx.x; i < total;
       i += (long long)blockDim.x * gridDim.x) {
    int k = tinygan_find(starts, count, i);
    long long j = i - starts[k];
    DTYPE* p = (DTYPE*)table[3 * k];
    const DTYPE* g = (const DTYPE*)table[3 * k + 1];
    DTYPE* s = (DTYPE*)table[3 * k + 2];
    DTYPE gg = g[j] + wd * p[j];
    DTYPE sj = alpha * s[j] + ((DTYPE)1 - alpha) * gg * gg;
    s[j] = sj;
    p[j] -= lr * gg / (sqrt(sj) + eps);
  }
}
"""

_tables: dict = {}  # the arrays' addresses -> their table on the GPU (the last few)


def _multi_kernel(name: str, dtype):
    cp = backend.cupy_module()
    ctype = {"float32": "float", "float64": "double"}[str(dtype)]
    module = compile_once(_kernels, ("multi", ctype), lambda: cp.RawModule(
        code=_MULTI.replace("DTYPE", ctype)))
    return compile_once(_kernels, (name, ctype),
                        lambda: module.get_function(f"tinygan_{name}_multi_{ctype}"))


def _launch_multi(name, columns, scalars):
    """One launch over parameters given as columns (params, grads, states...) of arrays.

    Every array must be C-contiguous and each row's arrays of one size and dtype."""
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
    _multi_kernel(name, dtype)((blocks,), (threads,), (
        table, starts, np.int32(len(rows)), np.int64(total),
        *(dtype.type(x) for x in scalars)))


def adam_multi_generic(params, grads, exp_avgs, exp_avg_sqs, *hyper):
    """`adam_multi`'s twin: `adam_generic` on each parameter in turn."""
    for p, g, m, v in zip(params, grads, exp_avgs, exp_avg_sqs):
        adam_generic(p, g, m, v, *hyper)


def rmsprop_multi_generic(params, grads, square_avgs, *hyper):
    """`rmsprop_multi`'s twin: `rmsprop_generic` on each parameter in turn."""
    for p, g, s in zip(params, grads, square_avgs):
        rmsprop_generic(p, g, s, *hyper)


def adam_multi(params, grads, exp_avgs, exp_avg_sqs, lr, beta1, beta2, eps, weight_decay,
               bias1, bias2):
    """`adam` on every (param, grad, m, v) at once, in place, in one launch."""
    _launch_multi("adam", (params, grads, exp_avgs, exp_avg_sqs),
                  (lr, beta1, beta2, eps, weight_decay, bias1, bias2))


def rmsprop_multi(params, grads, square_avgs, lr, alpha, eps, weight_decay):
    """`rmsprop` on every (param, grad, square_avg) at once, in place, in one launch."""
    _launch_multi("rmsprop", (params, grads, square_avgs), (lr, alpha, eps, weight_decay))


def adam_generic(p, g, m, v, lr, beta1, beta2, eps, weight_decay, bias1, bias2):
    """In place: g += wd p; m, v moving moments; p -= lr (m / bias1) / (sqrt(v / bias2) + eps)."""
    xp = backend.get_array_module(p)
    if weight_decay:
        g = g + weight_decay * p
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    p -= lr * (m / bias1) / (xp.sqrt(v / bias2) + eps)


def adam(p, g, m, v, lr, beta1, beta2, eps, weight_decay, bias1, bias2):
    k = compile_once(_kernels, "adam", lambda: backend.cupy_module().ElementwiseKernel(
        "T g, T lr, T b1, T b2, T eps, T wd, T bc1, T bc2", "T p, T m, T v",
        """T gg = g + wd * p;
           m = b1 * m + ((T)1 - b1) * gg;
           v = b2 * v + ((T)1 - b2) * gg * gg;
           p -= lr * (m / bc1) / (sqrt(v / bc2) + eps);""", "tinygan_adam"))
    t = p.dtype.type
    k(g, t(lr), t(beta1), t(beta2), t(eps), t(weight_decay), t(bias1), t(bias2), p, m, v)


def rmsprop_generic(p, g, square_avg, lr, alpha, eps, weight_decay):
    """In place: s = alpha s + (1 - alpha) g^2; p -= lr g / (sqrt(s) + eps)."""
    xp = backend.get_array_module(p)
    if weight_decay:
        g = g + weight_decay * p
    square_avg *= alpha
    square_avg += (1 - alpha) * g * g
    p -= lr * g / (xp.sqrt(square_avg) + eps)


def rmsprop(p, g, square_avg, lr, alpha, eps, weight_decay):
    k = compile_once(_kernels, "rmsprop", lambda: backend.cupy_module().ElementwiseKernel(
        "T g, T lr, T alpha, T eps, T wd", "T p, T s",
        """T gg = g + wd * p;
           s = alpha * s + ((T)1 - alpha) * gg * gg;
           p -= lr * gg / (sqrt(s) + eps);""", "tinygan_rmsprop"))
    t = p.dtype.type
    k(g, t(lr), t(alpha), t(eps), t(weight_decay), p, square_avg)
