"""The layout logic of the GPU paths, checked on NumPy arrays (it runs here, GPU or not).

`sum_over` sums over axes as one (R1, K, R2) sum planned from the array's memory order
(on NumPy arrays the kernel's twin, a reshape and a sum, runs the same plan);
`in_memory_order` keeps a kernel's output laid out as its inputs. Both are plain array
code, so NumPy arrays in every memory order exercise every branch; on a GPU,
tests/test_kernels.py and tests/test_gpu_parity.py compare the CuPy results as well.
"""
import itertools

import numpy as np
import pytest

from tinygan import kernels
from tinygan.kernels.reduce import sum_axes, sum_over


def _in_every_memory_order(base):
    """base's values in every memory order (a C-contiguous array, transposed back)."""
    for perm in itertools.permutations(range(base.ndim)):
        yield np.ascontiguousarray(base.transpose(perm)).transpose(np.argsort(perm))


@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (1, 3, 5, 6), (4, 1, 5, 1), (7,), (3, 4),
                                   (2, 3, 4), (1, 1)])
def test_sum_over_matches_sum_in_every_layout_and_axes(shape):
    base = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for a in _in_every_memory_order(base):
        assert np.array_equal(a, base)
        for k in range(base.ndim + 1):
            for axes in itertools.combinations(range(base.ndim), k):
                for keepdims in (False, True):
                    want = base.astype(np.float64).sum(axis=axes, keepdims=keepdims)
                    for _ in range(2):  # the second time from the cached plan
                        got = sum_over(a, axes, keepdims)
                        assert got.shape == want.shape, (a.strides, axes, keepdims)
                        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_a_large_channels_last_float32_sum_is_blas_gemv_of_ones():
    # a bias gradient or BatchNorm's statistics of a channels-last activation
    last = np.random.default_rng(2).standard_normal((64, 16, 16, 32)).astype(np.float32)
    x = last.transpose(0, 3, 1, 2)  # (N, C, H, W) over channels-last memory
    got = sum_axes(x, (0, 2, 3), keepdims=True)
    assert got.shape == (1, 32, 1, 1) and got.dtype == np.float32
    assert np.array_equal(got.reshape(-1), np.ones(64 * 16 * 16, np.float32) @ last.reshape(-1, 32))
    np.testing.assert_allclose(got.reshape(-1), last.astype(np.float64).sum(axis=(0, 1, 2)),
                               rtol=1e-4, atol=1e-3)
    small = x[:2]  # under _GEMV_MIN floats: NumPy's own sum
    assert np.array_equal(sum_axes(small, (0, 2, 3)), small.sum(axis=(0, 2, 3)))


def test_sum_over_falls_back_on_arrays_that_are_not_dense():
    a = np.random.default_rng(1).standard_normal((4, 6, 5)).astype(np.float32)
    for view in (a[:, ::2], a[:, ::-1], np.broadcast_to(a[:1], (4, 6, 5))):
        np.testing.assert_allclose(sum_over(view, (0, 2)), view.sum(axis=(0, 2)), rtol=1e-5)
    ints = np.arange(24).reshape(2, 3, 4)
    assert np.array_equal(sum_over(ints, (0, 2)), ints.sum(axis=(0, 2)))


def _c_ordered(fn):
    """fn as CuPy runs it: the output always C-ordered, whatever the inputs' layout."""
    def run(*arrays):
        out = fn(*arrays)
        return tuple(map(np.ascontiguousarray, out)) if isinstance(out, tuple) else \
            np.ascontiguousarray(out)
    return run


def test_in_memory_order_keeps_the_inputs_layout(monkeypatch):
    monkeypatch.setattr(kernels, "enabled", lambda *arrays: True)  # as for CuPy arrays
    rng = np.random.default_rng(2)
    x = np.ascontiguousarray(rng.standard_normal((2, 4, 3, 5), dtype=np.float32)
                             .transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # channels-last
    per_channel = rng.standard_normal((1, 4, 1, 1), dtype=np.float32)
    bias = rng.standard_normal(5, dtype=np.float32)  # broadcast from the right
    out = kernels.in_memory_order(_c_ordered(lambda a, b, c: a * b + c), x, per_channel, bias)
    np.testing.assert_array_equal(out, x * per_channel + bias)
    assert out.transpose(0, 2, 3, 1).flags.c_contiguous  # channels-last, as x
    pair = kernels.in_memory_order(_c_ordered(lambda a, s: (a * s, a + s)), x,
                                   np.float32(2))
    np.testing.assert_array_equal(pair[0], x * 2)
    np.testing.assert_array_equal(pair[1], x + 2)
    assert all(p.transpose(0, 2, 3, 1).flags.c_contiguous for p in pair)
    c_ordered = np.ascontiguousarray(x)
    assert kernels.in_memory_order(_c_ordered(np.negative), c_ordered).flags.c_contiguous


def test_in_memory_order_leaves_numpy_alone():
    x = np.ones((2, 3, 4), np.float32).transpose(2, 0, 1)
    seen = []
    kernels.in_memory_order(lambda a: seen.append(a), x)
    assert seen[0] is x  # kernels are off for NumPy arrays: called as it is
