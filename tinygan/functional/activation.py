"""Activations: relu, leaky_relu, tanh, sigmoid, softplus, softmax, log_softmax."""
from __future__ import annotations

import numpy as np

from .. import backend, kernels, parallel
from ..kernels import activation as activation_kernels
from .._tensor import Tensor
from ..autograd import Function
from .reduce import logsumexp, sum
from .shape import wrap_dim


class ReLU(Function):
    """y = max(0, x); dy/dx = 1 if x > 0 else 0."""

    def forward(self, x):
        return activation_kernels.relu_forward_generic(x)

    def backward(self, gy):
        # leaky_relu's gradient at slope 0: the mask rebuilt from x, not saved
        return LeakyReLUGrad(self.inputs[0].data, 0.0)(gy)


class LeakyReLU(Function):
    """y = x if x > 0 else a x; dy/dx = 1 if x > 0 else a."""

    def __init__(self, negative_slope):
        self.negative_slope = negative_slope

    def forward(self, x):
        return _leaky_relu(x, self.negative_slope)

    def backward(self, gy):
        return LeakyReLUGrad(self.inputs[0].data, self.negative_slope)(gy)


class LeakyReLUGrad(Function):
    """gx = gy if x > 0 else a gy, for a fixed x.

    Linear in gy, so its derivative in gy is itself; in x it is 0 (the slope is piecewise
    constant), which is why x is a constant here and not an input. dy/dx is rebuilt from
    x (which the graph keeps anyway) rather than saved: a saved slope array would cost a
    float per element of every activation.
    """

    def __init__(self, x, negative_slope):
        self.x, self.negative_slope = x, negative_slope

    def forward(self, gy):
        return _leaky_relu_grad(gy, self.x, self.negative_slope)

    def backward(self, ggx):
        return LeakyReLUGrad(self.x, self.negative_slope)(ggx)


def _leaky_relu(x, slope):
    """leaky_relu on arrays: one fused kernel on the GPU, its NumPy twin elsewhere."""
    if kernels.enabled(x):
        return activation_kernels.leaky_relu_forward(x, slope)
    return activation_kernels.leaky_relu_forward_generic(x, slope)


def _leaky_relu_grad(gy, x, slope):
    if kernels.enabled(gy, x):
        return activation_kernels.leaky_relu_backward(gy, x, slope)
    return activation_kernels.leaky_relu_backward_generic(gy, x, slope)


class Tanh(Function):
    """y = tanh x; dy/dx = 1 - y^2."""

    def forward(self, x):
        return backend.get_array_module(x).tanh(x)

    def backward(self, gy):
        y = self.output()
        return gy * (1.0 - y * y)


def _sigmoid_array(x):
    xp = backend.get_array_module(x)
    # tanh form: exact and free of overflow for large |x|
    return xp.tanh(x * x.dtype.type(0.5)) * x.dtype.type(0.5) + x.dtype.type(0.5)


class Sigmoid(Function):
    """y = 1 / (1 + e^-x); dy/dx = y (1 - y)."""

    def forward(self, x):
        return _sigmoid_array(x)

    def backward(self, gy):
        y = self.output()
        return gy * y * (1.0 - y)


class Softplus(Function):
    """y = log(1 + e^x), computed as max(x, 0) + log1p(e^-|x|); dy/dx = sigmoid(x)."""

    def forward(self, x):
        xp = backend.get_array_module(x)
        return xp.maximum(x, 0) + xp.log1p(xp.exp(-abs(x)))

    def backward(self, gy):
        return gy * sigmoid(self.inputs[0])


class Softmax(Function):
    """y = e^x / sum e^x over dim; dx = y (gy - sum(gy y))."""

    def __init__(self, dim):
        self.dim = dim

    def forward(self, x):
        return _softmax(x, self.dim)

    def backward(self, gy):
        return SoftmaxGrad(self.dim)(self.output(), gy)


