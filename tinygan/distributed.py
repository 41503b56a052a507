"""Processes that train one model together: torch.distributed's names on MPI and NCCL.

A launcher (`mpiexec -n N python ...`) starts N copies of a program; each is a *rank*,
0 to N - 1, holding its own replica of the model and its own share of every batch. They
agree through *collectives*, calls that every rank makes in the same order:

    all_reduce(x, SUM)   every rank's x becomes x_0 + x_1 + ... + x_{N-1}  (AVG: / N; MAX)
    broadcast(x, src)    every rank's x becomes x_src
    all_gather(xs, x)    every rank's xs becomes [x_0, x_1, ..., x_{N-1}]
    barrier()            no rank goes on before every rank has arrived

The communication is someone else's: backend "mpi" calls mpi4py's buffer methods
(Allreduce, Bcast, Allgather) on NumPy arrays, in place; backend "nccl" calls NVIDIA's
collective library through cupy.cuda.nccl on CuPy arrays, its communicator built from a
unique id that rank 0 makes and MPI broadcasts (as MPI does pickled Python objects).
Rank and world size come from MPI (the launcher told it); mpi4py and CuPy are imported
only when a group is initialised.

Before `init_process_group` a process is a world of one (rank 0 of 1) and a collective
leaves its tensor as it is, so the same training code runs alone.

Inside `global_batch()` a batch is one rank's share of a global batch, for which the
random numbers are drawn as one process draws them (each rank keeps its rows).
"""
from __future__ import annotations

import contextlib
import enum
import importlib.util
import os
import sys
import time

import numpy as np

from ._tensor import Tensor
from .backend import cupy_module, default_device, device_of, get_array_module

INSTALL = 'pip install -e ".[distributed]"'

#: environment variables in which an MPI launcher announces the world size
LAUNCHER_SIZE_VARIABLES = (
    "OMPI_COMM_WORLD_SIZE",  # Open MPI's mpirun / mpiexec
    "PMI_SIZE",              # Hydra (MPICH's and Intel MPI's mpiexec), Slurm's srun --mpi=pmi2
    "MV2_COMM_WORLD_SIZE",   # MVAPICH2's mpirun_rsh
)


class ReduceOp(enum.Enum):
    """How all_reduce combines the ranks' tensors (torch.distributed.ReduceOp)."""
    SUM = "sum"
    AVG = "avg"
    MAX = "max"


# ------------------------------------------------------------------------ the launcher


def launcher_world_size(environ=None) -> int | None:
    """The number of processes an MPI launcher started this one among, read from its
    environment variables (no MPI is imported); None when no launcher started it."""
    environ = os.environ if environ is None else environ
    for name in LAUNCHER_SIZE_VARIABLES:
        value = environ.get(name, "")
        if value.isdigit():
            return int(value)
    return None


def is_available() -> bool:
    """True when mpi4py is installed, so that init_process_group can run."""
    return importlib.util.find_spec("mpi4py") is not None


def _mpi():
    try:
        from mpi4py import MPI  # optional: importing it starts MPI
    except (ImportError, RuntimeError, OSError) as e:
        raise RuntimeError(f"tinygan.distributed needs mpi4py and an MPI library ({e}); "
                           f"install them with {INSTALL}") from None
    return MPI


# ---------------------------------------------------------------------- the two backends


class _MPIBackend:
    """Collectives on NumPy arrays through mpi4py's buffer methods (no pickling)."""

    name, devices = "mpi", ("cpu",)

    def __init__(self, comm):
        self.comm, self.MPI = comm, _mpi()
        self.ops = {ReduceOp.SUM: self.MPI.SUM, ReduceOp.MAX: self.MPI.MAX}

    def all_reduce(self, a, op):
        self.comm.Allreduce(self.MPI.IN_PLACE, a, op=self.ops[op])

    def broadcast(self, a, src):
        self.comm.Bcast(a, root=src)

    def all_gather(self, a, out):
        self.comm.Allgather(a, out)

    def barrier(self):
        self.comm.Barrier()

    def broadcast_object(self, obj, src):
        return self.comm.bcast(obj, root=src)

    def all_gather_object(self, obj):
        return self.comm.allgather(obj)

    def close(self):
        self.comm.Free()


