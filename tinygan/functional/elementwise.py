"""Elementwise arithmetic: add, sub, mul, div, neg, pow, exp, log, sqrt, abs, clamp.

Binary ops broadcast as NumPy does; their backward sums the gradient back to each
input's shape with `sum_to`, the one helper that undoes broadcasting.
"""
from __future__ import annotations

import numpy as np

from .. import backend, parallel
from ..kernels import in_memory_order
from .._tensor import Tensor, as_tensor
from ..autograd import Function
from .shape import sum_to


def _broadcast_error(name, x0, x1):
    return ValueError(f"{name}: shapes {tuple(x0.shape)} and {tuple(x1.shape)} "
                      "cannot be broadcast together")


class _Binary(Function):
    def __call__(self, x0, x1):
        return super().__call__(x0, x1)

    def forward(self, x0, x1):
        self.shapes = (x0.shape, x1.shape)
        ufunc = getattr(backend.get_array_module(x0), self.ufunc)
        try:  # CuPy: computed in x's memory order; NumPy: split over threads when large
            return in_memory_order(lambda a, b: parallel.elementwise(ufunc, a, b), x0, x1)
        except ValueError:
            raise _broadcast_error(type(self).__name__.lower(), x0, x1) from None


class Add(_Binary):
    """y = a + b; dy/da = dy/db = 1."""

    ufunc = "add"

    def backward(self, gy):
        return sum_to(gy, self.shapes[0]), sum_to(gy, self.shapes[1])


class Sub(_Binary):
    """y = a - b; dy/da = 1, dy/db = -1."""

    ufunc = "subtract"

    def backward(self, gy):
        return sum_to(gy, self.shapes[0]), sum_to(-gy, self.shapes[1])


class Mul(_Binary):
    """y = a * b; dy/da = b, dy/db = a."""

    ufunc = "multiply"

    def backward(self, gy):
        x0, x1 = self.inputs
        need0, need1 = self.needs_input_grad
        return (sum_to(gy * x1, self.shapes[0]) if need0 else None,
                sum_to(gy * x0, self.shapes[1]) if need1 else None)


class Div(_Binary):
    """y = a / b; dy/da = 1/b, dy/db = -a/b^2."""

    ufunc = "true_divide"

    def backward(self, gy):
        x0, x1 = self.inputs
        need0, need1 = self.needs_input_grad
        g0 = gy / x1
        return (sum_to(g0, self.shapes[0]) if need0 else None,
                sum_to(-g0 * x0 / x1, self.shapes[1]) if need1 else None)


class Neg(Function):
    """y = -x."""

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Pow(Function):
    """y = x^c for a constant c; dy/dx = c x^(c-1)."""

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        return x ** self.c

    def backward(self, gy):
        x, = self.inputs
        return gy * self.c * x ** (self.c - 1)


class Exp(Function):
    """y = e^x; dy/dx = y."""

    def forward(self, x):
        return backend.get_array_module(x).exp(x)

    def backward(self, gy):
        return gy * self.output()


class Log(Function):
    """y = ln x; dy/dx = 1/x."""

    def forward(self, x):
        return backend.get_array_module(x).log(x)

    def backward(self, gy):
        return gy / self.inputs[0]


class Sqrt(Function):
    """y = sqrt(x); dy/dx = 1 / (2 y)."""

    def forward(self, x):
        return backend.get_array_module(x).sqrt(x)

    def backward(self, gy):
        return gy / (2.0 * self.output())


class Abs(Function):
    """y = |x|; dy/dx = sign(x) (0 at 0)."""

    def forward(self, x):
        xp = backend.get_array_module(x)  # not `abs`: this module's abs makes a Tensor
        self.sign = xp.sign(x)
        return xp.abs(x)

    def backward(self, gy):
        return gy * Tensor(self.sign)


class Clamp(Function):
    """y = min(max(x, lo), hi); dy/dx = 1 inside [lo, hi], 0 outside."""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.mask = xp.ones(x.shape, dtype=bool)
        if self.lo is not None:
            self.mask &= x >= self.lo
        if self.hi is not None:
            self.mask &= x <= self.hi
        return xp.clip(x, self.lo, self.hi)

    def backward(self, gy):
        return gy * Tensor(self.mask.astype(gy.dtype))


class AsType(Function):
    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)

    def forward(self, x):
        self.x_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return astype(gy, self.x_dtype)


def _operands(x0, x1):
    """Tensors from tensor-or-number operands; a number takes the other's dtype."""
    if not isinstance(x0, Tensor):
        x1 = as_tensor(x1)
        return as_tensor(x0, like=x1), x1
    return x0, as_tensor(x1, like=x0)


def add(x0, x1) -> Tensor:
    return Add()(*_operands(x0, x1))


def sub(x0, x1) -> Tensor:
    return Sub()(*_operands(x0, x1))


def rsub(x0, x1) -> Tensor:
    return sub(x1, x0)


def mul(x0, x1) -> Tensor:
    return Mul()(*_operands(x0, x1))


def div(x0, x1) -> Tensor:
    return Div()(*_operands(x0, x1))


def rdiv(x0, x1) -> Tensor:
    return div(x1, x0)


def neg(x) -> Tensor:
    return Neg()(x)


def pow(x, c) -> Tensor:
    """x ** c for a constant exponent c."""
    if isinstance(c, Tensor):
        return exp(log(x) * c)  # x^c = e^(c ln x), for a tensor exponent
    return Pow(c)(x)


def rpow(x, base) -> Tensor:
    """base ** x for a constant base: e^(x ln base)."""
    return exp(x * float(np.log(base)))


def exp(x) -> Tensor:
    return Exp()(x)


def log(x) -> Tensor:
    return Log()(x)


def sqrt(x) -> Tensor:
    return Sqrt()(x)


def rsqrt(x) -> Tensor:
    return 1.0 / sqrt(x)


def abs(x) -> Tensor:  # noqa: A001 (torch's name)
    return Abs()(x)


def square(x) -> Tensor:
    return Pow(2)(x)


def clamp(x, min=None, max=None) -> Tensor:  # noqa: A002 (torch's names)
    """Clip x to [min, max]; the gradient is 0 where x was clipped."""
    return Clamp(min, max)(x)


clip = clamp


def astype(x, dtype) -> Tensor:
    return AsType(dtype)(x)


def where(condition, x0, x1) -> Tensor:
    """x0 where condition, else x1 (condition is not differentiated)."""
    cond = condition.data if isinstance(condition, Tensor) else condition
    x0, x1 = _operands(x0, x1)
    mask = Tensor(cond.astype(x0.dtype))
    return x0 * mask + x1 * (1.0 - mask)


def maximum(x0, x1) -> Tensor:
    x0, x1 = _operands(x0, x1)
    return where(x0.data >= x1.data, x0, x1)


def minimum(x0, x1) -> Tensor:
    x0, x1 = _operands(x0, x1)
    return where(x0.data <= x1.data, x0, x1)
