"""The NCCL backend on CuPy tensors: the same values as MPI's, and DDP and SyncBatchNorm on
the GPU against one process on the whole batch.

Needs CuPy with NCCL and a GPU per rank: NCCL will not put two ranks on one GPU, so a
machine with one GPU runs this with `mpiexec -n 1` (a world of one, through NCCL all the
same).
"""
import numpy as np
from mpi4py import MPI

import tinygan
import tinygan.distributed as dist
from tinygan import functional as F
from tinygan import nn
from tinygan.backend import to_numpy
from tinygan.nn.parallel import DistributedDataParallel, sync_batch_norm
from harness import close, run_checks, shares

N = 8


def by_mpi(a: np.ndarray, op) -> np.ndarray:
    out = a.copy()
    MPI.COMM_WORLD.Allreduce(MPI.IN_PLACE, out, op=op)
    return out


def check_backend_is_nccl():
    assert dist.get_backend() == "nccl"


def check_collectives_match_mpi():
    r, n = dist.get_rank(), dist.get_world_size()
    rng = np.random.default_rng(r)
    for dtype in (np.float32, np.float64, np.int64):
        a = (rng.standard_normal((3, 5)) * 100).astype(dtype)
        for op, mpi_op in ((dist.ReduceOp.SUM, MPI.SUM), (dist.ReduceOp.MAX, MPI.MAX)):
            t = tinygan.tensor(a, device="cuda")
            dist.all_reduce(t, op)
            assert np.array_equal(to_numpy(t.data), by_mpi(a, mpi_op)), (dtype, op)
    a = rng.standard_normal((4, 3)).astype(np.float32)
    t = tinygan.tensor(a.T, device="cuda")  # not contiguous
    dist.all_reduce(t, dist.ReduceOp.AVG)
    close(to_numpy(t.data), by_mpi(a.T.copy(), MPI.SUM) / n, 1e-6)
    t = tinygan.tensor(np.full(4, r, dtype=np.float32), device="cuda")
    dist.broadcast(t, n - 1)
    assert np.array_equal(to_numpy(t.data), np.full(4, n - 1, dtype=np.float32))
    parts = [tinygan.zeros(2, device="cuda") for _ in range(n)]
    dist.all_gather(parts, tinygan.ones(2, device="cuda") * r)
    assert [to_numpy(p.data).tolist() for p in parts] == [[k, k] for k in range(n)]


def check_numpy_arrays_go_over_mpi():
    """A step's averaged losses and its stop flag are NumPy arrays: under NCCL they travel
    over MPI, with the same values."""
    r, n = dist.get_rank(), dist.get_world_size()
    losses = np.array([1.0 + r, 2.0 * r])
    dist.all_reduce(losses, dist.ReduceOp.AVG)
    assert np.array_equal(losses, by_mpi(np.array([1.0 + r, 2.0 * r]), MPI.SUM) / n)
    flag = np.array([r], dtype=np.int64)
    dist.all_reduce(flag, dist.ReduceOp.MAX)
    assert flag[0] == n - 1
    objects = [None] * n
    dist.all_gather_object(objects, {"rank": r})
    assert objects == [{"rank": k} for k in range(n)]


def check_ddp_and_sync_batchnorm_on_the_gpu():
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((N, 5)), rng.standard_normal((N, 1))
    mine = shares(N)

    def net():
        tinygan.manual_seed(0)
        return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 1)).double().to("cuda")

    model, ref = DistributedDataParallel(net()), net()

    def cuda(a):
        return tinygan.tensor(np.ascontiguousarray(a), device="cuda")

    F.mse_loss(model(cuda(X[mine])), cuda(Y[mine])).backward()
    F.mse_loss(ref(cuda(X)), cuda(Y)).backward()
    for p, q in zip(model.parameters(), ref.parameters()):
        close(to_numpy(p.grad.data), to_numpy(q.grad.data))

    X = rng.standard_normal((N, 3, 4, 4)) * 2 + 5
    C = rng.standard_normal(X.shape)
    x = tinygan.tensor(X[mine], device="cuda", requires_grad=True)
    x_ref = tinygan.tensor(X, device="cuda", requires_grad=True)
    y = sync_batch_norm(x, None, None)
    y_ref = F.batch_norm(x_ref, None, None, training=True)
    close(to_numpy(y.data), to_numpy(y_ref.data)[mine], 1e-12)
    y.backward(cuda(C[mine]))
    y_ref.backward(cuda(C))
    close(to_numpy(x.grad.data), to_numpy(x_ref.grad.data)[mine], 1e-12)


if __name__ == "__main__":
    run_checks(globals(), backend="nccl")
