"""Shared test setup: a fixed seed for every test, and the skip marker for GPU tests."""
import numpy as np
import pytest

import tinygan
from tinygan import backend

# GPU tests say why they are skipped; they never fail for want of a GPU.
requires_gpu = pytest.mark.skipif(not backend.cuda_is_available(),
                                  reason=f"needs CuPy and a CUDA GPU: "
                                         f"{backend.cuda_unavailable_reason()}")


@pytest.fixture(autouse=True)
def _seed():
    tinygan.manual_seed(0)
    np.random.seed(0)
