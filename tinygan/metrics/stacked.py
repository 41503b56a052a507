"""Stacked MNIST's modes: which of the 1,000 stacks of three digits a GAN's samples show.

The mode-collapse benchmark of Metz et al. 2017 ("Unrolled GANs", section 3.3.2), also used
by VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018): each image stacks three
random digits d0, d1, d2 into (3, 28, 28), and its mode is 100 d0 + 10 d1 + d2 (the data:
tinygan.data.stacked). A GAN's samples are counted by labelling each channel with a
pretrained MNIST classifier (here the tinygan LeNet, features.py) over 26,000 samples (as in
VEEGAN and PacGAN), then reporting the modes covered (of 1,000) and
KL(mode histogram || uniform).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .coverage import stacked_modes
from .features import BATCH_SIZE, FeatureNetwork, feature_network

STACKED_SAMPLES = 26_000


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
    return stacked_mnist_modes(gan.samples(n_samples, seed, batch_size=BATCH_SIZE))
