"""CIFAR-10, binary version, read straight from cifar-10-binary.tar.gz without extracting.

Each .bin member holds records of 1 label byte followed by 3072 image bytes (3 x 32 x 32,
channel-major, so already CHW). https://www.cs.toronto.edu/~kriz/cifar.html
"""
from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from .dataset import DatasetError, DatasetNotFoundError, ImageDataset
from .download import download
from .paths import download_dir, safe_member_name, search_dirs

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
CIFAR10_FOLDER = "cifar-10-batches-bin"
CIFAR10_MEMBERS = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)],
                   "test": ["test_batch.bin"]}
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]
RECORD = 1 + 3 * 32 * 32


def parse_records(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 from CIFAR-10 binary records."""
    if len(data) == 0 or len(data) % RECORD:
        raise DatasetError(f"{where}: size {len(data)} is not a whole number of "
                           f"{RECORD}-byte records (1 label byte + 3072 image bytes)")
    records = np.frombuffer(data, np.uint8).reshape(-1, RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= 10:
        raise DatasetError(f"{where}: label byte {labels.max()} out of range 0..9")
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


def read_cifar10_tar(path: str | Path, split: str = "train"
                     ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images, labels, classes) of a split, read from the tar without extracting it."""
    path = Path(path)
    try:
        tar = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DatasetError(f"{path}: not a readable tar archive ({e})") from None
    with tar:
        try:
            members = {safe_member_name(path, m.name): m for m in tar.getmembers()}
        except (tarfile.TarError, OSError, EOFError) as e:  # truncated or corrupt gzip
            raise DatasetError(f"{path}: corrupt or truncated archive ({e})") from None

        def read(name: str) -> bytes:
            member = members.get(f"{CIFAR10_FOLDER}/{name}")
            if member is None or not member.isfile():
                raise DatasetError(f"{path}: missing member {CIFAR10_FOLDER}/{name}")
            try:
                return tar.extractfile(member).read()
            except (tarfile.TarError, OSError, EOFError) as e:
                raise DatasetError(f"{path}: cannot read member {member.name} ({e})") from None

        parts = [parse_records(read(n), f"{path}:{n}") for n in CIFAR10_MEMBERS[split]]
        classes = CIFAR10_CLASSES
        if f"{CIFAR10_FOLDER}/batches.meta.txt" in members:
            names = [s.strip() for s in read("batches.meta.txt").decode().splitlines()]
            names = [s for s in names if s]
            if len(names) != 10:
                raise DatasetError(f"{path}: batches.meta.txt lists {len(names)} class "
                                   "names, expected 10")
            classes = names
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return images, labels, classes


def load_cifar10(split: str = "train", root=None, download_ok: bool = True) -> ImageDataset:
    """CIFAR-10 (50,000 train / 10,000 test 32x32 colour images in 10 classes)."""
    if split not in CIFAR10_MEMBERS:
        raise DatasetError(f"cifar10: unknown split {split!r}; expected 'train' or 'test'")
    for d in search_dirs("cifar10", root):
        if (d / CIFAR10_ARCHIVE).is_file():
            path = d / CIFAR10_ARCHIVE
            break
    else:
        if not download_ok:
            searched = ", ".join(str(d) for d in search_dirs("cifar10", root))
            raise DatasetNotFoundError(f"cifar10: {CIFAR10_ARCHIVE} not found (searched "
                                       f"{searched}) and download=False")
        path = download([CIFAR10_URL], download_dir("cifar10", root) / CIFAR10_ARCHIVE,
                        CIFAR10_MD5)
    images, labels, classes = read_cifar10_tar(path, split)
    return ImageDataset("cifar10", images, labels, classes, split, source=str(path))