class _NCCLBackend(_MPIBackend):
    """Collectives on CuPy arrays through cupy.cuda.nccl, on the current stream; NumPy
    arrays (a step's few losses) and Python objects go over MPI, as _MPIBackend's.

    Each rank takes the GPU of its rank on its node (ranks sharing a node, as MPI sees
    them, count 0, 1, ...); NCCL's unique id comes from rank 0 over MPI.
    """

    name, devices = "nccl", ("cuda", "cpu")

    def __init__(self, comm):
        super().__init__(comm)
        cupy = cupy_module()
        from cupy.cuda import nccl  # optional and GPU-only, like CuPy itself
        if not getattr(nccl, "available", False):
            raise RuntimeError("backend 'nccl': this CuPy was built without NCCL; install "
                               "a CuPy wheel for your CUDA (pip install -e \".[gpu]\")")
        node = comm.Split_type(self.MPI.COMM_TYPE_SHARED)
        cupy.cuda.Device(node.Get_rank() % cupy.cuda.runtime.getDeviceCount()).use()
        node.Free()
        unique_id = comm.bcast(nccl.get_unique_id() if comm.Get_rank() == 0 else None, root=0)
        self.nccl = nccl.NcclCommunicator(comm.Get_size(), unique_id, comm.Get_rank())
        self.cupy = cupy
        self.nccl_ops = {ReduceOp.SUM: nccl.NCCL_SUM, ReduceOp.MAX: nccl.NCCL_MAX}
        self.types = {np.dtype(k): v for k, v in (
            (np.int8, nccl.NCCL_INT8), (np.uint8, nccl.NCCL_UINT8),
            (np.int32, nccl.NCCL_INT32), (np.int64, nccl.NCCL_INT64),
            (np.float16, nccl.NCCL_FLOAT16), (np.float32, nccl.NCCL_FLOAT32),
            (np.float64, nccl.NCCL_FLOAT64))}

    def _type(self, a):
        if a.dtype not in self.types:
            raise TypeError(f"backend 'nccl': no NCCL type for dtype {a.dtype}")
        return self.types[a.dtype]

    def _stream(self):
        return self.cupy.cuda.get_current_stream().ptr

    def all_reduce(self, a, op):
        if isinstance(a, np.ndarray):
            return super().all_reduce(a, op)
        self.nccl.allReduce(a.data.ptr, a.data.ptr, a.size, self._type(a), self.nccl_ops[op],
                            self._stream())

    def broadcast(self, a, src):
        if isinstance(a, np.ndarray):
            return super().broadcast(a, src)
        self.nccl.bcast(a.data.ptr, a.size, self._type(a), src, self._stream())

    def all_gather(self, a, out):
        if isinstance(a, np.ndarray):
            return super().all_gather(a, out)
        self.nccl.allGather(a.data.ptr, out.data.ptr, a.size, self._type(a), self._stream())

    def barrier(self):
        # NCCL has no barrier: finish this rank's GPU work, then meet over MPI
        self.cupy.cuda.get_current_stream().synchronize()
        super().barrier()

    def close(self):
        self.nccl.destroy()
        super().close()


_BACKENDS = {"mpi": _MPIBackend, "nccl": _NCCLBackend}


class _Group:
    def __init__(self, impl, rank: int, size: int):
        self.impl, self.rank, self.size = impl, rank, size
        self.seconds = 0.0  # spent inside collectives, waiting for the other ranks included

    @contextlib.contextmanager
    def timed(self):
        start = time.perf_counter()
        yield
        self.seconds += time.perf_counter() - start


_group: _Group | None = None
_share: tuple | None = None  # (rank, world size) inside global_batch()
_hook_before = None  # sys.excepthook before init_process_group replaced it


# --------------------------------------------------------------------- the process group


def init_process_group(backend: str | None = None) -> None:
    """Join every process the launcher started into one group.

    backend: "mpi" (NumPy tensors) or "nccl" (CuPy tensors, one GPU per rank); by default
    "nccl" when the default device (tinygan.backend.default_device()) is "cuda", else
    "mpi". Call it before making tensors: with "nccl" it picks this rank's GPU. From then
    on an uncaught exception on any rank is printed and ends every rank (MPI_Abort), so
    that the others do not wait forever in a collective.
    """
    global _group, _hook_before
    if _group is not None:
        raise RuntimeError("init_process_group: the process group is already initialised; "
                           "call destroy_process_group() first")
    if backend is None:
        backend = "nccl" if default_device() == "cuda" else "mpi"
    if backend not in _BACKENDS:
        raise ValueError(f"init_process_group: unknown backend {backend!r}: expected "
                         f"{' or '.join(repr(b) for b in _BACKENDS)}")
    comm = _mpi().COMM_WORLD.Dup()  # a communicator of our own: no clash with other MPI users
    rank, size = comm.Get_rank(), comm.Get_size()
    try:
        impl = _BACKENDS[backend](comm)
    except Exception:  # (a GPU or NCCL missing on one node): the others would wait for it
        if size > 1:
            _stop_every_rank(sys.exc_info(), rank, size, "failed")
        comm.Free()
        raise
    _group = _Group(impl, rank, size)
    _hook_before, sys.excepthook = sys.excepthook, _abort_on_uncaught


