"""How many cores tinygan computes on: one number for the BLAS and for tinygan's own threads.

NumPy hands matrix products to its BLAS (OpenBLAS), which keeps a pool of threads of its
own; tinygan splits the rest of a step (im2col, col2im, elementwise ops, BatchNorm, Adam)
over the threads of `parallel.py`. Two pools on the same cores oversubscribe them, and an
idle OpenBLAS thread spins for a while before it sleeps, so on a busy machine a step can
take ten times longer with two threads than with one. So tinygan holds the BLAS at one
thread and splits its matrix products itself, by blocks of rows or columns, on its own
pool: one pool, one number, set here.

    tinygan.set_num_threads(4)     # PyTorch's names
    tinygan.get_num_threads()      # -> 4

Without a call the number is $TINYGAN_NUM_THREADS, else $OMP_NUM_THREADS or
$OPENBLAS_NUM_THREADS (the variables that already tell NumPy's BLAS how many cores it
may use), else the cores this process may run on. `TINYGAN_NUM_THREADS=auto` is the
cores, until a `ThreadTuner` (below: called after each training step) picks the count
by timing steps.

What depends on the count: nothing that tinygan computes. A matrix product split into
blocks of rows (or of columns) gives each element the same sum in the same order as one
call would (OpenBLAS blocks the inner dimension the same way whatever block of rows it is
given: tests/test_parallel.py checks every split op bit for bit), elementwise work is
per element, and sums over a batch are cut by the array's size, never by the count.
What OpenBLAS computes on its own threads can depend on their number (a product of
(64, 784) by (784, 1024) differs in its last bits between one and two OpenBLAS threads),
which is why it is held at one.
"""
from __future__ import annotations

import os

from threadpoolctl import threadpool_limits

_VARIABLES = ("TINYGAN_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_chosen: int | None = None   # set_num_threads's number; None: read the environment
_blas_pid = 0                # the process whose BLAS was held at one thread


def cores() -> int:
    """The cores this process may run on (its affinity mask, where the system has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity masks (macOS, Windows)
        return os.cpu_count() or 1


def _from_environment() -> int:
    for name in _VARIABLES:
        value = os.environ.get(name, "").strip()
        if not value:
            continue
        if name == "TINYGAN_NUM_THREADS" and value.lower() == "auto":
            return cores()
        try:
            n = int(value)
        except ValueError:
            raise ValueError(f"{name}={value!r}: expected a whole number of threads"
                             + (" or 'auto'" if name == "TINYGAN_NUM_THREADS" else "")
                             ) from None
        if n < 1:
            raise ValueError(f"{name}={value!r}: expected at least one thread")
        return n
    return cores()


def get_num_threads() -> int:
    """The threads tinygan splits its work over (asked before every split, so it is cheap)."""
    if _blas_pid != os.getpid():
        hold_blas_at_one_thread()
    return _chosen if _chosen is not None else _from_environment()


def set_num_threads(n: int | None) -> None:
    """Compute on `n` threads from now on (None: back to the environment's number)."""
    global _chosen
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"set_num_threads: expected a whole number >= 1, got {n!r}")
    hold_blas_at_one_thread()
    _chosen = n


def uses_environment() -> bool:
    """True while no set_num_threads(n) overrides the environment's number."""
    return _chosen is None


def hold_blas_at_one_thread() -> None:
    """Set NumPy's BLAS to one thread, once per process (threadpoolctl finds the library).

    A forked child inherits the setting; it is asked again there all the same, since a
    child that imports NumPy afresh (spawn) does not.
    """
    global _blas_pid
    _blas_pid = os.getpid()
    threadpool_limits(limits=1, user_api="blas")
