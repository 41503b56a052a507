"""Worked solutions to the exercises of lesson 18, the GPU and fused kernels.

Run from anywhere: python lessons/solutions/18-gpu-cupy-kernels.py
The fused kernel runs only where CuPy and a GPU are; elsewhere the generic twin is checked.
"""
import numpy as np

import tinygan
from tinygan import backend, kernels
from tinygan.kernels import compile_once

# Exercise 1. hardtanh(x) = clip(x, -1, 1): the generic version on any array module, the
# fused one as a CuPy ElementwiseKernel built on first use, the same signature, and the
# dispatch of lesson 18.
_kernels: dict = {}


def hardtanh_generic(x):
    """y = clip(x, -1, 1): NumPy or CuPy, two passes (a maximum, then a minimum)."""
    xp = backend.get_array_module(x)
    one = x.dtype.type(1)
    return xp.minimum(xp.maximum(x, -one), one)


def hardtanh_fused(x):
    """y = clip(x, -1, 1) in one CuPy kernel: x read once, y written once."""
    k = compile_once(_kernels, "hardtanh", lambda: backend.cupy_module().ElementwiseKernel(
        "T x", "T y", "y = x < (T)-1 ? (T)-1 : (x > (T)1 ? (T)1 : x)", "hardtanh"))
    return k(x)


def hardtanh(x):
    return hardtanh_fused(x) if kernels.enabled(x) else hardtanh_generic(x)


a = np.linspace(-3, 3, 13, dtype=np.float32)
print("exercise 1: generic hardtanh", hardtanh(a), hardtanh(a).dtype)
assert np.array_equal(hardtanh(a), np.clip(a, -1, 1)) and hardtanh(a).dtype == np.float32
if tinygan.cuda_is_available():
    cupy = backend.cupy_module()
    g = cupy.asarray(a)
    assert cupy.array_equal(hardtanh(g), hardtanh_generic(g))
    print("exercise 1: the fused kernel agrees with its twin on the GPU")
else:
    print("exercise 1: no GPU here, so the fused kernel was not run")

# Exercise 2. leaky_relu_backward_generic, per element of N float32 values: it writes
# d = (x > 0) (read x, write d), then d *= 1 - slope, d += slope (read and write d twice),
# then d *= gy (read d and gy, write d): 5 reads and 4 writes of 4 bytes, 36 N bytes. The
# fused kernel reads gy and x and writes gx: 12 N bytes. An elementwise op is limited by
# memory traffic, so expect it about 3 times faster (on a GPU, where `x > 0` also writes
# a temporary of N booleans for the generic path, a little more).
generic_bytes, fused_bytes = (5 + 4) * 4, (2 + 1) * 4
print(f"exercise 2: {generic_bytes} N bytes against {fused_bytes} N: "
      f"{generic_bytes / fused_bytes:.0f} times the traffic")

# Exercise 3. A float32 array times a Python float stays float32 (a Python scalar adapts to
# the array). Times a float64 NumPy scalar it depends on NumPy: from NumPy 2 (NEP 50) the
# scalar's dtype counts, and the result is float64, twice the memory and a silent change
# of dtype through the whole network; NumPy 1 looked at the value and kept float32.
# x.dtype.type(slope) gives the array's own dtype, the same on every version, and on CuPy.
x = np.ones(3, dtype=np.float32)
with_python = (x * 0.2).dtype
with_float64 = (x * np.float64(0.2)).dtype
with_own = (x * x.dtype.type(0.2)).dtype
print(f"exercise 3: NumPy {np.__version__}: float32 * 0.2 -> {with_python}, "
      f"* np.float64(0.2) -> {with_float64}, * x.dtype.type(0.2) -> {with_own}")
assert with_python == np.float32 and with_own == np.float32
