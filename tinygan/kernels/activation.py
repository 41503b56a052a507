"""leaky_relu (relu is slope 0) and binary cross-entropy with logits: one pass each way.

The generic path takes two or three passes and a temporary; the kernel reads x once and
writes y once.
"""
from __future__ import annotations

from .. import backend, parallel
from . import compile_once, in_memory_order

_kernels: dict = {}


def _cupy():
    return backend.cupy_module()


# ---------------------------------------------------------------- leaky_relu


def relu_forward_generic(x):
    """y = max(x, 0), threads taking ranges of the batch (relu's gradient is leaky_relu's
    at slope 0)."""
    xp = backend.get_array_module(x)
    y = xp.empty_like(x)
    zero = x.dtype.type(0)

    def part(p):
        xp.maximum(x[p], zero, out=y[p])
    parallel.for_each(part, x)
    return y


def leaky_relu_slope(x, slope: float, dtype=None):
    """dy/dx: 1 where x > 0, else slope (a new array, in x's memory order)."""
    dtype = x.dtype if dtype is None else dtype
    d = (x > 0).astype(dtype)  # three cheap passes; where(x > 0, 1, slope) is ten times slower
    d *= dtype.type(1 - slope)
    d += dtype.type(slope)
    return d


def leaky_relu_forward_generic(x, slope: float):
    """y = max(x, slope x) for 0 <= slope <= 1 (x for x > 0, slope x otherwise), else
    x dy/dx; written into one new array, threads taking ranges of the batch."""
    xp = backend.get_array_module(x)
    y = xp.empty_like(x)
    a = x.dtype.type(slope)

    def part(p):
        if 0 <= slope <= 1:
            xp.multiply(x[p], a, out=y[p])
            xp.maximum(x[p], y[p], out=y[p])
        else:
            xp.multiply(x[p], leaky_relu_slope(x[p], slope), out=y[p])
    parallel.for_each(part, x)
    return y


def leaky_relu_backward_generic(gy, x, slope: float):
    """gx = gy dy/dx, laid out as x (gy copied so first if it is not: parallel.laid_out_as),
    threads taking ranges of the batch."""
    gy = parallel.laid_out_as(gy, x)
    gx = backend.get_array_module(gy).empty_like(gy)
    one_less, plus = gy.dtype.type(1 - slope), gy.dtype.type(slope)

    def part(p):  # leaky_relu_slope's passes, written into gx's part
        d = gx[p]
        d[...] = x[p] > 0
        d *= one_less
        d += plus
        d *= gy[p]
    parallel.for_each(part, gy, work=2 * gy.size)
    return gx


def leaky_relu_forward(x, slope: float):
    """y = x if x > 0 else slope x, in one kernel."""
    k = compile_once(_kernels, "lrelu_f", lambda: _cupy().ElementwiseKernel(
        "T x, T slope", "T y", "y = x > (T)0 ? x : x * slope", "tinygan_leaky_relu_fwd"))
    return in_memory_order(k, x, x.dtype.type(slope))


def leaky_relu_backward(gy, x, slope: float):
    """dx = gy if x > 0 else slope gy, in one kernel."""
    k = compile_once(_kernels, "lrelu_b", lambda: _cupy().ElementwiseKernel(
        "T gy, T x, T slope", "T gx", "gx = x > (T)0 ? gy : gy * slope",
        "tinygan_leaky_relu_bwd"))
    return in_memory_order(k, gy, x, gy.dtype.type(slope))


# ----------------------------------------------------------- BCE with logits


def bce_with_logits_forward_generic(x, t):
    xp = backend.get_array_module(x)
    return xp.maximum(x, 0) - x * t + xp.log1p(xp.exp(-abs(x)))


def bce_with_logits_backward_generic(gy, x, t):
    xp = backend.get_array_module(x)
    s = xp.tanh(x * x.dtype.type(0.5)) * x.dtype.type(0.5) + x.dtype.type(0.5)
    return gy * (s - t)


def bce_with_logits_forward(x, t):
    """l = max(x, 0) - x t + log1p(exp(-|x|)), stable for any |x|."""
    k = compile_once(_kernels, "bce_f", lambda: _cupy().ElementwiseKernel(
        "T x, T t", "T l", "l = max(x, (T)0) - x * t + log1p(exp(-fabs(x)))",
        "tinygan_bce_logits_fwd"))
    return in_memory_order(k, x, t)


def bce_with_logits_backward(gy, x, t):
    """dl/dx = gy (sigmoid(x) - t)."""
    k = compile_once(_kernels, "bce_b", lambda: _cupy().ElementwiseKernel(
        "T gy, T x, T t", "T gx",
        "T s = tanh(x * (T)0.5) * (T)0.5 + (T)0.5; gx = gy * (s - t)",
        "tinygan_bce_logits_bwd"))
    return in_memory_order(k, gy, x, t)
