"""Stacked MNIST: three MNIST digits as the three colour channels, 1,000 modes.

The mode-collapse benchmark of Metz et al. 2017 ("Unrolled GANs", sec. 3.3.2), used by
VEEGAN and PacGAN too. `load("stacked-mnist")` (registry.py) stacks MNIST's digits with
`stack_digits`; the mode count is in tinygan.metrics.stacked.
"""
from __future__ import annotations

import numpy as np

from .dataset import DatasetError, ImageDataset

SIZES = {"train": 60_000, "test": 10_000}


def stack_digits(digits: ImageDataset, n: int | None = None, seed: int = 0) -> ImageDataset:
    """An ImageDataset of n uint8 (3, 28, 28) images; labels 100 d0 + 10 d1 + d2.

    Each channel is a digit drawn uniformly (with replacement) from `digits`, a labelled
    1-channel train or test split (full MNIST, or the bundled 10k sample), so the 1,000
    modes are equally likely. n defaults to 60,000 for train and 10,000 for test. Seeded:
    the same call gives the same images.
    """
    split = digits.split
    if split not in SIZES:
        raise DatasetError(f"stacked-mnist: unknown split {split!r}; expected one of "
                           f"{list(SIZES)}")
    if digits.labels is None or digits.image_shape[0] != 1:
        raise DatasetError(f"stacked-mnist: {digits.name} must be labelled 1-channel digits, "
                           f"got {digits!r}")
    n = SIZES[split] if n is None else int(n)
    # Different seeds per split so that train and test never share a stack by construction.
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    picks = rng.integers(0, len(digits), size=(n, 3))
    images = np.ascontiguousarray(digits.images[picks, 0])           # (n, 3, 28, 28)
    d = digits.labels[picks]
    labels = 100 * d[:, 0] + 10 * d[:, 1] + d[:, 2]
    return ImageDataset("stacked-mnist", images, labels, [f"{k:03d}" for k in range(1000)],
                        split, source=f"{digits.name} ({digits.source}), seed {seed}")
