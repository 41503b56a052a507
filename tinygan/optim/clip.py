"""Clipping: of weights (WGAN's critic) and of the gradient norm."""
from __future__ import annotations

import math

from .._tensor import Tensor
from ..backend import get_array_module


def _tensors(params) -> list:
    return [params] if isinstance(params, Tensor) else list(params)


def clip_(params, low: float, high: float) -> None:
    """p = min(max(p, low), high) in place, for every parameter.

    WGAN's weight clipping (Arjovsky et al. 2017, Algorithm 1, line 7): call it after
    every critic step, e.g. `clip_(critic.parameters(), -0.01, 0.01)`, to keep the
    critic K-Lipschitz for some K.
    """
    if low > high:
        raise ValueError(f"clip_: low ({low}) is greater than high ({high})")
    for p in _tensors(params):
        xp = get_array_module(p.data)
        xp.clip(p.data, low, high, out=p.data)


def clip_grad_norm_(params, max_norm: float, norm_type: float = 2.0) -> Tensor:
    """If ||g|| > max_norm, g *= max_norm / (||g|| + 1e-6), the norm taken over all gradients.

    Returns the total norm before clipping, as a 0-d tensor (as PyTorch's).
    """
    grads = [p.grad.data for p in _tensors(params) if p.grad is not None]
    if not grads:
        return Tensor(get_array_module().zeros((), dtype="float32"))
    xp = get_array_module(grads[0])
    norm_type = float(norm_type)
    if math.isinf(norm_type):
        norms = [xp.abs(g).max() if g.size else xp.zeros((), g.dtype) for g in grads]
        total = xp.stack(norms).max()
    else:
        norms = [(xp.abs(g) ** norm_type).sum() for g in grads]
        total = xp.stack(norms).sum() ** (1.0 / norm_type)
    coef = float(max_norm) / (float(total) + 1e-6)
    if coef < 1:
        for g in grads:
            g *= coef
    return Tensor(xp.asarray(total))
