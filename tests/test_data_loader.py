"""DataLoader: shapes, dtypes, range, labels, seeds, drop_last, and bit-identical resume."""
import json

import numpy as np
import pytest

from tinygan import backend
from tinygan._tensor import Tensor
from tinygan.data import (DataLoader, ImageDataset, load, loader_benchmark, to_signed_unit,
                          to_uint8)


def small(n=10, labelled=True):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 1, 4, 4), dtype=np.uint8)
    images[0, 0, 0, 0], images[0, 0, 0, 1] = 0, 255
    labels = np.arange(n) % 3 if labelled else None
    return ImageDataset("small", images, labels, ["a", "b", "c"] if labelled else [])


def batches(loader):
    return [(x.numpy(), None if y is None else y.numpy()) for x, y in loader]


def test_to_signed_unit_and_back():
    x = np.arange(256, dtype=np.uint8)
    y = to_signed_unit(x)
    assert y.dtype == np.float32 and y[0] == -1 and y[255] == 1
    np.testing.assert_array_equal(y, x.astype(np.float32) / 127.5 - 1)
    np.testing.assert_array_equal(to_uint8(y), x)
    np.testing.assert_array_equal(to_uint8(np.array([-3.0, 3.0, 0.0])), [0, 255, 128])
    with pytest.raises(TypeError):
        to_signed_unit(np.zeros(3, np.float32))


def test_batches_shapes_dtypes_range_and_alignment():
    data = load("mnist-10k", "test")
    loader = DataLoader(data, batch_size=64, seed=0)
    assert len(loader) == 1000 // 64
    seen = []
    for x, y in loader:
        assert x.shape == (64, 1, 28, 28) and x.dtype == np.float32
        assert y.shape == (64,) and y.dtype == np.int64
        assert x.numpy().min() >= -1 and x.numpy().max() <= 1
        seen.append((x.numpy(), y.numpy()))
    # every batch is some images of the dataset, with their own labels
    index = {data.images[i].tobytes(): i for i in range(len(data))}
    for x, y in seen:
        rows = [index[to_uint8(img).tobytes()] for img in x]
        np.testing.assert_array_equal(y, data.labels[rows])
    assert len({r for x, _ in seen for r in map(lambda i: index[to_uint8(i).tobytes()], x)}) \
        == 15 * 64  # no image twice in an epoch


def test_unshuffled_order_and_drop_last():
    data = small(10)
    out = batches(DataLoader(data, batch_size=4, shuffle=False, drop_last=False))
    assert [len(x) for x, _ in out] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([x for x, _ in out]), to_signed_unit(data.images))
    np.testing.assert_array_equal(np.concatenate([y for _, y in out]), data.labels)
    assert len(DataLoader(data, batch_size=4, drop_last=True)) == 2
    assert len(DataLoader(data, batch_size=4, drop_last=False)) == 3
    assert [len(x) for x, _ in batches(DataLoader(data, batch_size=4))] == [4, 4]
    with pytest.raises(ValueError, match="make no batch"):
        DataLoader(data, batch_size=11)


def test_unlabelled_yields_none():
    x, y = next(iter(DataLoader(small(labelled=False), batch_size=2)))
    assert y is None and x.shape == (2, 1, 4, 4)


def test_shuffle_reproducible_by_seed_and_different_epochs():
    data = small(10)
    a = batches(DataLoader(data, batch_size=2, seed=5))
    b = batches(DataLoader(data, batch_size=2, seed=5))
    c = batches(DataLoader(data, batch_size=2, seed=6))
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert any(not np.array_equal(ya, yc) for (_, ya), (_, yc) in zip(a, c))
    loader = DataLoader(data, batch_size=2, seed=5)
    first, second = batches(loader), batches(loader)
    assert loader.epoch == 2
    assert any(not np.array_equal(y1, y2) for (_, y1), (_, y2) in zip(first, second))


@pytest.mark.parametrize("name", ["images", "ring8"])
def test_resume_mid_epoch_is_bit_identical(name):
    data = small(50) if name == "images" else load("ring8", epoch_size=50)
    reference = DataLoader(data, batch_size=4, seed=1)
    expected = batches(reference) + batches(reference) + batches(reference)  # 3 epochs

    run = DataLoader(data, batch_size=4, seed=1)
    got = batches(run)
    it = iter(run)
    got += [tuple(t.numpy() for t in next(it)) for _ in range(5)]  # 5 batches into epoch 2
    state = json.loads(json.dumps(run.state_dict()))  # survives a JSON checkpoint
    assert state["epoch"] == 1 and state["position"] == 5

    resumed = DataLoader(data, batch_size=4, seed=999)  # the state carries the seed
    resumed.load_state_dict(state)
    got += batches(resumed) + batches(resumed)
    assert len(got) == len(expected)
    for (xg, yg), (xe, ye) in zip(got, expected):
        np.testing.assert_array_equal(xg, xe)
        np.testing.assert_array_equal(yg, ye)


