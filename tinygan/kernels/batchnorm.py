"""BatchNorm's normalisation and its input gradient: one elementwise kernel each, beside
the NumPy twin that functional/norm.py runs elsewhere.

The statistics are per-channel sums (kernels/reduce.py); what the kernels fuse is the
per-element arithmetic, which the generic path spreads over several passes. The forward
kernel also writes xhat, which the backward needs, in the same pass; the NumPy twin
leaves it out, and the backward rebuilds it.
"""
from __future__ import annotations

from .. import backend, parallel
from . import compile_once, in_memory_order

_kernels: dict = {}


def normalize_generic(x, mean, inv_std, weight=None, bias=None):
    """y = x scale + shift, with per-channel scale = w inv_std and shift = b - mean scale
    (per-channel arrays shaped to broadcast; no weight or bias: 1 and 0). Two passes over
    x, threads taking ranges of the batch; xhat is not made."""
    xp = backend.get_array_module(x)
    scale = inv_std if weight is None else inv_std * weight
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias
    y = xp.empty_like(x, dtype=xp.result_type(x, scale))

    def part(p):
        xp.multiply(x[p], scale, out=y[p])
        y[p] += shift
    parallel.for_each(part, x)
    return y


def normalize(x, mean, inv_std, weight, bias):
    """xhat = (x - mean) inv_std and y = xhat w + b in one pass, both written."""
    k = compile_once(_kernels, "bn_f", lambda: backend.cupy_module().ElementwiseKernel(
        "T x, T mean, T inv_std, T w, T b", "T xhat, T y",
        "xhat = (x - mean) * inv_std; y = xhat * w + b", "tinygan_batchnorm_fwd"))
    return in_memory_order(k, x, mean, inv_std, weight, bias)


def standardize_generic(x, mean, inv_std, gy):
    """xhat = (x - mean) inv_std, and gy xhat (whose sum is dw): what the backward needs
    when the forward kept no xhat. Threads take ranges of the batch."""
    xp = backend.get_array_module(x)
    xhat = xp.empty_like(x, dtype=xp.result_type(x, mean))
    product = xp.empty_like(gy, dtype=xp.result_type(gy, xhat))

    def part(p):
        xp.subtract(x[p], mean, out=xhat[p])
        xhat[p] *= inv_std
        xp.multiply(gy[p], xhat[p], out=product[p])
    parallel.for_each(part, x, work=3 * x.size)
    return xhat, product


def input_grad_generic(gy, xhat, inv_std, weight, mean_gy, mean_gy_xhat):
    """dx = w inv_std (gy - mean(gy) - xhat mean(gy xhat)), the training-mode formula:
    four passes over one new array, threads taking ranges of the batch."""
    xp = backend.get_array_module(gy)
    scale = -(weight * inv_std)
    gx = xp.empty_like(gy, dtype=xp.result_type(xhat, mean_gy_xhat))

    def part(p):
        g = gx[p]
        xp.multiply(xhat[p], mean_gy_xhat, out=g)
        g -= gy[p]
        g += mean_gy
        g *= scale
    parallel.for_each(part, gy, work=3 * gy.size)
    return gx


def input_grad(gy, xhat, inv_std, weight, mean_gy, mean_gy_xhat):
    """The same dx in one pass."""
    k = compile_once(_kernels, "bn_b", lambda: backend.cupy_module().ElementwiseKernel(
        "T gy, T xhat, T inv_std, T w, T mg, T mgx", "T gx",
        "gx = w * inv_std * (gy - mg - xhat * mgx)", "tinygan_batchnorm_bwd"))
    return in_memory_order(k, gy, xhat, inv_std, weight, mean_gy, mean_gy_xhat)