class SoftmaxGrad(Function):
    """gx = y (gy - sum(y gy)) over dim, softmax's gradient given its output y, in one op.

    As four ops (y gy, its sum, y times the sum, the difference) it made four passes
    over arrays as big as attention's (N, P, P) scores; here each slice along the first
    axis goes through all four steps while it is in cache, threads taking ranges of
    them. On sagan-cifar10's (64, 256, 256) scores, on one core here: 6.4 ms against
    11.1; on two, 3.9-5.2 against 10.0; the step 5% less on one thread and 2.5% on two
    (1277.1 -> 1217.4 ms, 850.7 -> 829.4; the two ways alternated in one process).

    Its own derivatives, with s = sum(y gy) and given ggx: in gy, d<ggx, gx>/dgy =
    y (ggx - sum(y ggx)), this op again; in y, ggx (gy - s) - gy sum(y ggx). y is
    softmax's output in the graph, so second derivatives reach x through it.
    """

    def __init__(self, dim):
        self.dim = dim

    def forward(self, y, gy):
        return _softmax_grad(y, gy, self.dim)

    def backward(self, ggx):
        y, gy = self.inputs
        needs = self.needs_input_grad
        g_y = g_gy = None
        if needs[0]:
            s = sum(y * gy, self.dim, keepdim=True)
            g_y = ggx * (gy - s) - gy * sum(y * ggx, self.dim, keepdim=True)
        if needs[1]:
            g_gy = SoftmaxGrad(self.dim)(y, ggx)
        return g_y, g_gy


def _softmax(x, dim):
    """e^(x - max) / sum e^(x - max) over dim, on arrays (`_by_slices`): sagan-cifar10's
    (64, 256, 256) scores took 17.3 ms against 21.4 in whole passes on one core here."""
    xp = backend.get_array_module(x)
    y = xp.empty_like(x)

    def steps(xs, ys):
        xp.subtract(xs, xs.max(axis=dim, keepdims=True), out=ys)
        xp.exp(ys, out=ys)
        ys /= ys.sum(axis=dim, keepdims=True)
    _by_slices(steps, (x, y), dim, passes=3)
    return y


def _softmax_grad(y, gy, dim):
    """y (gy - sum(y gy)) over dim, on arrays, laid out as y (`_by_slices`)."""
    xp = backend.get_array_module(y)
    gy = parallel.laid_out_as(gy, y)
    gx = xp.empty_like(y)

    def steps(ys, gs, out):
        xp.multiply(ys, gs, out=out)
        total = out.sum(axis=dim, keepdims=True)
        xp.subtract(gs, total, out=out)
        out *= ys
    _by_slices(steps, (y, gy, gx), dim, passes=4)
    return gx


_CACHED_FLOATS = 1 << 16  # a run of slices: 3 x 256 KB in y, gy and gx (L2: 512 KB here)


def _by_slices(steps, arrays, dim, passes: int) -> None:
    """steps(*arrays) over runs of slices along the first axis, each run _CACHED_FLOATS
    floats of the first array at most, so that a run's passes find it in cache; threads
    take ranges of the slices. Whole where the slices are not independent (dim 0, a 0-d
    array) and on the GPU (each pass one launch)."""
    first = arrays[0]
    if dim == 0 or first.ndim == 0 or backend.get_array_module(first) is not np:
        steps(*arrays)
        return
    run = max(1, _CACHED_FLOATS * first.shape[0] // max(1, first.size))  # slices at a time

    def part(p):
        for i in range(p.start, p.stop, run):
            steps(*(a[i:min(i + run, p.stop)] for a in arrays))
    parallel.for_each(part, first, work=passes * first.size)


def relu(x: Tensor) -> Tensor:
    return ReLU()(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    return LeakyReLU(negative_slope)(x)


def tanh(x: Tensor) -> Tensor:
    return Tanh()(x)


def sigmoid(x: Tensor) -> Tensor:
    return Sigmoid()(x)


def softplus(x: Tensor) -> Tensor:
    return Softplus()(x)


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    return Softmax(wrap_dim(dim, x.ndim))(x)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """x - logsumexp(x): stable for large logits."""
    return x - logsumexp(x, dim, keepdim=True)
