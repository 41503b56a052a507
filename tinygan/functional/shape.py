"""Ops that move numbers around without changing them: reshape, permute, broadcast,
sum_to (broadcasting undone), indexing and embedding lookup, padding, concatenation,
device moves."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import backend
from ..kernels.reduce import sum_axes
from .._tensor import Tensor, as_tensor
from ..autograd import Function


def wrap_dim(dim: int, ndim: int) -> int:
    """A dim in [-ndim, ndim - 1] as an index in [0, ndim) (a 0-d tensor takes -1 and 0);
    anything else is PyTorch's IndexError, never silently wrapped around."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim})")
    return dim % n


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


class Reshape(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} "
                             f"({x.size} elements) into {self.shape}") from None

    def backward(self, gy):
        return reshape(gy, self.x_shape)


def reshape(x: Tensor, *shape) -> Tensor:
    """View x with another shape (one dimension may be -1)."""
    shape = _shape_arg(shape)
    if tuple(x.shape) == shape:
        return x
    return Reshape(shape)(x)


view = reshape


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims start_dim..end_dim into one."""
    start, end = wrap_dim(start_dim, x.ndim), wrap_dim(end_dim, x.ndim)
    if x.ndim == 0:
        return reshape(x, (1,))
    shape = x.shape[:start] + (-1,) + x.shape[end + 1:]
    return reshape(x, shape)


def unflatten(x: Tensor, dim: int, sizes) -> Tensor:
    dim = wrap_dim(dim, x.ndim)
    return reshape(x, x.shape[:dim] + tuple(sizes) + x.shape[dim + 1:])


def squeeze(x: Tensor, dim: int | None = None) -> Tensor:
    if dim is None:
        return reshape(x, tuple(s for s in x.shape if s != 1))
    dim = wrap_dim(dim, x.ndim)
    if x.ndim == 0 or x.shape[dim] != 1:
        return x
    return reshape(x, x.shape[:dim] + x.shape[dim + 1:])


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    dim = wrap_dim(dim, x.ndim + 1)
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


class Permute(Function):
    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, gy):
        return permute(gy, tuple(np.argsort(self.axes)))


def permute(x: Tensor, *dims) -> Tensor:
    """Reorder the dimensions of x."""
    dims = tuple(wrap_dim(d, x.ndim) for d in _shape_arg(dims))
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"permute: {dims} is not a permutation of the {x.ndim} dims of {x.shape}")
    if dims == tuple(range(x.ndim)):
        return x
    return Permute(dims)(x)


def transpose(x: Tensor, dim0: int = 0, dim1: int = 1) -> Tensor:
    """Swap two dimensions."""
    axes = list(range(x.ndim))
    dim0, dim1 = wrap_dim(dim0, x.ndim), wrap_dim(dim1, x.ndim)
    axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
    return permute(x, tuple(axes))


class BroadcastTo(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        try:
            return backend.get_array_module(x).broadcast_to(x, self.shape)
        except ValueError:
            raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to {self.shape}") \
                from None

    def backward(self, gy):
        return sum_to(gy, self.x_shape)


def broadcast_to(x: Tensor, shape) -> Tensor:
    shape = tuple(shape)
    if x.shape == shape:
        return x
    return BroadcastTo(shape)(x)


def expand(x: Tensor, *shape) -> Tensor:
    shape = _shape_arg(shape)
    shape = tuple(x.shape[i - len(shape) + x.ndim] if s == -1 else s for i, s in enumerate(shape))
    return broadcast_to(x, shape)


def _sum_to_array(x, shape):
    """Sum an array down to `shape`: undo NumPy broadcasting."""
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape)
                                      if s == 1 and x.shape[i + lead] != 1)
    y = sum_axes(x, axes, keepdims=True) if axes else x
    if lead:
        y = y.reshape(shape)
    return y


class SumTo(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return _sum_to_array(x, self.shape)

    def backward(self, gy):
        return broadcast_to(gy, self.x_shape)


def sum_to(x: Tensor, shape) -> Tensor:
    """Sum x down to `shape`, the inverse of broadcasting. Every binary op's backward uses it."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    return SumTo(shape)(x)


