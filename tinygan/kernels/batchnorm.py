"""BatchNorm's normalisation and its backward, each one elementwise kernel.

The statistics are per-channel reductions (CuPy's own); what the kernels fuse is the
per-element arithmetic, which the generic path spreads over four or five passes with a
temporary each.
"""
from __future__ import annotations

from .. import backend
from . import compile_once, in_memory_order

_kernels: dict = {}


def normalize_generic(x, mean, inv_std, weight, bias):
    """xhat = (x - mean) inv_std; y = xhat w + b (per-channel arrays shaped to broadcast)."""
    xhat = (x - mean) * inv_std
    return xhat, xhat * weight + bias


def normalize(x, mean, inv_std, weight, bias):
    k = compile_once(_kernels, "bn_f", lambda: backend.cupy_module().ElementwiseKernel(
        "T x, T mean, T inv_std, T w, T b", "T xhat, T y",
        "xhat = (x - mean) * inv_std; y = xhat * w + b", "tinygan_batchnorm_fwd"))
    return in_memory_order(k, x, mean, inv_std, weight, bias)


def input_grad_generic(gy, xhat, inv_std, weight, mean_gy, mean_gy_xhat):
    """dx = w inv_std (gy - mean(gy) - xhat mean(gy xhat)), the training-mode formula."""
    gx = xhat * mean_gy_xhat  # then in place: one activation-sized temporary in all
    gx -= gy
    gx += mean_gy
    gx *= -(weight * inv_std)
    return gx


def input_grad(gy, xhat, inv_std, weight, mean_gy, mean_gy_xhat):
    k = compile_once(_kernels, "bn_b", lambda: backend.cupy_module().ElementwiseKernel(
        "T gy, T xhat, T inv_std, T w, T mg, T mgx", "T gx",
        "gx = w * inv_std * (gy - mg - xhat * mgx)", "tinygan_batchnorm_bwd"))
    return in_memory_order(k, gy, xhat, inv_std, weight, mean_gy, mean_gy_xhat)
