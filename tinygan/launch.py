"""Commands under an MPI launcher: `mpiexec -n N python -m tinygan.train ...`.

Each command calls `init_from_launcher()` before it makes any tensor. Started by a
launcher among several processes, it joins them into one group
(tinygan.distributed.init_process_group) and gives each rank its share of the node's
cores; started alone, it does nothing, and the command runs as it always has.

Ranks must make the same collective calls in the same order, so a rank that stops alone
leaves the others waiting. Two ways out: `first_error` for the checks at start-up (every
rank says whether it is ready; all stop together, with the first error), and
distributed.abort_on_error for anything later (the failing rank ends every rank).
"""
from __future__ import annotations

import os

from . import distributed

#: variables that say how many threads NumPy's BLAS and tinygan's elementwise work may use
THREAD_VARIABLES = ("TINYGAN_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "MKL_NUM_THREADS")
#: variables in which launchers say how many of their ranks share this node
LOCAL_SIZE_VARIABLES = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE",
                        "MV2_COMM_WORLD_LOCAL_SIZE")


def init_from_launcher(device: str | None = None) -> int:
    """Join the launcher's processes (if it started several) and return the world size.
    The backend suits `device` (by default $TINYGAN_DEVICE): NCCL for "cuda", else MPI."""
    if (distributed.launcher_world_size() or 1) > 1 and not distributed.is_initialized():
        distributed.init_process_group("nccl" if str(device).startswith("cuda") else None)
        share_cores()
    return distributed.get_world_size()


def threads_per_rank(environ=None) -> int:
    """This node's cores divided among the ranks on it (1 when there are as many ranks as
    cores): more threads than cores only make the ranks take turns."""
    environ = os.environ if environ is None else environ
    local = next((int(environ[v]) for v in LOCAL_SIZE_VARIABLES
                  if environ.get(v, "").isdigit()), None)
    local = local or distributed.launcher_world_size(environ) or 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return max(1, (cores or os.cpu_count() or 1) // local)


def share_cores() -> None:
    """threads_per_rank() threads for NumPy's BLAS and tinygan's elementwise work, unless
    one of THREAD_VARIABLES already says how many."""
    if any(os.environ.get(name) for name in THREAD_VARIABLES):
        return
    threads = threads_per_rank()
    for name in THREAD_VARIABLES:  # read by tinygan.parallel, and by any child process
        os.environ[name] = str(threads)
    try:  # NumPy's BLAS read its variable when it loaded: only threadpoolctl can change it now
        from threadpoolctl import threadpool_limits  # optional, as in scikit-learn
    except ImportError:
        if distributed.get_rank() == 0:
            print(f"note: each rank should use {threads} BLAS thread(s); start mpiexec with "
                  f"OPENBLAS_NUM_THREADS={threads}, or pip install threadpoolctl")
        return
    threadpool_limits(threads)


def first_error(error: str | None) -> str | None:
    """A collective for start-up checks that may fail on some ranks only (a dataset missing
    on one node): every rank gives its error, or None when it is ready, and every rank gets
    back the first one ("rank r of N: ..." when it is not rank 0's), or None when all are
    ready. So every rank stops at the same point, and none waits for another."""
    size = distributed.get_world_size()
    if size == 1:
        return error
    errors = [None] * size
    distributed.all_gather_object(errors, error)
    for rank, message in enumerate(errors):
        if message is not None:
            return message if rank == 0 else f"rank {rank} of {size}: {message}"
    return None
