"""Making tensors: tinygan.tensor(), zeros, ones, full, randn, rand, randint, arange, ...

PyTorch's names and defaults: float32 unless told otherwise, on the default device
($TINYGAN_DEVICE, else "cpu"); random numbers from the device's generator, which
`manual_seed` seeds.
"""
from __future__ import annotations

import numpy as np

from . import backend
from ._tensor import Tensor


def _resolve_dtype(dtype, default=np.float32):
    return np.dtype(default if dtype is None else dtype)


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor (a copy) from an array, a list or a number.

    A NumPy array keeps its dtype (float64 stays float64, as `torch.tensor`); Python
    floats and lists of floats become float32, Python ints become int64.
    """
    if isinstance(data, Tensor):
        data = data.data
    if hasattr(data, "dtype") and not isinstance(data, np.generic):
        arr = data.copy() if dtype is None else data.astype(dtype)
    else:
        arr = np.array(data)
        if dtype is not None:
            arr = arr.astype(dtype)
        elif arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        elif arr.dtype.kind == "b":
            pass
        elif arr.dtype.kind in "iu":
            arr = arr.astype(np.int64)
    device = backend.default_device() if device is None else backend.check_device(device)
    arr = backend.to_device(arr, device)
    return Tensor(arr, requires_grad=requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array."""
    return Tensor(array)


def _make(fill, shape, dtype, device, requires_grad):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    device = backend.default_device() if device is None else backend.check_device(device)
    xp = backend.array_module(device)
    return Tensor(fill(xp, tuple(int(s) for s in shape), _resolve_dtype(dtype)),
                  requires_grad=requires_grad)


def zeros(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _make(lambda xp, s, d: xp.zeros(s, d), shape, dtype, device, requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _make(lambda xp, s, d: xp.ones(s, d), shape, dtype, device, requires_grad)


def full(shape, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _make(lambda xp, s, d: xp.full(s, fill_value, d), (shape,), dtype, device,
                 requires_grad)


def empty(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _make(lambda xp, s, d: xp.empty(s, d), shape, dtype, device, requires_grad)


def randn(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal samples from the device's generator (see manual_seed)."""
    def fill(xp, s, d):
        return backend.generator(device or backend.default_device()).standard_normal(
            s, dtype=np.float32 if d == np.float32 else np.float64).astype(d, copy=False)
    return _make(fill, shape, dtype, device, requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform samples in [0, 1)."""
    def fill(xp, s, d):
        return backend.generator(device or backend.default_device()).random(
            s, dtype=np.float32 if d == np.float32 else np.float64).astype(d, copy=False)
    return _make(fill, shape, dtype, device, requires_grad)


def randint(low, high=None, size=(), dtype=np.int64, device=None) -> Tensor:
    if high is None:
        low, high = 0, low
    device = backend.default_device() if device is None else backend.check_device(device)
    arr = backend.generator(device).integers(low, high, size=tuple(size)).astype(dtype)
    return Tensor(arr)


def arange(start, end=None, step=1, dtype=None, device=None) -> Tensor:
    if end is None:
        start, end = 0, start
    device = backend.default_device() if device is None else backend.check_device(device)
    xp = backend.array_module(device)
    if dtype is None:
        ints = all(isinstance(v, int) for v in (start, end, step))
        dtype = np.int64 if ints else np.float32
    return Tensor(xp.arange(start, end, step, dtype=dtype))


def zeros_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return Tensor(t.xp.zeros(t.shape, dtype or t.dtype), requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return Tensor(t.xp.ones(t.shape, dtype or t.dtype), requires_grad=requires_grad)


def randn_like(t: Tensor, dtype=None) -> Tensor:
    return randn(*t.shape, dtype=dtype or t.dtype, device=t.device)


def rand_like(t: Tensor, dtype=None) -> Tensor:
    return rand(*t.shape, dtype=dtype or t.dtype, device=t.device)


def manual_seed(seed: int) -> None:
    backend.manual_seed(seed)

