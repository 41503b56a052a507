"""Constant padding of the last dims (as torch.nn.functional.pad)."""
from __future__ import annotations

from .. import backend
from ..tensor import Function, Tensor
from .shape import getitem


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