def _index_arg(index):
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def _is_basic_index(index) -> bool:
    """True when the index is made of ints, slices, None and Ellipsis only (no repeats)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis
               for i in items)


class GetItem(Function):
    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.x_shape = x.shape
        return x[self.index]

    def backward(self, gy):
        return GetItemGrad(self.index, self.x_shape)(gy)


class GetItemGrad(Function):
    """The adjoint of indexing: scatter gy into zeros of the input's shape."""

    def __init__(self, index, x_shape):
        self.index, self.x_shape = index, x_shape

    def forward(self, gy):
        xp = backend.get_array_module(gy)
        gx = xp.zeros(self.x_shape, gy.dtype)
        if _is_basic_index(self.index):
            gx[self.index] = gy
        elif xp is np:
            np.add.at(gx, self.index, gy)  # advanced indices may repeat: accumulate
        else:
            import cupyx
            cupyx.scatter_add(gx, self.index, gy)
        return gx

    def backward(self, ggx):
        return getitem(ggx, self.index)


def getitem(x: Tensor, index) -> Tensor:
    """x[index], with the gradient scattered back (summed where an index repeats)."""
    return GetItem(_index_arg(index))(x)


def embedding(input: Tensor, weight: Tensor) -> Tensor:
    """Rows of weight (num_embeddings, dim) picked by integer indices."""
    idx = input.data if isinstance(input, Tensor) else input
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= weight.shape[0]):
        raise IndexError(f"embedding: an index is outside [0, {weight.shape[0]})")
    return getitem(weight, idx)


class Pad(Function):
    """y = x surrounded by a constant; the gradient is the centre of gy."""

    def __init__(self, widths, value):
        self.widths, self.value = widths, value

    def forward(self, x):
        xp = backend.get_array_module(x)
        return xp.pad(x, self.widths, constant_values=self.value)

    def backward(self, gy):
        index = tuple(slice(lo, gy.shape[i] - hi) for i, (lo, hi) in enumerate(self.widths))
        return getitem(gy, index)


def pad(x: Tensor, pad: tuple, value: float = 0.0) -> Tensor:
    """Pad the last len(pad)//2 dims; pad = (left, right, top, bottom, ...) as PyTorch."""
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: {pad} must hold (before, after) pairs for at most {x.ndim} dims")
    widths = [(0, 0)] * x.ndim
    for k in range(len(pad) // 2):
        widths[x.ndim - 1 - k] = (int(pad[2 * k]), int(pad[2 * k + 1]))
    return Pad(tuple(widths), value)(x)


class Cat(Function):
    def __init__(self, dim):
        self.dim = dim

    def forward(self, *xs):
        xp = backend.get_array_module(*xs)
        self.sizes = [x.shape[self.dim] for x in xs]
        try:
            return xp.concatenate(xs, axis=self.dim)
        except ValueError:
            raise ValueError(f"cat: shapes {[x.shape for x in xs]} differ outside dim "
                             f"{self.dim}") from None

    def backward(self, gy):
        grads, start = [], 0
        for size in self.sizes:
            index = [slice(None)] * gy.ndim
            index[self.dim] = slice(start, start + size)
            grads.append(getitem(gy, tuple(index)))
            start += size
        return tuple(grads)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing dimension."""
    tensors = [as_tensor(t) for t in tensors]
    return Cat(wrap_dim(dim, tensors[0].ndim))(*tensors)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along a new dimension."""
    tensors = [as_tensor(t) for t in tensors]
    dim = wrap_dim(dim, tensors[0].ndim + 1)
    return cat([unsqueeze(t, dim) for t in tensors], dim)


def chunk(x: Tensor, chunks: int, dim: int = 0):
    dim = wrap_dim(dim, x.ndim)
    size = -(-x.shape[dim] // chunks)
    return split(x, size, dim)


def split(x: Tensor, split_size: int, dim: int = 0):
    dim = wrap_dim(dim, x.ndim)
    out = []
    for start in range(0, x.shape[dim], split_size):
        index = [slice(None)] * x.ndim
        index[dim] = slice(start, start + split_size)
        out.append(getitem(x, tuple(index)))
    return tuple(out)


class ToDevice(Function):
    def __init__(self, device):
        self.device = device

    def forward(self, x):
        self.source = backend.device_of(x)
        return backend.to_device(x, self.device)

    def backward(self, gy):
        return to_device(gy, self.source)


def to_device(x: Tensor, device: str) -> Tensor:
    return ToDevice(device)(x)
