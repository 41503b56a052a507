"""CelebA faces and the Linnaeus 5 flowers: read from the user's own copy, never downloaded.

Neither can be fetched by a script (CelebA is served from Google Drive, Linnaeus 5 as a RAR
archive), so their loaders look in the usual places (paths.py) and otherwise say exactly
where to get them and where to put them.

CelebA: the aligned faces (img_align_celeba/, 178 x 218 JPEGs, or img_align_celeba.zip)
are cropped to their central 178 x 178 square and resized to 64 x 64 (images.py). Splits
follow the official partition by file number: train 000001-162770, valid 162771-182637,
test 182638-202599; "all" is every image. No labels.

flowers: Linnaeus 5 (http://chaladze.com/l5/), 5 classes, from "Linnaeus 5 64X64/" (used as
is) or "Linnaeus 5 256X256/" (resized to 64 x 64), each with train/ and test/ holding one
folder per class: berry, bird, dog, flower, other.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

from .dataset import DatasetError, DatasetNotFoundError, ImageDataset
from .folders import (cache_lookup, cache_store, decode_checked, fingerprint, images_under,
                      load_folder)
from .images import is_image_name
from .paths import download_dir, safe_member_name, search_dirs

CELEBA_URL = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
CELEBA_SPLITS = {"train": (1, 162770), "valid": (162771, 182637), "test": (182638, 202599)}
LINNAEUS_URL = "http://chaladze.com/l5/"
LINNAEUS_FOLDERS = ("Linnaeus 5 64X64", "Linnaeus 5 256X256")
LINNAEUS_CLASSES = ["berry", "bird", "dog", "flower", "other"]


def _in_split(name: str, split: str) -> bool:
    """Whether a CelebA file (e.g. 'img_align_celeba/000042.jpg') belongs to a split."""
    if split == "all":
        return True
    stem = Path(name).stem
    if not stem.isdigit():
        return False
    low, high = CELEBA_SPLITS[split]
    return low <= int(stem) <= high


def _celeba_sources(root):
    """(kind, path) of the first CelebA copy found: ("folder", dir) or ("zip", file)."""
    for d in search_dirs("celeba", root):
        if (d / "img_align_celeba").is_dir():
            return "folder", d / "img_align_celeba"
        if (d / "img_align_celeba.zip").is_file():
            return "zip", d / "img_align_celeba.zip"
    target = download_dir("celeba", root)
    searched = ", ".join(str(d) for d in search_dirs("celeba", root))
    raise DatasetNotFoundError(
        f"celeba: CelebA cannot be downloaded by a script (it is served from Google Drive). "
        f"Get img_align_celeba.zip (Align&Cropped Images) from {CELEBA_URL} and put it at "
        f"{target / 'img_align_celeba.zip'}, or extract it so the JPEGs are in "
        f"{target / 'img_align_celeba'}/ (searched: {searched})")


def load_celeba(split: str = "train", root=None, size: int | None = None) -> ImageDataset:
    """CelebA aligned faces, centre-cropped to 178x178 and resized to 64x64 (or `size`)."""
    if split not in (*CELEBA_SPLITS, "all"):
        raise DatasetError(f"celeba: unknown split {split!r}; expected one of "
                           f"{[*CELEBA_SPLITS, 'all']}")
    size = size or 64
    kind, path = _celeba_sources(root)
    zf = None
    if kind == "folder":
        sources = [f for f in images_under(path) if _in_split(f.name, split)]
        stamp = fingerprint(sources) if sources else []
    else:
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as e:
            raise DatasetError(f"{path}: not a readable zip archive ({e})") from None
        for member in zf.namelist():
            safe_member_name(path, member)
        sources = sorted(n for n in zf.namelist() if is_image_name(n) and _in_split(n, split))
        stamp = [path.stat().st_size, path.stat().st_mtime_ns]
    try:
        return _decode_celeba(path, sources, split, size, stamp, zf)
    finally:
        if zf is not None:
            zf.close()


def _decode_celeba(path, sources, split, size, stamp, zf) -> ImageDataset:
    if not sources:
        raise DatasetError(f"{path}: no CelebA images of split {split!r} found (file names "
                           "are expected to be numbers, e.g. 000001.jpg)")
    key = {"source": str(path.resolve()), "size": size, "split": split, "files": stamp}
    hit = cache_lookup("celeba", key)
    if hit is not None:
        return ImageDataset("celeba", hit[0], None, [], split, source=str(path))
    read = zf.read if zf is not None else None
    images, _ = decode_checked(path, sources, gray=False, size=size, read=read)
    cache_store("celeba", key, images, None, {"classes": [], "source": str(path)})
    return ImageDataset("celeba", images, None, [], split, source=str(path))


def load_flowers(split: str = "train", root=None, size: int | None = None) -> ImageDataset:
    """Linnaeus 5 (berry, bird, dog, flower, other) at 64x64 (or `size`)."""
    if split not in ("train", "test"):
        raise DatasetError(f"flowers: unknown split {split!r}; expected 'train' or 'test'")
    for d in search_dirs("flowers", root):
        for folder in LINNAEUS_FOLDERS:
            if (d / folder).is_dir():
                if not (d / folder / split).is_dir():
                    raise DatasetError(f"{d / folder}: no {split}/ sub-folder (Linnaeus 5 "
                                       "has train/ and test/)")
                data = load_folder(d / folder, split, size=size or 64, name="flowers")
                if data.classes != LINNAEUS_CLASSES:
                    raise DatasetError(f"{d / folder / split}: expected class folders "
                                       f"{LINNAEUS_CLASSES}, found {data.classes}")
                return data
    target = download_dir("flowers", root)
    searched = ", ".join(str(d) for d in search_dirs("flowers", root))
    raise DatasetNotFoundError(
        f"flowers: Linnaeus 5 cannot be downloaded by a script (it is a RAR archive). Get "
        f"'Linnaeus 5 64X64.rar' from {LINNAEUS_URL}, extract it and put the folder at "
        f"{target / LINNAEUS_FOLDERS[0]}/ (with train/ and test/ inside) "
        f"(searched: {searched})")
