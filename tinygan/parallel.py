"""Elementwise work on big CPU arrays, split over threads.

NumPy runs matrix products on all cores (through its BLAS) but every ufunc on one. A
ufunc on a large array releases the GIL, so the halves of an update like Adam's can run
on two cores at once from two Python threads, and each element is computed exactly as it
would be in one thread: the result is the same to the bit. `apply` is the one call the
optimisers make.

The number of threads is TINYGAN_NUM_THREADS if set, else OMP_NUM_THREADS or
OPENBLAS_NUM_THREADS (the variables that already say how many cores NumPy's BLAS may
use), else the machine's core count. Arrays below MIN_SIZE elements stay on one thread:
there the cost of handing work to a thread is more than the work.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

MIN_SIZE = 1 << 17  # elements per array before splitting pays (measured: Adam, 2 cores)
_VARIABLES = ("TINYGAN_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_pid = 0  # a forked child inherits the pool object but not its threads


def num_threads() -> int:
    """Threads for elementwise CPU work (read from the environment on every call)."""
    for name in _VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            try:
                return max(1, int(value))
            except ValueError:
                raise ValueError(f"{name}={value!r}: expected a whole number of threads")
    return os.cpu_count() or 1


def split(size: int) -> list[slice]:
    """The ranges of a flat array of `size` elements that threads take (one if too small)."""
    n = size // MIN_SIZE
    n = min(num_threads(), n) if n > 1 else 1  # small arrays: no need to read the environment
    bounds = [size * i // n for i in range(n + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(n)]


def run(fn, parts: list[slice]) -> None:
    """fn(part) for every part, in parallel threads when there is more than one."""
    global _pool, _pool_size, _pool_pid
    if len(parts) == 1:
        fn(parts[0])
        return
    if _pool is None or _pool_size < len(parts) - 1 or _pool_pid != os.getpid():
        if _pool is not None and _pool_pid == os.getpid():
            _pool.shutdown(wait=True)
        _pool = ThreadPoolExecutor(max_workers=len(parts) - 1,
                                   thread_name_prefix="tinygan-elementwise")
        _pool_size, _pool_pid = len(parts) - 1, os.getpid()
    futures = [_pool.submit(fn, part) for part in parts[1:]]
    fn(parts[0])  # this thread takes the first part itself
    for future in futures:
        future.result()  # re-raises a worker's exception here


def apply(fn, *arrays, **kwargs) -> None:
    """fn(*arrays, **kwargs), for an elementwise fn that updates some of its arrays in place.

    NumPy arrays of one shape, all C-contiguous, are flattened and each thread runs fn on
    its part of them (see `split`); any other arrays (CuPy's, small ones) go to fn whole.
    None stands for an array fn is not given, in every part.
    """
    first = arrays[0]
    parts = split(first.size) if first.size >= 2 * MIN_SIZE else None
    if parts is None or len(parts) == 1 or not isinstance(first, np.ndarray) or not all(
            a is None or a.flags.c_contiguous for a in arrays):
        fn(*arrays, **kwargs)
        return
    flat = [None if a is None else a.reshape(-1) for a in arrays]
    run(lambda part: fn(*(None if a is None else a[part] for a in flat), **kwargs), parts)
