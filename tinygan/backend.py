"""Which array library a tensor lives on: NumPy for "cpu", CuPy for "cuda".

Every op asks `get_array_module(array)` for the module of its inputs and never branches on
the device itself. CuPy is imported lazily, the first time a "cuda" device is asked for,
so tinygan runs anywhere NumPy does.

The default device comes from the environment variable TINYGAN_DEVICE ("cpu" unless set).
Random numbers come from one generator per device, seeded by `manual_seed`.
"""
from __future__ import annotations

import contextlib

import os

import numpy as np

from .cuda.random import Philox

DEVICES = ("cpu", "cuda")
_cupy = None
_cupy_error: str | None = None


def cupy_module():
    """Import CuPy on first use; raise a clear error when it or a GPU is missing."""
    global _cupy, _cupy_error
    if _cupy is not None:
        return _cupy
    if _cupy_error is None:
        try:
            import cupy

            if cupy.cuda.runtime.getDeviceCount() < 1:
                raise RuntimeError("CuPy found no CUDA device")
            _cupy = cupy
            return cupy
        except Exception as e:  # ImportError, CUDA driver errors
            _cupy_error = f"{type(e).__name__}: {e}"
    raise RuntimeError(
        f"device 'cuda' needs CuPy and a CUDA GPU ({_cupy_error}); "
        "install it with pip install -e \".[gpu]\" or use device='cpu'")


def cuda_is_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    try:
        cupy_module()
        return True
    except RuntimeError:
        return False


def cuda_unavailable_reason() -> str:
    """Why `cuda_is_available()` is False (for the skip message of GPU tests)."""
    if cuda_is_available():
        return ""
    return _cupy_error or "CuPy is not available"


def check_device(device) -> str:
    device = str(device)
    if device.startswith("cuda"):
        return "cuda"
    if device != "cpu":
        raise ValueError(f"unknown device {device!r}: expected one of {DEVICES}")
    return device


def default_device() -> str:
    """The device new tensors go to: $TINYGAN_DEVICE, else "cpu"."""
    return check_device(os.environ.get("TINYGAN_DEVICE", "cpu"))


def array_module(device: str):
    """The array module (numpy or cupy) of a device."""
    return np if check_device(device) == "cpu" else cupy_module()


def get_array_module(*arrays):
    """numpy or cupy, as `cupy.get_array_module`, without importing CuPy for NumPy data."""
    for a in arrays:
        if not isinstance(a, (np.ndarray, np.generic)) and type(a).__module__.startswith("cupy"):
            return cupy_module()
    return np


def device_of(array) -> str:
    return "cpu" if get_array_module(array) is np else "cuda"


def to_device(array, device: str):
    """Move an array to a device (a no-op when it is already there)."""
    device = check_device(device)
    here = device_of(array)
    if here == device:
        return array
    if device == "cpu":
        return array.get()
    return cupy_module().asarray(array)


def to_numpy(array) -> np.ndarray:
    return to_device(array, "cpu")


# --- random numbers -------------------------------------------------------------------
#
# One generator per device, both seeded by manual_seed: NumPy's default (PCG64) on the CPU;
# on the GPU a counter-based Philox (cuda/random.py), whose whole state is its seed and
# an offset, so that a checkpoint saves it and a CUDA graph can replay its draws.

_generators: dict = {}
_seed: int | None = None  # the last manual_seed, for a GPU generator made after it


def manual_seed(seed: int) -> None:
    """Seed the random generators of every device (as `torch.manual_seed`); the GPU's is
    seeded whether or not CuPy is loaded yet."""
    global _seed
    _seed = int(seed)
    _generators["cpu"] = np.random.default_rng(seed)
    _generators.pop("cuda", None)  # made again, from _seed, when first asked for


def generator(device: str = "cpu"):
    """The random generator of a device: a numpy Generator, or the GPU's Philox (the same
    methods: random, standard_normal, integers)."""
    device = check_device(device)
    if device not in _generators:
        if device == "cpu":
            _generators["cpu"] = np.random.default_rng()
        else:
            seed = _seed if _seed is not None else int(np.random.SeedSequence().entropy)
            _generators["cuda"] = Philox(seed & (2**64 - 1), cupy_module())
    return _generators[device]


def get_rng_state() -> dict:
    """Every generator's state, a plain dict (JSON-able), for checkpoints: the CPU's, with
    the GPU's seed and offset under "cuda" once a GPU number has been drawn."""
    state = dict(generator("cpu").bit_generator.state)
    if "cuda" in _generators:
        state["cuda"] = _generators["cuda"].get_state()
    return state


def set_rng_state(state: dict) -> None:
    state = dict(state)
    cuda = state.pop("cuda", None)
    generator("cpu").bit_generator.state = state
    if cuda is not None:
        generator("cuda").set_state(cuda)


@contextlib.contextmanager
def fork_rng():
    """Inside, random numbers may be drawn; after, every generator is where it was
    (PyTorch's torch.random.fork_rng): work beside a training run, such as building a
    network to score its samples, leaves the training's random numbers unchanged."""
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


manual_seed(0)
