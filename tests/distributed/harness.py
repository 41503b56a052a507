"""What the worker scripts share. Each runs under `mpiexec -n N python tests/distributed/
<script>.py` (tests/test_distributed.py launches them): it joins the process group, runs
its check_* functions in order and prints "rank R/N ok NAME" after each. A failed check
raises, and the group's error hook then ends every rank with the traceback shown.
"""
import sys

import numpy as np

import tinygan.distributed as dist


def run_checks(namespace: dict, backend: str = "mpi") -> None:
    dist.init_process_group(backend)
    rank, size = dist.get_rank(), dist.get_world_size()
    for name, check in list(namespace.items()):
        if name.startswith("check_") and callable(check):
            check()
            # one write per line: mpiexec forwards each write whole, so lines never mix
            sys.stdout.write(f"rank {rank}/{size} ok {name[len('check_'):]}\n")
            sys.stdout.flush()
    dist.barrier()
    dist.destroy_process_group()


def shares(n: int, counts=None, rank=None) -> slice:
    """A rank's rows of n (this rank's by default): equal shares, or counts[r] for rank r."""
    size, rank = dist.get_world_size(), dist.get_rank() if rank is None else rank
    counts = counts or [n // size] * size
    assert sum(counts) == n and len(counts) == size, (counts, n, size)
    start = sum(counts[:rank])
    return slice(start, start + counts[rank])


def as_on_rank0(a: np.ndarray) -> np.ndarray:
    """Rank 0's copy of an array of the same shape on every rank."""
    b = np.array(a, order="C")
    dist.broadcast(b, 0)
    return b


def summed(a: np.ndarray) -> np.ndarray:
    """The sum over the ranks of an array (a copy)."""
    b = np.array(a, order="C")
    dist.all_reduce(b)
    return b


def close(a, b, tol=1e-9) -> None:
    a, b = np.asarray(a), np.asarray(b)
    gap = float(np.abs(a - b).max()) if a.size else 0.0
    assert a.shape == b.shape and gap <= tol, f"shapes {a.shape} {b.shape}, gap {gap:.3g}"
