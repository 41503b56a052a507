"""Tensor, Function, the graph, backward(), grad(), no_grad().

A Tensor wraps an array (numpy or cupy) and remembers the Function that made it. A
Function's `forward` works on raw arrays; its `backward` is written with differentiable
Tensor ops. With `create_graph=False` the backward runs under `no_grad` and records
nothing; with `create_graph=True` it records a graph of its own, which is how second
derivatives (the WGAN-GP gradient penalty) come out with no special case.
"""
from __future__ import annotations

import contextlib
import heapq
import weakref

import numpy as np

from . import backend

# ------------------------------------------------------------------------- grad mode

_grad_enabled = True


def is_grad_enabled() -> bool:
    return _grad_enabled


class _GradMode(contextlib.ContextDecorator):
    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __enter__(self):
        global _grad_enabled
        self.previous, _grad_enabled = _grad_enabled, self.enabled

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.previous
        return False


def no_grad():
    """Context manager (and decorator): ops inside record no graph."""
    return _GradMode(False)


def enable_grad():
    return _GradMode(True)


def set_grad_enabled(mode: bool):
    return _GradMode(bool(mode))


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
        self.creator: Function | None = None
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

    def set_creator(self, func: "Function"):
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
        run_backward([self], [gradient], create_graph=create_graph, accumulate=True,
                     retain_graph=retain_graph)

    def retain_grad(self):
        raise NotImplementedError("retain_grad: use tinygan.grad(output, tensor) instead")

    # Operators and methods (add, matmul, sum, reshape, ...) are installed by
    # tinygan.functional, which defines them; see functional/__init__.py.


# --------------------------------------------------------------------------- Function


class Function:
    """One differentiable op: `forward` on arrays, `backward` in Tensor ops.

    Subclasses take non-tensor arguments in `__init__` and tensors in `__call__`.
    In `backward`, `self.inputs` are the input tensors (use them, not saved arrays, where
    the derivative depends on an input, so that higher derivatives are right) and
    `self.needs_input_grad[i]` says whether input i wants a gradient at all.
    """

    def __call__(self, *inputs):
        inputs = [as_tensor(x) for x in inputs]
        xs = [x.data for x in inputs]
        _check_same_device(self, xs)
        ys = self.forward(*xs)
        if not isinstance(ys, tuple):
            ys = (ys,)
        outputs = [Tensor(y) for y in ys]
        if _grad_enabled:
            needs = tuple(x.requires_grad for x in inputs)
            if any(needs):
                self.generation = max(x.generation for x in inputs)
                self.inputs = inputs
                self.needs_input_grad = needs
                self.outputs = [weakref.ref(y) for y in outputs]
                self._output_arrays = ys
                for y in outputs:
                    if y.data.dtype.kind in _FLOAT_KINDS:
                        y._requires_grad = True
                        y.set_creator(self)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def forward(self, *xs):
        raise NotImplementedError

    def backward(self, *gys):
        raise NotImplementedError

    @property
    def xp(self):
        """The array module (numpy or cupy) this function computes with."""
        return backend.get_array_module(self._output_arrays[0])

    def output(self, i: int = 0) -> Tensor:
        """Output i as a tensor in the graph (for backward formulas in terms of y)."""
        y = self.outputs[i]()
        return y if y is not None else Tensor(self._output_arrays[i])

    def __repr__(self):
        return f"<{type(self).__name__}>"

    def _release(self):
        """Forget the inputs and saved arrays once the backward pass has used them.

        Without this, a graph holds every activation of a step for as long as any of its
        outputs is alive (a loss kept for printing keeps the whole network's activations).
        """
        generation = self.generation
        self.__dict__.clear()
        self.generation = generation


def _check_same_device(func, arrays):
    kinds = {type(a) for a in arrays}
    if len(kinds) > 1 and any(k.__module__.startswith("cupy") for k in kinds):
        devices = [backend.device_of(a) for a in arrays]
        raise RuntimeError(
            f"{type(func).__name__}: tensors on different devices {devices}; "
            "move them to one device with .to(device)")


def as_tensor(x, like: Tensor | None = None) -> Tensor:
    """A Tensor from a Tensor (as is), an array, or a Python number (float32)."""
    if isinstance(x, Tensor):
        return x
    if hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, np.generic):
        return Tensor(x)
    if like is not None:
        return Tensor(like.xp.asarray(x, dtype=like.dtype))
    return Tensor(np.asarray(x, dtype=np.float32))


# ------------------------------------------------------------------- the backward pass


def _topological_functions(outputs):
    """Every Function that leads to `outputs`, latest generation first (iterative)."""
    funcs, heap, seen = [], [], set()
    counter = 0
    for y in outputs:
        f = y.creator
        if f is not None and id(f) not in seen:
            seen.add(id(f))
            heapq.heappush(heap, (-f.generation, counter, f))
            counter += 1
    while heap:
        _, _, f = heapq.heappop(heap)
        if "inputs" not in f.__dict__:
            raise RuntimeError(
                f"backward through {type(f).__name__} a second time: its saved arrays were "
                "freed by the first backward; pass retain_graph=True to the first call")
        funcs.append(f)
        for x in f.inputs:
            g = x.creator
            if g is not None and id(g) not in seen:
                seen.add(id(g))
                heapq.heappush(heap, (-g.generation, counter, g))
                counter += 1
    return funcs


