"""The in-place array steps that Adam and RMSprop are written in.

Each writes through a scratch array `work` that the caller makes once per step. Written as
an expression, `v = b2 * v + (1 - b2) * g * g` makes a fresh array for every product and
sum, and on a parameter of a million floats making arrays costs more than the arithmetic;
through `work` a whole Adam step makes one. Every step works on NumPy and CuPy arrays
alike. `lerp_` and `average_` are one moving average written two ways (PyTorch's Adam
writes m the first way and v the second); they round differently.
"""
from __future__ import annotations

from ..backend import get_array_module


def average_(avg, x, beta: float, work) -> None:
    """avg = beta avg + (1 - beta) x: an exponential moving average of x, in place.

    `x` may be `work` itself. (The scaled x first, then avg's two passes one after the
    other: measured faster than the other orders on NumPy.)
    """
    get_array_module(avg).multiply(x, 1 - beta, out=work)
    avg *= beta
    avg += work


def lerp_(a, b, weight: float, work) -> None:
    """a += weight (b - a), PyTorch's `a.lerp_(b, weight)`: a = (1 - weight) a + weight b
    as a step from a towards b."""
    get_array_module(a).subtract(b, a, out=work)
    work *= weight
    a += work


def addcdiv_(a, num, den, value: float, work) -> None:
    """a += value num / den, PyTorch's `a.addcdiv_(num, den, value=value)`; `den` may be
    `work` itself."""
    get_array_module(a).divide(num, den, out=work)
    work *= value
    a += work