def destroy_process_group() -> None:
    """Leave the group (the process is a world of one again); MPI itself ends at exit."""
    global _group, _hook_before
    if _group is None:
        return
    _group.impl.close()
    _group = None
    if sys.excepthook is _abort_on_uncaught:
        sys.excepthook = _hook_before
    _hook_before = None


def is_initialized() -> bool:
    return _group is not None


def get_rank() -> int:
    """This process's rank, 0 to world size - 1 (0 before init_process_group)."""
    return 0 if _group is None else _group.rank


def get_world_size() -> int:
    """The number of processes in the group (1 before init_process_group)."""
    return 1 if _group is None else _group.size


def get_backend() -> str | None:
    """The backend's name, "mpi" or "nccl" (None before init_process_group)."""
    return None if _group is None else _group.impl.name


def seconds_in_collectives() -> float:
    """Wall seconds this rank has spent in collectives since init_process_group, waiting
    for slower ranks included: what running on several processes adds to the work."""
    return 0.0 if _group is None else _group.seconds


# ------------------------------------------------------------------------ collectives


def all_reduce(tensor, op: ReduceOp = ReduceOp.SUM) -> None:
    """In place, on every rank: tensor <- op over the ranks' tensors (SUM, AVG, MAX).

    tensor is a Tensor (its data changes) or an array. AVG is SUM divided by the world
    size, so it needs a floating-point tensor.
    """
    op = ReduceOp(op)
    a = _array("all_reduce", tensor)
    if op is ReduceOp.AVG and a.dtype.kind != "f":
        raise TypeError(f"all_reduce: ReduceOp.AVG needs a floating-point tensor, got {a.dtype}")
    if _group is None:
        return  # a world of one: the tensor is already the sum, the mean and the max
    with _contiguous(a) as buf, _group.timed():
        _group.impl.all_reduce(buf, ReduceOp.MAX if op is ReduceOp.MAX else ReduceOp.SUM)
        if op is ReduceOp.AVG:
            buf /= _group.size


def broadcast(tensor, src: int) -> None:
    """In place: every rank's tensor becomes rank src's."""
    a = _array("broadcast", tensor)
    _check_rank("broadcast", src)
    if _group is None:
        return
    with _contiguous(a) as buf, _group.timed():
        _group.impl.broadcast(buf, src)


def all_gather(tensor_list: list, tensor) -> None:
    """tensor_list[r] <- rank r's tensor, on every rank (torch.distributed.all_gather).

    tensor_list holds world-size tensors shaped like `tensor`; they are written in place.
    """
    a = _array("all_gather", tensor)
    size = get_world_size()
    if len(tensor_list) != size:
        raise ValueError(f"all_gather: tensor_list has {len(tensor_list)} tensors for a "
                         f"world of {size}")
    outs = [_array("all_gather", t) for t in tensor_list]
    for out in outs:
        if out.shape != a.shape or out.dtype != a.dtype:
            raise ValueError(f"all_gather: tensor_list holds a {out.dtype} tensor of shape "
                             f"{tuple(out.shape)}, the tensor is {a.dtype} {tuple(a.shape)}")
    if _group is None:
        outs[0][...] = a
        return
    gathered = get_array_module(a).empty((size,) + a.shape, dtype=a.dtype)
    with _group.timed():
        _group.impl.all_gather(get_array_module(a).ascontiguousarray(a), gathered)
    for out, part in zip(outs, gathered):
        out[...] = part


def barrier() -> None:
    """Wait until every rank has called barrier()."""
    if _group is not None:
        with _group.timed():
            _group.impl.barrier()


