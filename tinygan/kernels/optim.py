"""Adam and RMSprop over every parameter in one launch.

The parameters of an optimiser are copied once into one flat buffer and each parameter's
data becomes a view of it (`flatten_`); so are its state arrays. A step then concatenates
the gradients (one launch) and updates every parameter with one elementwise kernel,
instead of a handful of launches per parameter.
"""
from __future__ import annotations

from .. import backend
from . import compile_once

_kernels: dict = {}


def flatten_(tensors):
    """Move the data of tensors into one flat buffer; each tensor's data becomes a view."""
    xp = backend.get_array_module(tensors[0].data)
    flat = xp.concatenate([t.data.reshape(-1) for t in tensors])
    start = 0
    for t in tensors:
        size = t.data.size
        t.data = flat[start:start + size].reshape(t.data.shape)
        start += size
    return flat


def gather_grads(tensors):
    """All gradients as one flat array (zeros where a gradient is missing)."""
    xp = backend.get_array_module(tensors[0].data)
    return xp.concatenate([(t.grad.data if t.grad is not None else xp.zeros_like(t.data))
                           .reshape(-1) for t in tensors])


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
