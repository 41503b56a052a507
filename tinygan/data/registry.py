"""`load(name)`: every dataset by name, in one table."""
from __future__ import annotations

from .cifar import load_cifar10
from .dataset import DatasetError, ImageDataset
from .folders import load_folder
from .mixtures import NOTIONAL_EPOCH_SIZE, GaussianMixture2D, grid25, ring8
from .mnist import load_fashion_mnist, load_mnist, load_sample
from .photos import load_celeba, load_flowers
from .stacked import stack_digits

# name -> (loader(split, root, download, size, epoch_size), one-line description)
DATASETS = {
    "mnist": (lambda s, r, d, size, e: load_mnist(s, r, d),
              "MNIST digits, 28x28 gray, 60k/10k (downloaded; falls back to mnist-10k)"),
    "fashion-mnist": (lambda s, r, d, size, e: load_fashion_mnist(s, r, d),
                      "Fashion-MNIST, 28x28 gray, 60k/10k"),
    "cifar10": (lambda s, r, d, size, e: load_cifar10(s, r, d),
                "CIFAR-10, 32x32 colour, 50k/10k, 10 classes"),
    "celeba": (lambda s, r, d, size, e: load_celeba(s, r, size),
               "CelebA aligned faces, centre crop resized to 64x64 (local copy)"),
    "flowers": (lambda s, r, d, size, e: load_flowers(s, r, size),
                "Linnaeus 5, 64x64 colour, 5 classes (local copy)"),
    "mnist-10k": (lambda s, r, d, size, e: load_sample(s, r),
                  "the bundled 10,000 MNIST digits: train 9,000 / test 1,000"),
    "ring8": (lambda s, r, d, size, e: ring8(s, e),
              "8 Gaussians on a circle of radius 2, std 0.02"),
    "grid25": (lambda s, r, d, size, e: grid25(s, e),
               "25 Gaussians on the grid {-4,-2,0,2,4}^2, std 0.05"),
    "stacked-mnist": (lambda s, r, d, size, e: stacked_mnist(s, root=r, download=d),
                      "Stacked MNIST: three digits as RGB channels, 1,000 modes, 60k/10k"),
}
NAMES = [*DATASETS, "folder:PATH"]


def load(name: str, split: str = "train", root=None, download: bool = True,
         size: int | None = None, epoch_size: int = NOTIONAL_EPOCH_SIZE
         ) -> ImageDataset | GaussianMixture2D:
    """A dataset by name: one of NAMES, or "folder:PATH" for any folder of images.

    root: a folder searched first (then $TINYGAN_DATA, the cache, system copies).
    size: the image side for celeba, flowers and folder: datasets.
    epoch_size: the notional number of points per epoch of ring8 and grid25.
    """
    if name.startswith("folder:"):
        path = name[len("folder:"):]
        if not path:
            raise DatasetError("folder: needs a path, e.g. folder:~/pictures/cats")
        return load_folder(path, split, size=size, name=name)
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; valid names: {', '.join(NAMES)}")
    return DATASETS[name][0](split, root, download, size, epoch_size)


def stacked_mnist(split: str = "train", n: int | None = None, seed: int = 0, root=None,
                  source: str = "mnist", download: bool = True) -> ImageDataset:
    """Stacked MNIST (stacked.py): n seeded stacks of three digits of `source`'s split."""
    return stack_digits(load(source, split, root=root, download=download), n, seed)
