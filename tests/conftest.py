"""Shared test setup: a fixed seed for every test, the GPU skip marker, and no PyTorch.

PyTorch is a reference for benchmarks and comparison scripts, never part of the default
test run: unless TINYGAN_TORCH_TESTS=1, `import torch` fails inside the tests, so every
optional comparison (`pytest.importorskip("torch", exc_type=ImportError)`) is skipped with that reason.
"""
import importlib.abc
import os
import sys

# Tests check correctness on small arrays, where BLAS threads only add overhead, and on a
# busy machine oversubscribed threads make NumPy many times slower. Set before NumPy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pytest

import tinygan
from tinygan import backend

# GPU tests say why they are skipped; they never fail for want of a GPU.
requires_gpu = pytest.mark.skipif(not backend.cuda_is_available(),
                                  reason=f"needs CuPy and a CUDA GPU: "
                                         f"{backend.cuda_unavailable_reason()}")


class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("PyTorch comparisons are opt-in: set TINYGAN_TORCH_TESTS=1")
        return None


if os.environ.get("TINYGAN_TORCH_TESTS") != "1":
    sys.meta_path.insert(0, _NoTorch())
    for _name in [m for m in sys.modules if m == "torch" or m.startswith("torch.")]:
        del sys.modules[_name]


@pytest.fixture(autouse=True)
def _seed():
    tinygan.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(autouse=True)
def _environments_thread_count():
    """Each test starts on the environment's thread count: a run in an earlier test (its
    --threads, or a tuner) may have set another."""
    tinygan.set_num_threads(None)


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    """A private HOME and cache (with an empty tinygan cache folder), no $TINYGAN_DATA and
    no system copies: data tests never see, or touch, the user's files."""
    from tinygan.data import paths
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("TINYGAN_DATA", raising=False)
    monkeypatch.setattr(paths, "SYSTEM_DIRS", {})
    (tmp_path / "xdg" / "tinygan").mkdir(parents=True)
    return tmp_path
