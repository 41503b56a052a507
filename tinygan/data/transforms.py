"""Pixel scalings between stored uint8 images and the [-1, 1] floats a tanh generator emits."""
from __future__ import annotations

import numpy as np

def to_signed_unit(images: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [-1, 1]: x / 127.5 - 1 (0 -> -1, 255 -> 1).

    Works on NumPy and CuPy arrays alike. In place after one cast: measured faster than a
    256-entry lookup table (a gather), and exact, since uint8 -> float32 loses nothing.
    """
    if not hasattr(images, "dtype"):
        images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"to_signed_unit expects uint8 pixels, got {images.dtype}")
    out = images.astype(np.float32)
    out /= np.float32(127.5)
    out -= np.float32(1)
    return out


def to_uint8(images) -> np.ndarray:
    """The inverse of to_signed_unit, for saving pictures: round((x + 1) * 127.5), clipped.

    Accepts a NumPy or CuPy array or a tinygan Tensor; returns a NumPy uint8 array.
    """
    if hasattr(images, "numpy"):  # a Tensor (on any device)
        images = images.numpy()
    elif hasattr(images, "get") and not isinstance(images, np.ndarray):
        images = images.get()  # a CuPy array
    x = (np.asarray(images, dtype=np.float32) + 1) * np.float32(127.5)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)
