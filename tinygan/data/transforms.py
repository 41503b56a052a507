"""Pixel scalings between stored uint8 images and the [-1, 1] floats a tanh generator emits."""
from __future__ import annotations

import numpy as np

# to_signed_unit as a 256-entry table: one gather per batch instead of a cast, a divide
# and a subtract. Its entries are computed in float32 exactly as x / 127.5 - 1 would be.
SIGNED_UNIT_TABLE = np.arange(256, dtype=np.float32) / np.float32(127.5) - np.float32(1)


def to_signed_unit(images: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [-1, 1]: x / 127.5 - 1 (0 -> -1, 255 -> 1)."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"to_signed_unit expects uint8 pixels, got {images.dtype}")
    return SIGNED_UNIT_TABLE[images]


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
