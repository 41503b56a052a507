"""Stacked MNIST: three MNIST digits as the three colour channels, 1,000 modes.

The mode-collapse benchmark of Metz et al. 2017 ("Unrolled GANs", section 3.3.2), also used
by VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018): each image stacks three
random digits d0, d1, d2 into (3, 28, 28), and its mode is 100 d0 + 10 d1 + d2. A GAN's
samples are counted by labelling each channel with a pretrained MNIST classifier (here the
tinygan LeNet, features.py) over 26,000 samples (as in VEEGAN and PacGAN), then reporting
the modes covered (of 1,000) and KL(mode histogram || uniform).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .coverage import stacked_modes
from .features import FeatureNetwork, feature_network

STACKED_SAMPLES = 26_000
SIZES = {"train": 60_000, "test": 10_000}


def stacked_mnist(split: str = "train", n: int | None = None, seed: int = 0, root=None,
                  source: str = "mnist"):
    """An ImageDataset of n uint8 (3, 28, 28) images; labels 100 d0 + 10 d1 + d2.

    Each channel is a digit drawn uniformly (with replacement) from `source`'s split (full
    MNIST, or the bundled 10k sample when MNIST is absent), so the 1,000 modes are equally
    likely. n defaults to 60,000 for train and 10,000 for test. Seeded: the same call gives
    the same images.
    """
    from ..data import load
    from ..data.dataset import DatasetError, ImageDataset
    if split not in SIZES:
        raise DatasetError(f"stacked-mnist: unknown split {split!r}; expected one of "
                           f"{list(SIZES)}")
    digits = load(source, split, root=root)
    if digits.labels is None or digits.image_shape[0] != 1:
        raise DatasetError(f"stacked-mnist: {source} must be labelled 1-channel digits, got "
                           f"{digits!r}")
    n = SIZES[split] if n is None else int(n)
    # Different seeds per split so that train and test never share a stack by construction.
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    picks = rng.integers(0, len(digits), size=(n, 3))
    images = np.ascontiguousarray(digits.images[picks, 0])           # (n, 3, 28, 28)
    d = digits.labels[picks]
    labels = 100 * d[:, 0] + 10 * d[:, 1] + d[:, 2]
    return ImageDataset("stacked-mnist", images, labels, [f"{k:03d}" for k in range(1000)],
                        split, source=f"{digits.name} ({digits.source}), seed {seed}")


def predict_digits(images, network: FeatureNetwork | None = None) -> np.ndarray:
    """(N, 3) int64: the MNIST classifier's digit for each channel of (N, 3, 28, 28) images
    (float32 in [-1, 1] or uint8)."""
    images = np.asarray(images) if not hasattr(images, "get") else images.get()
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"predict_digits: expected (N, 3, H, W) images, got {images.shape}")
    network = network or feature_network("mnist-10k")
    return np.stack([network.predict(np.ascontiguousarray(images[:, c:c + 1]))
                     for c in range(3)], axis=1)


def stacked_mnist_modes(images, network: FeatureNetwork | None = None) -> "OrderedDict":
    """modes_covered (of 1,000) and stacked_kl = KL(mode histogram || uniform), as floats."""
    result = stacked_modes(predict_digits(images, network))
    return OrderedDict(modes_covered=float(result["modes_covered"]),
                       stacked_kl=float(result["kl_to_uniform"]))


def evaluate_stacked(gan, n_samples: int = STACKED_SAMPLES, seed: int = 0) -> "OrderedDict":
    """A GAN trained on Stacked MNIST, scored on n_samples (26,000) of its samples."""
    from .evaluate import generate
    return stacked_mnist_modes(generate(gan, n_samples, seed=seed))
