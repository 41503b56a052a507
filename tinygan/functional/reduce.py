"""Reductions over dims: sum, mean, max/amax, var, logsumexp."""
from __future__ import annotations

from .. import backend
from ..kernels.reduce import sum_axes
from .._tensor import Tensor
from ..autograd import Function
from .elementwise import exp, log
from .shape import broadcast_to, reshape, wrap_dim


def _dims(dim, ndim):
    """The dims to reduce as sorted indices: all for None, each checked as PyTorch does."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, int):
        dim = (dim,)
    dims = tuple(sorted(wrap_dim(d, ndim) for d in dim))
    if len(set(dims)) != len(dims):
        raise RuntimeError(f"dim {dim} names one dimension more than once")
    return tuple(d for d in dims if d < ndim)  # a 0-d tensor's dim 0 is no axis


def _keepdim_shape(shape, dims):
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


class Sum(Function):
    """y = sum of x over dims; dy/dx = 1 (the gradient is broadcast back)."""

    def __init__(self, dims, keepdim):
        self.dims, self.keepdim = dims, keepdim

    def forward(self, x):
        self.x_shape = x.shape
        return sum_axes(x, self.dims, self.keepdim)

    def backward(self, gy):
        if not self.keepdim:
            gy = reshape(gy, _keepdim_shape(self.x_shape, self.dims))
        return broadcast_to(gy, self.x_shape)


def sum(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """Sum over `dim` (an int, a tuple, or None for all)."""
    return Sum(_dims(dim, x.ndim), keepdim)(x)


def mean(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Mean over `dim`: sum / count."""
    dims = _dims(dim, x.ndim)
    count = 1
    for d in dims:
        count *= x.shape[d]
    return sum(x, dims, keepdim) * (1.0 / count)


class Max(Function):
    """y = max of x over dims; the gradient goes to the arg-max (shared among ties)."""

    def __init__(self, dims, keepdim):
        self.dims, self.keepdim = dims, keepdim

    def forward(self, x):
        y = x.max(axis=self.dims, keepdims=True)
        mask = (x == y)
        self.mask = mask / mask.sum(axis=self.dims, keepdims=True)
        self.mask = self.mask.astype(x.dtype)
        return y if self.keepdim else y.reshape(
            tuple(s for i, s in enumerate(x.shape) if i not in self.dims))

    def backward(self, gy):
        if not self.keepdim:
            gy = reshape(gy, _keepdim_shape(self.mask.shape, self.dims))
        return broadcast_to(gy, self.mask.shape) * Tensor(self.mask)


def amax(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Largest value over `dim`."""
    return Max(_dims(dim, x.ndim), keepdim)(x)


def amin(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return -amax(-x, dim, keepdim)


def max(x: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
    """As torch.max: the largest value, or with `dim` a pair (values, indices)."""
    values = amax(x, dim, keepdim)
    if dim is None:
        return values
    dim = wrap_dim(dim, x.ndim)
    indices = x.data.argmax(axis=dim)
    if keepdim:
        indices = backend.get_array_module(indices).expand_dims(indices, dim)
    return values, Tensor(indices)


def min(x: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
    values = amin(x, dim, keepdim)
    if dim is None:
        return values
    dim = wrap_dim(dim, x.ndim)
    indices = x.data.argmin(axis=dim)
    if keepdim:
        indices = backend.get_array_module(indices).expand_dims(indices, dim)
    return values, Tensor(indices)


def var(x: Tensor, dim=None, unbiased: bool = True, keepdim: bool = False,
        correction: int | None = None) -> Tensor:
    """Variance: sum (x - mean)^2 / (n - correction); correction 1 is unbiased."""
    dims = _dims(dim, x.ndim)
    n = 1
    for d in dims:
        n *= x.shape[d]
    if correction is None:
        correction = 1 if unbiased else 0
    centred = x - mean(x, dims, keepdim=True)
    return sum(centred * centred, dims, keepdim) * (1.0 / (n - correction))


def std(x: Tensor, dim=None, unbiased: bool = True, keepdim: bool = False) -> Tensor:
    return var(x, dim, unbiased, keepdim) ** 0.5


def logsumexp(x: Tensor, dim, keepdim: bool = False) -> Tensor:
    """log sum exp(x) over dim, computed stably: m + log sum exp(x - m)."""
    dims = _dims(dim, x.ndim)
    m = Tensor(x.data.max(axis=dims, keepdims=True))  # a constant shift: no gradient needed
    out = log(sum(exp(x - m), dims, keepdim=True)) + m
    return out if keepdim else reshape(out, tuple(s for i, s in enumerate(x.shape)
                                                  if i not in dims))