def broadcast_object_list(object_list: list, src: int = 0) -> None:
    """In place: every rank's object_list becomes rank src's (its objects pickled)."""
    _check_rank("broadcast_object_list", src)
    if _group is not None:
        object_list[:] = _group.impl.broadcast_object(list(object_list), src)


def all_gather_object(object_list: list, obj) -> None:
    """object_list[r] <- rank r's obj, on every rank (pickled), as torch.distributed's."""
    if len(object_list) != get_world_size():
        raise ValueError(f"all_gather_object: object_list has {len(object_list)} entries "
                         f"for a world of {get_world_size()}")
    object_list[:] = [obj] if _group is None else _group.impl.all_gather_object(obj)


def _array(op: str, tensor):
    a = tensor.data if isinstance(tensor, Tensor) else tensor
    if not hasattr(a, "dtype") or isinstance(a, np.generic):
        raise TypeError(f"{op}: expected a Tensor or an array, got {type(tensor).__name__}")
    if _group is not None and device_of(a) not in _group.impl.devices:
        raise TypeError(f"{op}: backend {_group.impl.name!r} takes "
                        f"{' or '.join(_group.impl.devices)} tensors, got a {device_of(a)} one")
    return a


def _check_rank(op: str, src: int) -> None:
    if not 0 <= src < get_world_size():
        raise ValueError(f"{op}: src={src} is not a rank of a world of {get_world_size()}")


@contextlib.contextmanager
def _contiguous(a):
    """a itself when it is one dense block (the libraries read raw memory), else a dense
    copy that is written back afterwards."""
    if a.flags.c_contiguous:
        yield a
        return
    buf = get_array_module(a).ascontiguousarray(a)
    yield buf
    a[...] = buf


# ---------------------------------------------------------------- shares of a global batch


@contextlib.contextmanager
def global_batch(rank: int | None = None, world_size: int | None = None):
    """Inside: a batch is rank `rank`'s share, 1/world_size, of a global batch (by default
    this process's rank and the group's size), as in a data-parallel training step.

    Random numbers for a batch of n (z, labels, dropout masks) are then drawn for the
    global batch of n x world_size, as one process draws them, and rank r keeps rows
    [r n, (r + 1) n): every rank's generator moves as one process's does.
    """
    global _share
    rank = get_rank() if rank is None else rank
    world_size = get_world_size() if world_size is None else world_size
    if not 0 <= rank < world_size:
        raise ValueError(f"global_batch: rank {rank} is not a rank of a world of {world_size}")
    before, _share = _share, (rank, world_size)
    try:
        yield
    finally:
        _share = before


def batch_share() -> tuple:
    """(rank, world size) of the batches inside global_batch(); (0, 1) outside."""
    return _share or (0, 1)


# ------------------------------------------------------------- one rank fails: all stop


def _stop_every_rank(exc_info, rank: int, size: int, what: str, code: int = 1) -> None:
    """Print the error as Python would, then end every rank (MPI_Abort)."""
    if exc_info is not None:
        (_hook_before or sys.__excepthook__)(*exc_info)
    print(f"tinygan.distributed: rank {rank} of {size} {what}; stopping every rank",
          file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    # MPI_Abort takes every process down at once, and with them the pipes through which
    # the launcher forwards their output: give it a moment to pass on the error first
    time.sleep(0.5)
    _mpi().COMM_WORLD.Abort(code)


def _abort_on_uncaught(exc_type, exc, tb) -> None:
    """sys.excepthook while the group is initialised: with several ranks, an uncaught
    exception ends them all (the others would wait forever in their next collective)."""
    if get_world_size() == 1:
        (_hook_before or sys.__excepthook__)(exc_type, exc, tb)
        return
    _stop_every_rank((exc_type, exc, tb), get_rank(), get_world_size(), "failed")


@contextlib.contextmanager
def abort_on_error():
    """Inside: an exception, or sys.exit with an error, on one rank of several is printed
    and ends every rank. sys.exit never reaches sys.excepthook, so a command that exits
    with a message (as argparse does) runs its main() in here."""
    try:
        yield
    except SystemExit as e:
        if e.code in (None, 0) or get_world_size() == 1:
            raise
        if not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
        _stop_every_rank(None, get_rank(), get_world_size(), "exited",
                         e.code if isinstance(e.code, int) else 1)
    except BaseException:
        if get_world_size() == 1:
            raise
        _stop_every_rank(sys.exc_info(), get_rank(), get_world_size(), "failed")
