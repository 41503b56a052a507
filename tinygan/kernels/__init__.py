"""Fused CuPy kernels, each beside the generic array code it replaces.

An op uses a kernel only when its arrays live on the GPU and kernels are enabled
($TINYGAN_KERNELS is not "0"); everywhere else the generic NumPy/CuPy path runs. Each
module holds both, with the same signature, and tests/test_kernels.py compares them on a
GPU (skipped with a reason elsewhere).
"""
from __future__ import annotations

import os

from .. import backend


def enabled(*arrays) -> bool:
    """True when every array is a CuPy array and fused kernels are switched on."""
    if os.environ.get("TINYGAN_KERNELS", "1") == "0":
        return False
    return bool(arrays) and all(backend.device_of(a) == "cuda" for a in arrays)


def compile_once(cache: dict, key, make):
    """Build a kernel the first time it is asked for (CuPy compiles lazily, too)."""
    if key not in cache:
        cache[key] = make()
    return cache[key]
