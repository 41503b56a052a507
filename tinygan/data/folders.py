"""Folders of images as datasets, decoded once and cached as .npy.

A folder is either flat (unlabelled) or holds one sub-folder per class (labels are the
sub-folders in sorted order). If it has a sub-folder named after the split (train/, test/),
that sub-folder is used. Files without an image extension (a README, .DS_Store) are ignored;
image files that cannot be decoded are skipped and counted in one warning, and if none can
be decoded that is an error. Modes and resizing follow the policy in images.py; `size=None`
keeps the images' size when they all agree, else resizes to 64 x 64.

Decoding JPEGs is slow, so the result is stored in the cache (cache/decoded/<key>/:
images.npy uint8 NCHW, labels.npy, meta.json) under a key made of the source path, the size,
the split and a fingerprint of the files (count, bytes, newest mtime), so an edited folder is
decoded again.
"""
from __future__ import annotations

import hashlib
import json
import re
import warnings
from pathlib import Path

import numpy as np

from ..files import atomic_write
from .dataset import DatasetError, ImageDataset
from .images import GRAY_MODES, IMAGE_EXTENSIONS, decode_many, is_image_name, probe_image
from .paths import cache_dir, made_dirs

DEFAULT_SIZE = 64
CACHE_VERSION = 1  # bump when the decoding policy changes, so old caches are not reused


def images_under(folder: Path) -> list[Path]:
    """Image files anywhere under a folder, sorted, hidden files left out."""
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and is_image_name(p.name) and not p.name.startswith("."))


def scan_folder(folder: Path) -> tuple[list[Path], list[int] | None, list[str]]:
    """(image files, labels or None, class names) of a flat or class-per-sub-folder tree."""
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder")
    loose = sorted(p for p in folder.iterdir()
                   if p.is_file() and is_image_name(p.name) and not p.name.startswith("."))
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    classes = [(d.name, images_under(d)) for d in subdirs]
    classes = [(n, files) for n, files in classes if files]
    if classes and loose:
        raise DatasetError(f"{folder}: has both loose images (e.g. {loose[0].name}) and class "
                           "sub-folders; use one layout or the other")
    if classes:
        files = [f for _, fs in classes for f in fs]
        labels = [k for k, (_, fs) in enumerate(classes) for _ in fs]
        return files, labels, [n for n, _ in classes]
    files = images_under(folder)  # flat (nested folders without classes count as flat)
    if not files:
        raise DatasetError(f"{folder}: empty or image-less folder: no image files "
                           f"({' '.join(IMAGE_EXTENSIONS)}) found")
    return files, None, []


def fingerprint(files: list[Path]) -> list[int]:
    """Count, total bytes and newest mtime of files: changes when the folder changes."""
    stats = [f.stat() for f in files]
    return [len(stats), sum(s.st_size for s in stats), max(s.st_mtime_ns for s in stats)]


def _cache_entry(name: str, key: dict) -> Path:
    key = dict(key, version=CACHE_VERSION)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:40]
    return cache_dir() / "decoded" / f"{slug}-{digest}"


def cache_lookup(name: str, key: dict) -> tuple | None:
    """(images, labels, meta) from the decoded-image cache, or None on a miss."""
    entry = _cache_entry(name, key)
    try:
        meta = json.loads((entry / "meta.json").read_text())
        images = np.load(entry / "images.npy")
        labels = np.load(entry / "labels.npy") if meta["labelled"] else None
    except (OSError, ValueError, KeyError):
        return None
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) != meta.get("count"):
        return None  # damaged entry: decode again (and overwrite it)
    return images, labels, meta


def cache_store(name: str, key: dict, images: np.ndarray, labels, meta: dict) -> None:
    """Write a decoded set to the cache; meta.json goes last, so it marks a complete entry."""
    entry = _cache_entry(name, key)
    meta = dict(meta, count=len(images), labelled=labels is not None, key=key)
    try:
        with made_dirs(entry):
            atomic_write(entry / "images.npy", lambda f: np.save(f, images))
            if labels is not None:
                atomic_write(entry / "labels.npy", lambda f: np.save(f, labels))
            atomic_write(entry / "meta.json", lambda f: f.write(json.dumps(meta).encode()))
    except OSError as e:  # a read-only cache only costs speed
        warnings.warn(f"could not cache decoded images in {entry}: {e}", stacklevel=3)


def decode_checked(where, sources: list, gray: bool, size: int | None,
                   read=None) -> tuple[np.ndarray, list[int]]:
    """decode_many, plus the warning for skipped files and the error when all fail."""
    images, kept, failed = decode_many(sources, gray, size, read)
    if images is None:
        first, error = failed[0]
        raise DatasetError(f"{where}: none of the {len(sources)} image files could be "
                           f"decoded (e.g. {first}: {error})")
    if failed:
        first, error = failed[0]
        warnings.warn(f"{where}: skipped {len(failed)} unreadable image(s) of {len(sources)} "
                      f"(e.g. {first}: {error})", stacklevel=3)
    return images, kept


def load_folder(path: str | Path, split: str = "train", size: int | None = None,
                name: str | None = None) -> ImageDataset:
    """A folder of images (flat, or one sub-folder per class) as an ImageDataset."""
    folder = Path(path).expanduser().resolve()
    if (folder / split).is_dir():
        folder = folder / split
    elif split != "train":
        raise DatasetError(f"{folder}: no {split}/ sub-folder (only split='train' can use "
                           "the whole folder)")
    name = name or f"folder:{path}"
    files, labels, classes = scan_folder(folder)
    key = {"source": str(folder), "size": size, "split": split,
           "files": fingerprint(files)}
    hit = cache_lookup(name, key)
    if hit is not None:
        images, cached_labels, meta = hit
        return ImageDataset(name, images, cached_labels, meta["classes"], split,
                            source=str(folder))

    # Headers only (no pixels) to choose channels and size for the whole folder.
    probed, unreadable = [], 0
    for f in files:
        try:
            probed.append(probe_image(f))
        except Exception:  # counted and reported by decode_checked below
            unreadable += 1
    gray = bool(probed) and all(mode in GRAY_MODES for mode, _ in probed)
    if size is None and len({s for _, s in probed}) > 1:
        size = DEFAULT_SIZE
    images, kept = decode_checked(folder, files, gray, size)
    if labels is not None:
        labels = np.asarray(labels, np.int64)[kept]
    cache_store(name, key, images, labels, {"classes": classes, "source": str(folder)})
    return ImageDataset(name, images, labels, classes, split, source=str(folder))
