"""Fused CuPy kernels, each beside the generic array code it replaces.

An op uses a kernel only when its arrays live on the GPU and kernels are enabled
($TINYGAN_KERNELS is not "0"); everywhere else the generic NumPy/CuPy path runs. The
choice is made by a small dispatcher beneath the op's Function (`_leaky_relu` in
functional/activation.py, `_im2col` in functional/unfold.py), never inside its forward or
backward. Each module holds the kernel and its generic twin, with the same signature
(im2col's twin, the strided view, lives in functional/unfold.py), and tests/test_kernels.py
compares them on a GPU (skipped with a reason elsewhere).
"""
from __future__ import annotations

import os

from .. import backend


#: $TINYGAN_KERNELS=0 switches the kernels off (read once, when tinygan is imported)
SWITCHED_ON = os.environ.get("TINYGAN_KERNELS", "1") != "0"


def enabled(*arrays) -> bool:
    """True when every array is a CuPy array and fused kernels are switched on.

    Asked several hundred times a step, so it looks at the arrays' types directly.
    """
    if not SWITCHED_ON or not arrays:
        return False
    for a in arrays:
        if not type(a).__module__.startswith("cupy"):
            return False
    return True


def compile_once(cache: dict, key, make):
    """Build a kernel the first time it is asked for (CuPy compiles lazily, too)."""
    if key not in cache:
        cache[key] = make()
    return cache[key]


def memory_order(a):
    """a's axes from outermost to innermost in memory, when a is a permuted C-contiguous
    array (channels-last memory behind an NCHW shape, say); None when a is C-contiguous
    already, or not dense."""
    key = (a.shape, a.strides)
    if key not in _orders:
        if a.ndim < 2 or a.flags.c_contiguous:
            _orders[key] = None
        else:
            order = sorted(range(a.ndim), key=lambda d: -a.strides[d])
            _orders[key] = order if a.transpose(order).flags.c_contiguous else None
    return _orders[key]


_orders: dict = {}  # (shape, strides) -> memory order: a network has few of them


def in_memory_order(fn, *arrays):
    """fn(*arrays), computed over the arrays viewed in the memory order of the largest.

    NumPy's elementwise ops keep their inputs' memory order; CuPy's always write C-ordered
    outputs. A channels-last activation (what a convolution leaves) would come out of a
    CuPy activation or BatchNorm as NCHW memory, and the next convolution would read it
    across the grain. Viewed in memory order the inputs are C-ordered, so is the output,
    and transposing it back gives an array laid out as its inputs were. Elsewhere (NumPy,
    C-ordered inputs) this is fn(*arrays).
    """
    main = None
    for a in arrays:
        if getattr(a, "ndim", 0) >= 2 and (main is None or a.size > main.size):
            main = a
    if main is None or not enabled(main):
        return fn(*arrays)
    order = memory_order(main)
    if order is None:
        return fn(*arrays)
    views = []
    for a in arrays:
        if getattr(a, "ndim", 0) > 0:
            if a.ndim > main.ndim:
                return fn(*arrays)
            if a.ndim < main.ndim:  # broadcasting aligns shapes from the right
                a = a.reshape((1,) * (main.ndim - a.ndim) + a.shape)
            a = a.transpose(order)
        views.append(a)
    out = fn(*views)
    inverse = [order.index(d) for d in range(len(order))]
    if isinstance(out, tuple):
        return tuple(o.transpose(inverse) for o in out)
    return out.transpose(inverse)
