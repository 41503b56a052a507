"""Tensor: an array (NumPy or CuPy) with a gradient, and the Function that made it.

The graph and the backward pass live in autograd.py; the operators and methods (`a + b`,
`x.sum()`, `x.reshape(...)`) are installed by tinygan.functional, which defines them. The
module is `_tensor` (as PyTorch's) so that `tinygan.tensor`, the function that makes a
tensor, does not hide it.
"""
from __future__ import annotations

import numpy as np

from . import backend

# ----------------------------------------------------------------------------- Tensor

_FLOAT_KINDS = "f"


def _is_dtype_name(name) -> bool:
    if not isinstance(name, str) or name.startswith(backend.DEVICES):
        return False
    try:
        np.dtype(name)
        return True
    except TypeError:
        return False


class Tensor:
    """An array with a gradient. `data` is a numpy.ndarray or cupy.ndarray."""

    __array_priority__ = 1000  # so `ndarray * Tensor` calls Tensor.__rmul__

    def __init__(self, data, requires_grad: bool = False):
        if isinstance(data, Tensor):
            data = data.data
        if not hasattr(data, "dtype") or not hasattr(data, "shape"):
            raise TypeError(f"Tensor wraps a numpy or cupy array, got {type(data).__name__}")
        if isinstance(data, np.generic):
            data = np.asarray(data)
        self.data = data
        self.grad: Tensor | None = None
        self.creator = None  # the Function that made this tensor (None for a leaf)
        self.generation = 0
        self.name: str | None = None
        self._requires_grad = False
        self.requires_grad = requires_grad

    # -- gradient bookkeeping
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool):
        if value and self.data.dtype.kind not in _FLOAT_KINDS:
            raise TypeError(
                f"only floating-point tensors can require gradients, got dtype {self.data.dtype}")
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        return self.creator is None

    @property
    def grad_fn(self):
        return self.creator

    def set_creator(self, func):
        self.creator = func
        self.generation = func.generation + 1

    # -- array-like properties
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self) -> str:
        return backend.device_of(self.data)

    @property
    def xp(self):
        """The array module (numpy or cupy) of this tensor's data."""
        return backend.get_array_module(self.data)

    def size(self, dim: int | None = None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self) -> int:
        return int(self.data.size)

    def dim(self) -> int:
        return self.data.ndim

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        body = repr(backend.to_numpy(self.data)).replace("array(", "tensor(", 1)
        extra = []
        if self.device != "cpu":
            extra.append(f"device='{self.device}'")
        if self.creator is not None:
            extra.append(f"grad_fn=<{type(self.creator).__name__}>")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        if extra:
            body = body[:-1] + ", " + ", ".join(extra) + ")"
        return body

    # -- leaving the graph, moving, converting
    def detach(self) -> "Tensor":
        return Tensor(self.data)

    def to(self, device=None, dtype=None) -> "Tensor":
        """Copy to a device and/or dtype; returns self when nothing changes."""
        if dtype is None and (isinstance(device, (type, np.dtype)) or _is_dtype_name(device)):
            device, dtype = None, device  # x.to(tinygan.float64): a dtype given first
        out = self
        if device is not None and backend.check_device(device) != self.device:
            from .functional.shape import to_device
            out = to_device(out, backend.check_device(device))
        if dtype is not None and np.dtype(dtype) != out.dtype:
            from .functional.elementwise import astype
            out = astype(out, dtype)
        return out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self) -> "Tensor":
        return self.to("cuda")

    def float(self) -> "Tensor":
        return self.to(dtype=np.float32)

    def double(self) -> "Tensor":
        return self.to(dtype=np.float64)

    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise RuntimeError("numpy() on a tensor that requires grad: call .detach().numpy()")
        return backend.to_numpy(self.data)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return backend.to_numpy(self.data).tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        return bool(self.item())

    def __array__(self, dtype=None, copy=None):
        a = backend.to_numpy(self.data)
        return a if dtype is None else a.astype(dtype)

    # -- the backward pass
    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False):
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` (as `torch.Tensor.backward`)."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: it was made "
                               "under no_grad() or from no tensor with requires_grad=True")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() on a non-scalar tensor of shape {self.shape} needs `gradient` "
                    "(a tensor of the same shape: the cotangent to propagate)")
            gradient = Tensor(self.xp.ones_like(self.data))
        from .autograd import run_backward  # the autograd builds on Tensor: imported here
        run_backward([self], [gradient], create_graph=create_graph, retain_graph=retain_graph)

    def register_post_accumulate_grad_hook(self, hook):
        """Call hook(self) after each backward() that adds into this leaf's `.grad`, as
        PyTorch's: DistributedDataParallel averages gradients over processes this way.
        Returns a handle whose remove() unregisters the hook."""
        if self.creator is not None:
            raise RuntimeError("post-accumulate-grad hooks can be registered on leaf tensors "
                               "only")
        hooks = self.__dict__.setdefault("_post_accumulate_hooks", {})
        handle = _HookHandle(hooks)
        hooks[handle] = hook
        return handle

    def retain_grad(self):
        raise NotImplementedError("retain_grad: use tinygan.grad(output, tensor) instead")

    # Operators and methods (add, matmul, sum, reshape, ...) are installed by
    # tinygan.functional, which defines them; see functional/__init__.py.


def as_tensor(x, like: Tensor | None = None) -> Tensor:
    """A Tensor from a Tensor (as is), an array, or a Python number (float32)."""
    if isinstance(x, Tensor):
        return x
    if hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, np.generic):
        return Tensor(x)
    if like is not None:
        return Tensor(like.xp.asarray(x, dtype=like.dtype))
    return Tensor(np.asarray(x, dtype=np.float32))


class _HookHandle:
    """What register_post_accumulate_grad_hook returns: remove() takes the hook away."""

    def __init__(self, hooks: dict):
        self._hooks = hooks

    def remove(self) -> None:
        self._hooks.pop(self, None)
