"""Activations: relu, leaky_relu, tanh, sigmoid, softplus, softmax, log_softmax."""
from __future__ import annotations

from .. import backend, kernels
from ..kernels import activation as activation_kernels
from .._tensor import Tensor
from ..autograd import Function, is_grad_enabled
from .reduce import logsumexp, sum


class ReLU(Function):
    """y = max(0, x); dy/dx = 1 if x > 0 else 0."""

    def forward(self, x):
        return backend.get_array_module(x).maximum(x, x.dtype.type(0))

    def backward(self, gy):
        # the mask is rebuilt from x (kept alive by the graph anyway) rather than saved
        return gy * Tensor((self.inputs[0].data > 0).astype(gy.dtype))


class LeakyReLU(Function):
    """y = x if x > 0 else a x; dy/dx = 1 if x > 0 else a."""

    def __init__(self, negative_slope):
        self.negative_slope = negative_slope

    def forward(self, x):
        if kernels.enabled(x):
            return activation_kernels.leaky_relu_forward(x, self.negative_slope)
        return activation_kernels.leaky_relu_forward_generic(x, self.negative_slope)

    def backward(self, gy):
        # dy/dx is rebuilt from x (which the graph keeps anyway) instead of being saved:
        # a saved slope array would cost a float per element of every activation
        x = self.inputs[0].data
        if not is_grad_enabled():  # a plain backward: arrays in, array out
            if kernels.enabled(gy.data, x):
                return Tensor(activation_kernels.leaky_relu_backward(gy.data, x,
                                                                     self.negative_slope))
            return Tensor(activation_kernels.leaky_relu_backward_generic(
                gy.data, x, self.negative_slope))
        # create_graph: a product with a constant, so the graph goes through gy
        return gy * Tensor(activation_kernels.leaky_relu_slope(x, self.negative_slope,
                                                               gy.dtype))


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
        xp = backend.get_array_module(x)
        e = xp.exp(x - x.max(axis=self.dim, keepdims=True))
        e /= e.sum(axis=self.dim, keepdims=True)
        return e

    def backward(self, gy):
        y = self.output()
        gx = y * gy
        return gx - y * sum(gx, self.dim, keepdim=True)


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
    return Softmax(dim % x.ndim)(x)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """x - logsumexp(x): stable for large logits."""
    return x - logsumexp(x, dim, keepdim=True)
