"""The GPU's generator: Philox4x32-10 against its published known answers, its draws, its
two-number state, and manual_seed's hold on it (on NumPy arrays here; the GPU kernel
against the NumPy reference where there is a GPU)."""
import numpy as np
import pytest

from tinygan import backend
from tinygan.cuda.random import Philox, philox4x32

# Random123's known-answer vectors for philox4x32 with 10 rounds: counter, key -> output
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter,key,expected", KNOWN_ANSWERS)
def test_philox4x32_10_gives_the_published_answers(counter, key, expected):
    words = philox4x32([[w] for w in counter], key)
    assert [int(w[0]) for w in words] == list(expected)


def test_draws_have_their_distributions():
    rng = Philox(7, np)
    u32, u64 = rng.random(100_000), rng.random(100_000, dtype=np.float64)
    assert u32.dtype == np.float32 and u64.dtype == np.float64
    for u in (u32, u64):
        assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.005
    z = rng.standard_normal((300, 400), dtype=np.float32)
    assert z.shape == (300, 400) and z.dtype == np.float32
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert abs((z > 1.96).mean() - 0.025) < 0.002  # the tail, not only the moments
    k = rng.integers(3, 13, size=100_000)
    assert k.dtype == np.int64 and k.min() == 3 and k.max() == 12
    assert np.abs(np.bincount(k - 3) / len(k) - 0.1).max() < 0.005


def test_the_state_is_a_seed_and_an_offset_and_replays():
    rng = Philox(123, np)
    rng.random(10)
    state = rng.get_state()
    assert state == {"seed": 123, "offset": 10}
    a = rng.standard_normal(5)
    rng.set_state(state)
    np.testing.assert_array_equal(rng.standard_normal(5), a)
    # element i of a draw is counter offset + i: one draw of 8 = two draws of 4
    whole, parts = Philox(5, np), Philox(5, np)
    np.testing.assert_array_equal(whole.random(8), np.concatenate([parts.random(4),
                                                                   parts.random(4)]))
    assert not np.array_equal(Philox(6, np).random(8), Philox(5, np).random(8))


def test_manual_seed_seeds_the_gpu_generator_whenever_it_is_made(monkeypatch):
    monkeypatch.setattr(backend, "cupy_module", lambda: np)  # a GPU generator on NumPy
    backend.manual_seed(3)
    first = backend.generator("cuda").random(4)
    backend.manual_seed(3)  # after a generator was made: made again from the seed
    np.testing.assert_array_equal(backend.generator("cuda").random(4), first)
    state = backend.get_rng_state()  # what a checkpoint keeps: both generators
    assert state["cuda"] == {"seed": 3, "offset": 4}
    later = backend.generator("cuda").random(4), backend.generator("cpu").random(4)
    backend.manual_seed(0)
    backend.set_rng_state(state)
    np.testing.assert_array_equal(backend.generator("cuda").random(4), later[0])
    np.testing.assert_array_equal(backend.generator("cpu").random(4), later[1])
    backend.manual_seed(0)


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_is_available(), reason=backend.cuda_unavailable_reason()
                    or "no GPU")
def test_the_kernel_follows_the_numpy_reference():
    cp = backend.cupy_module()
    gpu, ref = Philox(11, cp), Philox(11, np)
    np.testing.assert_array_equal(gpu.random((64, 33)).get(), ref.random((64, 33)))
    np.testing.assert_array_equal(gpu.random(1000, dtype=np.float64).get(),
                                  ref.random(1000, dtype=np.float64))
    np.testing.assert_array_equal(gpu.integers(0, 10, 5000).get(), ref.integers(0, 10, 5000))
    np.testing.assert_allclose(gpu.standard_normal(5000).get(), ref.standard_normal(5000),
                               rtol=1e-12, atol=1e-12)  # CUDA's log/cos within an ulp or so
    assert gpu.get_state() == ref.get_state() == {"seed": 11, "offset": 64 * 33 + 11000}
