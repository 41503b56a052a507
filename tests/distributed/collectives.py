"""Collectives on NumPy tensors over MPI: values on every rank (2 or more processes)."""
import numpy as np

import tinygan
import tinygan.distributed as dist
from harness import run_checks


def check_rank_and_size():
    assert dist.is_initialized() and dist.get_backend() == "mpi"
    assert dist.get_world_size() == dist.launcher_world_size() >= 2
    assert 0 <= dist.get_rank() < dist.get_world_size()


def check_all_reduce():
    n, r = dist.get_world_size(), dist.get_rank()
    base = np.arange(6.0).reshape(2, 3)
    for dtype in (np.float32, np.float64, np.int64):
        t = tinygan.tensor((base * (r + 1)).astype(dtype))
        dist.all_reduce(t)  # SUM by default
        assert t.dtype == dtype and np.array_equal(t.numpy(), base * n * (n + 1) / 2)
    t = tinygan.tensor(base * (r + 1))
    dist.all_reduce(t, dist.ReduceOp.AVG)
    assert np.array_equal(t.numpy(), base * (n + 1) / 2)
    t = tinygan.tensor(base * (r + 1) * (-1) ** r)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    assert np.array_equal(t.numpy(), base * (n - (n % 2 == 0)))  # the largest even rank, + 1
    a = (base * (r + 1)).T  # a transposed view: reduced through a dense copy, written back
    dist.all_reduce(a)
    assert np.array_equal(a, base.T * n * (n + 1) / 2)


def check_broadcast():
    n, r = dist.get_world_size(), dist.get_rank()
    t = tinygan.tensor(np.full((3, 2), r, dtype=np.float32))
    dist.broadcast(t, src=n - 1)
    assert np.array_equal(t.numpy(), np.full((3, 2), n - 1, dtype=np.float32))
    i = tinygan.tensor(np.array([r, 10 * r], dtype=np.int64))
    dist.broadcast(i, 1)
    assert i.numpy().tolist() == [1, 10]


def check_all_gather():
    n, r = dist.get_world_size(), dist.get_rank()
    parts = [tinygan.zeros(2, 3) for _ in range(n)]
    dist.all_gather(parts, tinygan.ones(2, 3) * (r + 1))
    for k, part in enumerate(parts):
        assert np.array_equal(part.numpy(), np.full((2, 3), k + 1, dtype=np.float32))
    try:  # checked before anything is sent, on every rank alike
        dist.all_gather(parts[:-1], tinygan.ones(2, 3))
        raise AssertionError("a list one short was accepted")
    except ValueError as e:
        assert "tensor_list has" in str(e)


def check_barrier():
    dist.barrier()


if __name__ == "__main__":
    run_checks(globals())
