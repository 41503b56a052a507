"""The in-place array steps that Adam and RMSprop are written in, as PyTorch names them.

Each writes through a scratch array `work` that the caller makes once per step. Written as
an expression, `m += (1 - b1) * (g - m)` allocates a fresh array for `g - m` and another
for the product, and on a parameter of a million floats the allocations cost more than
the arithmetic; through `work` a whole Adam step allocates once. Every step works on
NumPy and CuPy arrays alike.
"""
from __future__ import annotations

from ..backend import get_array_module


def lerp_(a, b, weight: float, work) -> None:
    """a += weight (b - a), PyTorch's `a.lerp_(b, weight)`: a moving average of b.

    `b` may be `work` itself (as in `lerp_(v, square(g, out=work), 1 - b2, work)`).
    """
    get_array_module(a).subtract(b, a, out=work)
    work *= weight
    a += work


def addcdiv_(a, num, den, value: float, work) -> None:
    """a += value num / den, PyTorch's `a.addcdiv_(num, den, value=value)`.

    `den` may be `work` itself.
    """
    get_array_module(a).divide(num, den, out=work)
    work *= value
    a += work
