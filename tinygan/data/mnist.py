"""MNIST, Fashion-MNIST and the bundled 10,000-digit MNIST sample, all in IDX format.

Full MNIST is looked for in the usual places (see paths.py) and otherwise downloaded. When
it is neither there nor downloadable, `mnist` falls back to the bundled sample
datasets/mnist-10k and says so in one line on stderr (once per process); the sample's split is the same as
`mnist-10k`'s: train = its first 9,000 digits, test = its last 1,000, all = the 10,000.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .dataset import DatasetError, DatasetNotFoundError, ImageDataset
from .download import DownloadError, download, file_digest
from .idx import read_idx
from .paths import BUNDLED_DIR, download_dir, search_dirs, user_dirs

# Mirrors, tried in order; module constants so tests (and users) can point them elsewhere.
MNIST_MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/"]
FASHION_MNIST_MIRRORS = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]

FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}

MNIST_MD5 = {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
             "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
             "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
             "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}
FASHION_MNIST_MD5 = {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                     "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
                     "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
                     "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"}

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot"]

# The bundled sample: 10,000 real MNIST training digits (see datasets/mnist-10k/README.md).
SAMPLE_SHA256 = {
    "train-images-idx3-ubyte.gz":
        "6b1fc36085b15f8cdaf22f985033094cc5f88517ac5d2c4b698a6c8d7e5bbed0",
    "train-labels-idx1-ubyte.gz":
        "d45e80c462cbceda571fa074a3599d3b982377471016ad2050169b91cea08e82",
}
SAMPLE_TEST_SIZE = 1000


def read_idx_pair(images_path: Path, labels_path: Path,
                  num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 1, H, W) uint8 and labels (N,) int64 from two IDX files, cross-checked."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(f"{images_path}: expected uint8 images of shape (N, H, W), got "
                           f"{images.dtype} {images.shape}")
    if labels.ndim != 1:
        raise DatasetError(f"{labels_path}: expected labels of shape (N,), got {labels.shape}")
    if len(images) != len(labels):
        raise DatasetError(f"{images_path} and {labels_path}: image and label counts "
                           f"disagree ({len(images)} images, {len(labels)} labels)")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(f"{labels_path}: labels out of range 0..{num_classes - 1} "
                           f"(found {labels.min()}..{labels.max()})")
    return images[:, None], labels.astype(np.int64)


def _find(folder: str, names: tuple[str, ...], root) -> list[Path] | None:
    """The first search folder holding all `names` (gzipped, or unzipped without .gz)."""
    for d in search_dirs(folder, root):
        found = []
        for name in names:
            for candidate in (d / name, d / name.removesuffix(".gz")):
                if candidate.is_file():
                    found.append(candidate)
                    break
        if len(found) == len(names):
            return found
    return None


def _check_split(name: str, split: str, allowed=("train", "test")) -> None:
    if split not in allowed:
        raise DatasetError(f"{name}: unknown split {split!r}; expected one of {list(allowed)}")


def _load_idx_dataset(name, folder, split, root, download_ok, mirrors, md5s, classes):
    _check_split(name, split)
    names = FILES[split]
    paths = _find(folder, names, root)
    if paths is None:
        searched = ", ".join(str(d) for d in search_dirs(folder, root))
        if not download_ok:
            raise DatasetNotFoundError(f"{name}: {' and '.join(names)} not found (searched "
                                       f"{searched}) and download=False")
        target = download_dir(folder, root)
        paths = []
        for file in names:
            dest = target / file
            if not dest.is_file():
                download([m + file for m in mirrors], dest, md5s[file])
            paths.append(dest)
    images, labels = read_idx_pair(*paths, num_classes=len(classes))
    return ImageDataset(name, images, labels, classes, split, source=str(paths[0].parent))


def load_sample(split: str = "train", root=None, name: str = "mnist-10k") -> ImageDataset:
    """The bundled 10,000 MNIST digits: train = first 9,000, test = last 1,000, or all."""
    _check_split(name, split, ("train", "test", "all"))
    dirs = [d / "mnist-10k" for d in user_dirs(root)] + [BUNDLED_DIR / "mnist-10k"]
    names = FILES["train"]
    for d in dirs:
        if all((d / n).is_file() for n in names):
            break
    else:
        raise DatasetError(f"mnist-10k: the bundled sample was not found in any of "
                           f"{', '.join(map(str, dirs))}")
    for n in names:  # 1.6 MB: cheap enough to verify on every load
        got = file_digest(d / n, "sha256")
        if got != SAMPLE_SHA256[n]:
            raise DatasetError(f"{d / n}: SHA-256 checksum mismatch: expected "
                               f"{SAMPLE_SHA256[n]}, got {got}")
    images, labels = read_idx_pair(d / names[0], d / names[1])
    cut = len(images) - SAMPLE_TEST_SIZE
    part = {"train": slice(0, cut), "test": slice(cut, None), "all": slice(None)}[split]
    return ImageDataset(name, images[part], labels[part], MNIST_CLASSES, split, source=str(d))


_NOTES_GIVEN: set = set()


def _note_once(line: str) -> None:
    """Print a notice on stderr, one line, the first time it applies in this process (a
    Python warning would echo its source line after it)."""
    if line not in _NOTES_GIVEN:
        _NOTES_GIVEN.add(line)
        print(line, file=sys.stderr, flush=True)


def load_mnist(split: str = "train", root=None, download: bool = True) -> ImageDataset:
    """MNIST (60,000 train / 10,000 test); falls back to the bundled sample when offline."""
    try:
        return _load_idx_dataset("mnist", "mnist", split, root, download, MNIST_MIRRORS,
                                 MNIST_MD5, MNIST_CLASSES)
    except DownloadError as e:
        reason = f"could not be downloaded ({str(e).split(': ')[-1]})"  # the last mirror's cause
    except DatasetNotFoundError:
        # Only absence falls back: a corrupt file is an error to fix, not to paper over.
        reason = "is not present and download=False"
    _note_once(f"note: full MNIST {reason}; using the 10,000 digits bundled in "
               "datasets/mnist-10k (train: the first 9,000, test: the last 1,000)")
    return load_sample(split, root)


def load_fashion_mnist(split: str = "train", root=None, download: bool = True) -> ImageDataset:
    """Fashion-MNIST (60,000 train / 10,000 test), e.g. from Debian's dataset-fashion-mnist."""
    try:
        return _load_idx_dataset("fashion-mnist", "fashion-mnist", split, root, download,
                                 FASHION_MNIST_MIRRORS, FASHION_MNIST_MD5, FASHION_MNIST_CLASSES)
    except (DatasetNotFoundError, DownloadError) as e:
        raise type(e)(f"{e}. On Debian/Ubuntu: apt-get install dataset-fashion-mnist") \
            from None