def _functions_leading_to(funcs, targets):
    """The subset of funcs through which a gradient can reach a target tensor."""
    target_ids = {id(t) for t in targets}
    useful = set()
    for f in reversed(funcs):  # earliest generation first
        if any(id(x) in target_ids or (x.creator is not None and id(x.creator) in useful)
               for x in f.inputs):
            useful.add(id(f))
    return useful


def run_backward(outputs, grad_outputs, create_graph=False, accumulate=True, inputs=None,
                 retain_graph=None, allow_unused=True):
    """Propagate `grad_outputs` back from `outputs`.

    accumulate=True adds into the `.grad` of every leaf that requires grad (backward());
    otherwise the gradients of `inputs` are returned in a list (tinygan.grad).
    Each Function lets go of what it saved as soon as its backward has run, unless
    retain_graph (by default: create_graph, as in PyTorch) asks to keep the graph.
    """
    retain = create_graph if retain_graph is None else retain_graph
    grads: dict[int, Tensor] = {}
    alive: dict[int, Tensor] = {}  # keeps each tensor whose id is a key of `grads` alive
    for y, g in zip(outputs, grad_outputs):
        g = as_tensor(g, like=y)
        if g.shape != y.shape:
            raise RuntimeError(f"gradient of shape {g.shape} for an output of shape {y.shape}")
        grads[id(y)] = grads[id(y)] + g if id(y) in grads else g
        alive[id(y)] = y

    funcs = _topological_functions(outputs)
    wanted = set()
    if inputs is not None:
        useful = _functions_leading_to(funcs, inputs)
        funcs = [f for f in funcs if id(f) in useful]
        wanted = {id(t) for t in inputs}
        if not allow_unused:  # before the graph is walked (and freed), not after
            reached = {id(y) for y in outputs} | {id(x) for f in funcs for x in f.inputs}
            for i, t in enumerate(inputs):
                if id(t) not in reached:
                    raise RuntimeError(
                        f"grad: input {i} (shape {t.shape}) was not used in the graph of "
                        "the outputs; pass allow_unused=True to get None")

    with set_grad_enabled(create_graph):
        for f in funcs:
            gys = []
            for i, ref in enumerate(f.outputs):
                y = ref()
                # an intermediate's gradient is complete once its creator is reached
                g = None if y is None else (
                    grads.get(id(y)) if id(y) in wanted else grads.pop(id(y), None))
                gys.append(g)
            if all(g is None for g in gys):
                continue
            gys = [Tensor(f.xp.zeros_like(f._output_arrays[i])) if g is None else g
                   for i, g in enumerate(gys)]
            gxs = f.backward(*gys)
            if not isinstance(gxs, tuple):
                gxs = (gxs,)
            if len(gxs) != len(f.inputs):
                raise RuntimeError(f"{type(f).__name__}.backward returned {len(gxs)} gradients "
                                   f"for {len(f.inputs)} inputs")
            for x, gx, needs in zip(f.inputs, gxs, f.needs_input_grad):
                if gx is None or not needs:
                    continue
                if gx.shape != x.shape:
                    raise RuntimeError(f"{type(f).__name__}.backward gave a gradient of shape "
                                       f"{gx.shape} for an input of shape {x.shape}")
                if id(x) in grads:
                    grads[id(x)] = grads[id(x)] + gx
                else:
                    grads[id(x)] = gx
                    alive[id(x)] = x
            if not retain:
                f._release()

    if inputs is not None:
        return [grads.get(id(t)) for t in inputs]
    for key, g in grads.items():  # what is left: the leaves (and unreached outputs)
        x = alive[key]
        if x.creator is not None or not x.requires_grad:
            continue
        if not create_graph:
            g = Tensor(g.data)
        if g.dtype != x.dtype:
            g = Tensor(g.data.astype(x.dtype)) if not create_graph else g.to(dtype=x.dtype)
        if x.grad is None:
            x.grad = g
        elif create_graph:
            x.grad = x.grad + g
        else:
            x.grad = Tensor(x.grad.data + g.data)
    return None


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph: bool = False,
         allow_unused: bool = False):
    """d(outputs)/d(inputs), contracted with grad_outputs (as `torch.autograd.grad`).

    Returns a tuple with one tensor per input. With create_graph=True the results are
    themselves differentiable: this is how a gradient penalty is trained.
    """
    single_out = isinstance(outputs, Tensor)
    outputs = [outputs] if single_out else list(outputs)
    single_in = isinstance(inputs, Tensor)
    inputs = [inputs] if single_in else list(inputs)
    if grad_outputs is None:
        grad_outputs = []
        for y in outputs:
            if y.data.size != 1:
                raise RuntimeError(
                    f"grad of a non-scalar output of shape {y.shape} needs grad_outputs")
            grad_outputs.append(Tensor(y.xp.ones_like(y.data)))
    elif isinstance(grad_outputs, Tensor) or not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("grad: one of the inputs does not require grad")
    result = run_backward(outputs, grad_outputs, create_graph=create_graph,
                          accumulate=False, inputs=inputs, retain_graph=retain_graph,
                          allow_unused=allow_unused)
    for i, (g, t) in enumerate(zip(result, inputs)):
        if g is None:
            if not allow_unused:
                raise RuntimeError(f"grad: input {i} (shape {t.shape}) was not used in the graph "
                                   "of the outputs; pass allow_unused=True to get None")
        elif not create_graph:
            result[i] = Tensor(g.data)
    return tuple(result)