def test_resume_at_epoch_boundary_and_break():
    data = small(12)
    ref = DataLoader(data, batch_size=3, seed=2)
    expected = batches(ref) + batches(ref)
    run = DataLoader(data, batch_size=3, seed=2)
    got = []
    for x, y in run:  # break out early: the next loop continues the same epoch
        got.append((x.numpy(), y.numpy()))
        if len(got) == 2:
            break
    got += batches(run)
    state = run.state_dict()
    other = DataLoader(data, batch_size=3)
    other.load_state_dict(state)
    got += batches(other)
    for (xg, yg), (xe, ye) in zip(got, expected, strict=True):
        np.testing.assert_array_equal(xg, xe)
        np.testing.assert_array_equal(yg, ye)


def test_state_for_another_dataset_is_refused():
    state = DataLoader(small(10), batch_size=2, seed=0).state_dict()
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(small(12), batch_size=2).load_state_dict(state)


def test_mixture_batches_are_points_with_modes():
    ring = load("ring8")
    loader = DataLoader(ring, batch_size=64, seed=0)
    assert len(loader) == 100  # the notional epoch: 6,400 points
    x, y = next(iter(loader))
    assert x.shape == (64, 2) and x.dtype == np.float32 and y.dtype == np.int64
    dist = np.linalg.norm(x.numpy() - ring.centers[y.numpy()], axis=1)
    assert dist.max() < 0.2  # unscaled, and each point beside its own mode's centre


def test_device_is_cpu_by_default():
    x, y = next(iter(DataLoader(small(), batch_size=2, device="cpu")))
    assert x.device == "cpu" and y.device == "cpu"


def _cuda_reason():
    return backend.cuda_unavailable_reason() if not backend.cuda_is_available() else ""


@pytest.mark.gpu
@pytest.mark.skipif(bool(_cuda_reason()), reason=f"no CUDA: {_cuda_reason()}")
def test_cuda_batches_equal_cpu_batches():
    data = small(12)
    cpu = batches(DataLoader(data, batch_size=4, seed=3, device="cpu"))
    gpu_loader = DataLoader(data, batch_size=4, seed=3, device="cuda")
    x, y = next(iter(gpu_loader))
    assert x.device == "cuda" and y.device == "cuda"
    gpu = [(x.numpy(), y.numpy())] + batches(gpu_loader)
    for (xc, yc), (xg, yg) in zip(cpu, gpu, strict=True):
        np.testing.assert_array_equal(xc, xg)
        np.testing.assert_array_equal(yc, yg)


def test_to_uint8_takes_a_tensor():
    x = to_signed_unit(small().images)
    np.testing.assert_array_equal(to_uint8(Tensor(x)), small().images)


def test_loader_benchmark_runs():
    ms = loader_benchmark("mnist-10k", batch_size=64, batches=20)
    assert ms > 0  # a number to report, not a timing to assert


# ------------------------------------------------- data parallelism: a rank's share


@pytest.mark.parametrize("name", ["images", "ring8"])
@pytest.mark.parametrize("world", [2, 3])
def test_ranks_shares_are_the_one_process_batches_without_overlap(name, world):
    data = small(50, labelled=True) if name == "images" else load("ring8", epoch_size=48)
    whole = DataLoader(data, batch_size=6, seed=3)
    expected = batches(whole) + batches(whole)  # two epochs
    ranks = [DataLoader(data, batch_size=6, seed=3, rank=r, world_size=world)
             for r in range(world)]
    shares = [batches(loader) + batches(loader) for loader in ranks]
    assert all(len(s) == len(expected) == 2 * len(whole) for s in shares)
    for i, (x, y) in enumerate(expected):
        got_x = np.concatenate([s[i][0] for s in shares])
        got_y = np.concatenate([s[i][1] for s in shares])
        assert all(s[i][0].shape[0] == 6 // world for s in shares)
        np.testing.assert_array_equal(got_x, x)  # rank r: rows [r B/N, (r + 1) B/N)
        np.testing.assert_array_equal(got_y, y)
    if name == "images":  # no image twice in an epoch, whichever rank reads it
        seen = np.concatenate([np.concatenate([b[0] for b in s[:len(whole)]]) for s in shares])
        assert len(np.unique(seen.reshape(len(seen), -1), axis=0)) == len(seen)
    states = [loader.state_dict() for loader in ranks]
    assert all(json.dumps(s) == json.dumps(whole.state_dict()) for s in states)


def test_a_rank_resumes_its_share_mid_epoch():
    data = small(40)
    reference = DataLoader(data, batch_size=4, seed=5, rank=1, world_size=2)
    expected = batches(reference) + batches(reference)
    run = DataLoader(data, batch_size=4, seed=5, rank=1, world_size=2)
    it = iter(run)
    got = [tuple(t.numpy() for t in next(it)) for _ in range(3)]
    resumed = DataLoader(data, batch_size=4, seed=0, rank=1, world_size=2)
    resumed.load_state_dict(json.loads(json.dumps(run.state_dict())))
    got += batches(resumed) + batches(resumed)
    for (xg, yg), (xe, ye) in zip(got, expected, strict=True):
        np.testing.assert_array_equal(xg, xe)
        np.testing.assert_array_equal(yg, ye)


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=6, world_size=4), "batch size 6 does not split into 4 equal shares"),
    (dict(batch_size=4, rank=2, world_size=2), "rank 2 is not a rank of a world of 2"),
    (dict(batch_size=4, world_size=2, drop_last=False), "the last batch, of 2, does not split"),
])
def test_shares_that_cannot_be_equal_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DataLoader(small(10), **kwargs)
