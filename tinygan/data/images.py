"""Decoding image files (JPEG, PNG, ...) into uint8 arrays, with one policy for modes.

Mode policy, applied to every image folder:
  - a folder whose images are all grayscale (PIL modes 1, L, LA, I, I;16, F) gives 1 channel;
    any colour image in it makes the whole folder RGB (grayscale images are replicated
    into R = G = B, as PIL's L -> RGB conversion does);
  - transparency (RGBA, LA, PA, or a palette image with a transparent colour) is composited
    onto a white background, so transparent pixels become white, never black;
  - 16-bit grayscale keeps its 8 most significant bits.
Resizing: when a size is asked for, the image's central square is cropped (the shorter side
sets it) and resized to size x size with PIL's bilinear filter, which widens its support
when shrinking, so it averages like an area filter instead of aliasing.
"""
from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from .dataset import DatasetError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def is_image_name(name: str) -> bool:
    """True for a file name with an image extension (case-insensitive)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _flatten(img, gray: bool):
    """`img` as a PIL image in mode L (gray) or RGB, alpha composited on white."""
    if img.mode.startswith("I;16"):  # keep the high byte rather than clipping at 255
        img = Image.fromarray((np.asarray(img, dtype=np.uint16) >> 8).astype(np.uint8))
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode in ("RGB", "L") and "transparency" in img.info:
        img = img.convert("RGBA")  # a single transparent colour key
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img.convert("RGBA"))
    return img.convert("L" if gray else "RGB")


def centre_square(img: Image.Image) -> Image.Image:
    """The central square of an image, its side the shorter of width and height."""
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return img.crop((left, top, left + side, top + side))


def decode_image(source, gray: bool, size: int | None = None) -> np.ndarray:
    """One image file (a path or bytes) as uint8 (C, H, W), cropped and resized if `size`."""
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    with Image.open(fp) as img:
        img.load()  # decode now, so a truncated file fails here
        img = _flatten(img, gray)
    if size is not None and img.size != (size, size):
        img = centre_square(img).resize((size, size), Image.Resampling.BILINEAR)
    array = np.asarray(img, dtype=np.uint8)
    return array[None] if gray else array.transpose(2, 0, 1)


def probe_image(path: Path) -> tuple[str, tuple[int, int]]:
    """(mode, (width, height)) from a file's header, without decoding its pixels."""
    with Image.open(path) as img:
        return img.mode, img.size


def decode_many(sources: list, gray: bool, size: int | None, read=None,
                workers: int | None = None) -> tuple[np.ndarray | None, list, list]:
    """Decode images in parallel threads (PIL releases the GIL while decoding and resizing).

    `read(source)` turns a source into bytes or a path (default: the source itself). Returns
    (stacked uint8 array (N, C, H, W) of the good ones, indices kept, [(source, error)]).
    """
    read = read or (lambda s: s)
    workers = workers or min(8, os.cpu_count() or 1)

    def one(source):
        try:
            return decode_image(read(source), gray, size), None
        except Exception as e:  # PIL raises OSError, ValueError, SyntaxError, ...
            return None, f"{type(e).__name__}: {e}"

    out, kept, failed = None, [], []
    chunk = 1024  # bounded memory when `read` loads bytes (e.g. from a zip)
    with ThreadPoolExecutor(workers) as pool:
        for start in range(0, len(sources), chunk):
            part = sources[start:start + chunk]
            for i, (array, error) in enumerate(pool.map(one, part), start):
                if array is None:
                    failed.append((sources[i], error))
                    continue
                if out is None:  # filled in place: no second copy of a large set
                    out = np.empty((len(sources),) + array.shape, np.uint8)
                elif array.shape != out.shape[1:]:
                    raise DatasetError(f"{sources[i]}: decoded shape {array.shape} differs "
                                       f"from the others' {out.shape[1:]}; pass a size")
                out[len(kept)] = array
                kept.append(i)
    return (None if out is None else out[:len(kept)]), kept, failed
