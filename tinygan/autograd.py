"""The autograd: grad mode, Function, and the backward walk behind backward() and grad().

A Function's `forward` works on raw arrays; its `backward` is written with differentiable
Tensor ops. With `create_graph=False` the backward runs under `no_grad` and records
nothing; with `create_graph=True` it records a graph of its own, which is how second
derivatives (the WGAN-GP gradient penalty) come out with no special case.
"""
from __future__ import annotations

import contextlib
import heapq
import weakref

from . import backend
from ._tensor import _FLOAT_KINDS, Tensor, as_tensor

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


# ------------------------------------------------------------------- the backward pass


def _topological_order(outputs) -> list:
    """Every Function that leads to `outputs`, latest generation first (no recursion)."""
    funcs, heap, seen = [], [], set()

    def push(f):
        if f is not None and id(f) not in seen:
            seen.add(id(f))
            heapq.heappush(heap, (-f.generation, len(seen), f))

    for y in outputs:
        push(y.creator)
    while heap:
        f = heapq.heappop(heap)[2]
        if "inputs" not in f.__dict__:
            raise RuntimeError(
                f"backward through {type(f).__name__} a second time: its saved arrays were "
                "freed by the first backward; pass retain_graph=True to the first call")
        funcs.append(f)
        for x in f.inputs:
            push(x.creator)
    return funcs


def _leading_to(funcs, targets) -> list:
    """The functions of `funcs` through which a gradient can reach a target tensor."""
    target_ids = {id(t) for t in targets}
    useful = set()
    for f in reversed(funcs):  # earliest generation first
        if any(id(x) in target_ids or (x.creator is not None and id(x.creator) in useful)
               for x in f.inputs):
            useful.add(id(f))
    return [f for f in funcs if id(f) in useful]


def _check_used(outputs, funcs, inputs) -> None:
    """grad(allow_unused=False): every input must be in the graph (checked before the walk,
    which frees the graph, so that the caller can try again)."""
    reached = {id(y) for y in outputs} | {id(x) for f in funcs for x in f.inputs}
    for i, t in enumerate(inputs):
        if id(t) not in reached:
            raise RuntimeError(f"grad: input {i} (shape {t.shape}) was not used in the graph "
                               "of the outputs; pass allow_unused=True to get None")


def _output_grads(f, grads: dict, keep: set):
    """The gradients of f's outputs (zeros for an output nobody used), or None when no
    gradient reached f. An intermediate's gradient is complete once its creator is reached,
    so `grads` lets go of it, unless it is one of the `keep` (tinygan.grad's inputs); the
    tensor itself stays in `grads` until the walk ends (freeing activations midway only
    made the allocator hand the memory back to the system and fault it in again)."""
    gys = []
    for ref in f.outputs:
        y = ref()
        entry = None if y is None else grads.get(id(y))
        if entry is not None and id(y) not in keep:
            grads[id(y)] = (y, None)
        gys.append(None if entry is None else entry[1])
    if all(g is None for g in gys):
        return None
    return [Tensor(f.xp.zeros_like(f._output_arrays[i])) if g is None else g
            for i, g in enumerate(gys)]


def _input_grads(f, gys) -> list:
    """f.backward(*gys) as a list of (input, gradient) for the inputs that want one."""
    gxs = f.backward(*gys)
    if not isinstance(gxs, tuple):
        gxs = (gxs,)
    if len(gxs) != len(f.inputs):
        raise RuntimeError(f"{type(f).__name__}.backward returned {len(gxs)} gradients for "
                           f"{len(f.inputs)} inputs")
    pairs = []
    for x, gx, needs in zip(f.inputs, gxs, f.needs_input_grad):
        if gx is None or not needs:
            continue
        if gx.shape != x.shape:
            raise RuntimeError(f"{type(f).__name__}.backward gave a gradient of shape "
                               f"{gx.shape} for an input of shape {x.shape}")
        pairs.append((x, gx))
    return pairs


def _add(grads: dict, x: Tensor, g: Tensor) -> None:
    """grads[id(x)] += g; the entry keeps x alive, so its id stays its own."""
    entry = grads.get(id(x))
    grads[id(x)] = (x, g) if entry is None or entry[1] is None else (x, entry[1] + g)


def _accumulate_into_leaves(grads: dict, create_graph: bool) -> None:
    """x.grad += g for every leaf that requires grad (what backward() leaves behind)."""
    for x, g in grads.values():
        if x.creator is not None or not x.requires_grad or g is None:
            continue  # an intermediate, or an output nobody reached, or a constant
        if not create_graph:
            g = Tensor(g.data)
        if g.dtype != x.dtype:
            g = g.to(dtype=x.dtype) if create_graph else Tensor(g.data.astype(x.dtype))
        if x.grad is None:
            x.grad = g
        elif create_graph:
            x.grad = x.grad + g
        else:
            x.grad = Tensor(x.grad.data + g.data)
        for hook in list(x.__dict__.get("_post_accumulate_hooks", {}).values()):
            hook(x)


def run_backward(outputs, grad_outputs, create_graph=False, inputs=None, retain_graph=None,
                 allow_unused=True):
    """Propagate `grad_outputs` back from `outputs`, one Function at a time.

    Without `inputs` (backward()) the gradients add into the `.grad` of every leaf;
    with them (tinygan.grad) they are returned, one per input (None where none arrived).
    Each Function lets go of what it saved once its backward has run, unless retain_graph
    (by default: create_graph, as in PyTorch) asks to keep the graph.
    """
    retain = create_graph if retain_graph is None else retain_graph
    grads: dict = {}  # id(tensor) -> (tensor, its gradient so far)
    for y, g in zip(outputs, grad_outputs):
        g = as_tensor(g, like=y)
        if g.shape != y.shape:
            raise RuntimeError(f"gradient of shape {g.shape} for an output of shape {y.shape}")
        _add(grads, y, g)
    funcs, keep = _topological_order(outputs), set()
    if inputs is not None:
        funcs, keep = _leading_to(funcs, inputs), {id(t) for t in inputs}
        if not allow_unused:
            _check_used(outputs, funcs, inputs)
    with set_grad_enabled(create_graph):
        for f in funcs:
            gys = _output_grads(f, grads, keep)
            if gys is None:
                continue
            for x, gx in _input_grads(f, gys):
                _add(grads, x, gx)
            if not retain:
                f._release()
    if inputs is None:
        _accumulate_into_leaves(grads, create_graph)
        return None
    return [grads[id(t)][1] if id(t) in grads else None for t in inputs]


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph: bool = False,
         allow_unused: bool = False):
    """d(outputs)/d(inputs), contracted with grad_outputs (as `torch.autograd.grad`).

    Returns a tuple with one tensor per input. With create_graph=True the results are
    themselves differentiable: this is how a gradient penalty is trained.
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        grad_outputs = []
        for y in outputs:
            if y.data.size != 1:
                raise RuntimeError(
                    f"grad of a non-scalar output of shape {y.shape} needs grad_outputs")
            grad_outputs.append(Tensor(y.xp.ones_like(y.data)))
    elif not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("grad: one of the inputs does not require grad")
    result = run_backward(outputs, grad_outputs, create_graph=create_graph, inputs=inputs,
                          retain_graph=retain_graph, allow_unused=allow_unused)
    if not create_graph:
        result = [None if g is None else Tensor(g.data) for g in result]
    return tuple(result)
