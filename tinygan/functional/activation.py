"""Activations: relu, leaky_relu, tanh, sigmoid, softplus, softmax, log_softmax."""
from __future__ import annotations

from .. import backend
from ..tensor import Function, Tensor
from .reduce import logsumexp, sum


class ReLU(Function):
    """y = max(0, x); dy/dx = 1 if x > 0 else 0."""

    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, gy):
        return gy * Tensor(self.mask.astype(gy.dtype))


class LeakyReLU(Function):
    """y = x if x > 0 else a x; dy/dx = 1 if x > 0 else a."""

    def __init__(self, negative_slope):
        self.negative_slope = negative_slope

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.slope = xp.where(x > 0, x.dtype.type(1), x.dtype.type(self.negative_slope))
        return x * self.slope

    def backward(self, gy):
        return gy * Tensor(self.slope)


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
