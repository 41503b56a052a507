"""The 2D Gaussian mixtures of the mode-collapse literature: ring8 and grid25.

ring8: 8 modes on a circle of radius 2 at angles 2*pi*k/8, k = 0..7, std 0.02.
grid25: 25 modes at {-4, -2, 0, 2, 4}^2, std 0.05.
(The protocol of VEEGAN, Srivastava et al. 2017, and PacGAN, Lin et al. 2018.) Each point
comes from a mode picked uniformly; its label is that mode's index, so metrics can count
which modes a generator covers using `.centers` and `.std`.

The data is infinite, so an epoch is notional: `epoch_size` points (6,400 by default, 100
batches of 64), drawn afresh every epoch.
"""
from __future__ import annotations

import numpy as np

NOTIONAL_EPOCH_SIZE = 6400  # points per "epoch": 100 batches of 64


class GaussianMixture2D:
    """Isotropic Gaussians of one std around given centres, mixed with equal weights."""

    def __init__(self, name: str, centers: np.ndarray, std: float, split: str = "train",
                 epoch_size: int = NOTIONAL_EPOCH_SIZE):
        self.name = name
        self.centers = np.asarray(centers, dtype=np.float64)
        self.std = float(std)
        self.split = split
        self.epoch_size = int(epoch_size)
        self.classes = [f"mode {k}" for k in range(len(self.centers))]
        self.images = None  # no stored data: see sample()
        self.labels = None
        self.image_shape = (2,)  # the shape of one sample, a point in the plane

    @property
    def num_classes(self) -> int:
        """The number of modes."""
        return len(self.centers)

    def __len__(self) -> int:
        return self.epoch_size

    def sample(self, n: int, rng: np.random.Generator | int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """n points float32 (n, 2) and the index int64 (n,) of the mode each came from."""
        rng = np.random.default_rng(rng)
        modes = rng.integers(0, len(self.centers), size=n)
        points = self.centers[modes] + self.std * rng.standard_normal((n, 2))
        return points.astype(np.float32), modes.astype(np.int64)

    def __repr__(self) -> str:
        return f"GaussianMixture2D({self.name!r}, modes={self.num_classes}, std={self.std})"


def ring_centers(modes: int = 8, radius: float = 2.0) -> np.ndarray:
    """Centres at angles 2*pi*k/modes for k = 0..modes-1.

    Not np.linspace(0, 2*pi, modes): that includes 2*pi, which is angle 0 again, so one mode
    is counted twice and only modes-1 distinct ones remain.
    """
    angles = 2 * np.pi * np.arange(modes) / modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def grid_centers(values=(-4, -2, 0, 2, 4)) -> np.ndarray:
    """Centres at every (x, y) with x and y in `values` (row-major: x outer, y inner)."""
    xs, ys = np.meshgrid(values, values, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)


def ring8(split: str = "train", epoch_size: int = NOTIONAL_EPOCH_SIZE) -> GaussianMixture2D:
    """8 Gaussians on a circle of radius 2, std 0.02."""
    return GaussianMixture2D("ring8", ring_centers(8, 2.0), 0.02, split, epoch_size)


def grid25(split: str = "train", epoch_size: int = NOTIONAL_EPOCH_SIZE) -> GaussianMixture2D:
    """25 Gaussians on the grid {-4, -2, 0, 2, 4}^2, std 0.05."""
    return GaussianMixture2D("grid25", grid_centers(), 0.05, split, epoch_size)
