"""Datasets, downloads and cache, batching, and the 2D Gaussian mixtures.

    from tinygan.data import load, DataLoader
    data = load("mnist")                      # .images uint8 NCHW, .labels int64
    for images, labels in DataLoader(data, batch_size=64, seed=0):
        ...                                   # float32 in [-1, 1], int64

See datasets/README.md for every dataset's source, licence and checksums.
"""
from .dataset import DatasetError, DatasetNotFoundError, ImageDataset
from .download import DownloadError
from .folders import load_folder
from .idx import read_idx, write_idx
from .loader import DataLoader, loader_benchmark
from .mixtures import GaussianMixture2D, grid25, ring8
from .paths import cache_dir
from .registry import DATASETS, NAMES, load, stacked_mnist
from .transforms import to_signed_unit, to_uint8

__all__ = ["load", "DataLoader", "NAMES", "DATASETS", "ImageDataset", "GaussianMixture2D",
           "DatasetError", "DatasetNotFoundError", "DownloadError", "to_signed_unit",
           "to_uint8", "loader_benchmark", "read_idx", "write_idx", "load_folder", "ring8",
           "grid25", "stacked_mnist", "cache_dir"]
