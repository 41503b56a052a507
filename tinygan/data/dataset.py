"""What every image dataset looks like once loaded: uint8 NCHW images and int64 labels.

A dataset is plain NumPy in host memory; the DataLoader moves batches to a device. Keeping
images as uint8 (a quarter of float32's size) lets the whole of MNIST or CIFAR-10 sit in
memory and makes a batch a single gather.
"""
from __future__ import annotations

import numpy as np


class DatasetError(ValueError):
    """A data file or folder failed a check; the message names the file and the check."""


class ImageDataset:
    """Images (N, C, H, W) uint8 with optional labels (N,) int64 and their class names."""

    def __init__(self, name: str, images: np.ndarray, labels: np.ndarray | None = None,
                 classes: list[str] | None = None, split: str = "train", source: str = ""):
        if images.dtype != np.uint8 or images.ndim != 4:
            raise DatasetError(f"{name}: images must be uint8 (N, C, H, W), "
                               f"got {images.dtype} {images.shape}")
        if labels is not None:
            labels = np.asarray(labels, dtype=np.int64)
            if labels.shape != (len(images),):
                raise DatasetError(f"{name}: {len(images)} images but labels of shape "
                                   f"{labels.shape}")
        self.name = name
        self.images = images
        self.labels = labels
        self.classes = list(classes or [])
        self.split = split
        self.source = source  # where it was read from, for messages and reports

    @property
    def num_classes(self) -> int:
        """How many classes (0 for an unlabelled dataset)."""
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        """(image uint8 (C, H, W), label or None) — for looking, not for batching."""
        return self.images[i], (None if self.labels is None else self.labels[i])

    def __repr__(self) -> str:
        return (f"ImageDataset({self.name!r}, split={self.split!r}, n={len(self)}, "
                f"image_shape={self.image_shape}, num_classes={self.num_classes}, "
                f"source={self.source!r})")


class DatasetNotFoundError(DatasetError):
    """A dataset's files are nowhere to be found (and were not, or cannot be, downloaded)."""
