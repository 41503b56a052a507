"""Gradient checks: analytic gradients against central finite differences, in float64.

The check backpropagates a *random* cotangent v, comparing d<v, f(x)>/dx with
(<v, f(x + eps e_i)> - <v, f(x - eps e_i)>) / (2 eps) for every element i of every
input. A plain sum would be a poor cotangent: the gradient of sum(batch_norm(x)) is zero
in training mode, so a sum-based check would pass while checking nothing.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from . import backend
from ._tensor import Tensor
from .autograd import enable_grad, grad


class GradcheckError(AssertionError):
    """An analytic gradient that disagrees with finite differences."""


def _as_outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _dot(cotangents, outputs) -> float:
    return float(sum(float((v * backend.to_numpy(y.data)).sum())
                     for v, y in zip(cotangents, outputs)))


def gradcheck(fn: Callable, inputs: Sequence[Tensor], eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, seed: int = 0, raise_exception: bool = True) -> bool:
    """Check the gradients of fn at inputs (float64 tensors) against finite differences.

    Inputs that require grad are checked; fn must be deterministic (fix dropout masks).
    On failure raises GradcheckError naming the input, the element, both values and the
    gap.
    """
    inputs = list(inputs)
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor) and x.requires_grad and x.dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {x.dtype}; finite differences need "
                            "float64 (use tinygan.tensor(array.astype('float64')))")
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")

    outputs = _as_outputs(fn(*inputs))
    rng = np.random.default_rng(seed)
    cotangents = [rng.standard_normal(y.shape) for y in outputs]
    differentiable = [k for k, y in enumerate(outputs) if y.requires_grad]
    if not differentiable:
        raise ValueError("gradcheck: no output depends on an input that requires grad")
    analytic = grad([outputs[k] for k in differentiable],
                    [inputs[i] for i in checked],
                    grad_outputs=[Tensor(backend.to_device(cotangents[k], outputs[k].device))
                                  for k in differentiable],
                    allow_unused=True)

    for i, g in zip(checked, analytic):
        x = inputs[i]
        g = np.zeros(x.shape) if g is None else backend.to_numpy(g.data)
        numeric = np.zeros(x.shape)
        # grad mode stays on: fn may differentiate inside itself (a gradient penalty does)
        for j in np.ndindex(*x.shape):  # index the array itself: works for any strides
            old = x.data[j].item()
            x.data[j] = old + eps
            plus = _dot(cotangents, _as_outputs(fn(*inputs)))
            x.data[j] = old - eps
            minus = _dot(cotangents, _as_outputs(fn(*inputs)))
            x.data[j] = old
            numeric[j] = (plus - minus) / (2 * eps)
        gap = np.abs(g - numeric)
        bound = atol + rtol * np.abs(numeric)
        if (gap > bound).any():
            j = np.unravel_index(int(np.argmax(gap - bound)), x.shape)
            message = (f"gradcheck: input {i} (shape {tuple(x.shape)}), element {tuple(map(int, j))}: "
                       f"analytic {g[j]:.8g}, numeric {numeric[j]:.8g}, |difference| {gap[j]:.3g} "
                       f"> atol + rtol*|numeric| = {bound[j]:.3g} "
                       f"({int((gap > bound).sum())} of {gap.size} elements disagree)")
            if raise_exception:
                raise GradcheckError(message)
            return False
    return True


def gradgradcheck(fn: Callable, inputs: Sequence[Tensor], eps: float = 1e-6,
                  atol: float = 1e-5, rtol: float = 1e-3, seed: int = 0,
                  raise_exception: bool = True) -> bool:
    """Check second derivatives: gradcheck of x, v -> d<v, fn(x)>/dx built with create_graph.

    The cotangents v are inputs too, so both d/dx and d/dv of the first gradient are
    checked, as torch.autograd.gradgradcheck does.
    """
    inputs = list(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    outputs = _as_outputs(fn(*inputs))
    rng = np.random.default_rng(seed + 1)
    vs = [Tensor(backend.to_device(rng.standard_normal(y.shape), y.device), requires_grad=True)
          for y in outputs]

    def first_gradient(*args):
        xs, v = list(args[:len(inputs)]), args[len(inputs):]
        with enable_grad():  # even if the caller switched gradients off
            outs = _as_outputs(fn(*xs))
            gs = grad(outs, [xs[i] for i in checked], grad_outputs=list(v),
                      create_graph=True, allow_unused=True)
        return tuple(g if g is not None else Tensor(np.zeros(xs[i].shape))
                     for g, i in zip(gs, checked))

    return gradcheck(first_gradient, inputs + vs, eps=eps, atol=atol, rtol=rtol, seed=seed,
                     raise_exception=raise_exception)
