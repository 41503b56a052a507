"""The in-place array steps that Adam and RMSprop are written in, named as PyTorch's.

Each writes through a scratch array `work` that the caller makes once per step. Written as
an expression, `v += (1 - b2) * g * g` makes a fresh array for each product, and on a
parameter of a million floats making arrays costs more than the arithmetic; through
`work` a whole Adam step makes one. Every step works on NumPy and CuPy arrays alike.
"""
from __future__ import annotations

from ..backend import get_array_module


def add_(a, b, alpha: float, work) -> None:
    """a += alpha b, PyTorch's `a.add_(b, alpha=alpha)`."""
    get_array_module(a).multiply(b, alpha, out=work)
    a += work


def addcmul_(a, t1, t2, value: float, work) -> None:
    """a += value t1 t2, PyTorch's `a.addcmul_(t1, t2, value=value)`."""
    get_array_module(a).multiply(t1, t2, out=work)
    work *= value
    a += work


def addcdiv_(a, num, den, value: float, work) -> None:
    """a += value num / den, PyTorch's `a.addcdiv_(num, den, value=value)`; `den` may be
    `work` itself."""
    get_array_module(a).divide(num, den, out=work)
    work *= value
    a += work
