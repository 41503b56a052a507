"""tinygan.distributed, DistributedDataParallel and SyncBatchNorm.

Two kinds of test. In this process, a world of one (no process group): the defaults that
let the same code run alone, the errors, SyncBatchNorm's gradient checks, conversion and
buckets. Under `mpiexec -n 2`, the worker scripts in tests/distributed/ (each runs all its
checks in one launch, as MPI start-up costs a second): collectives' values, DDP's
gradients and weights against one process on the whole batch, SyncBatchNorm against
BatchNorm on the whole batch, and a failing rank ending the job. The NCCL worker needs a
GPU per rank and is skipped with the reason where there is none.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygan
import tinygan.distributed as dist
from tinygan import backend, nn
from tinygan import functional as F
from tinygan.gans import nets
from tinygan.launch import first_error, init_from_launcher, threads_per_rank
from tinygan.nn.parallel import DistributedDataParallel, SyncBatchNorm, sync_batch_norm, unwrap
from tinygan.testing import gradcheck, gradgradcheck

ROOT = Path(__file__).resolve().parent.parent
WORKERS = ROOT / "tests" / "distributed"


def _mpiexec():
    """The mpiexec beside this Python (where the mpich wheel puts it), else on PATH."""
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
needs_mpi = pytest.mark.skipif(
    MPIEXEC is None or importlib.util.find_spec("mpi4py") is None,
    reason='needs mpi4py and an mpiexec: pip install -e ".[distributed]"')


def launch(script: str, *args, n: int = 2, timeout: float = 120,
           device: str = "cpu") -> subprocess.CompletedProcess:
    """`mpiexec -n n python tests/distributed/<script> args`, its output in .stdout."""
    command = [MPIEXEC, "-n", str(n)]
    version = subprocess.run([MPIEXEC, "--version"], capture_output=True, text=True).stdout
    if "Open MPI" in version:
        command.append("--oversubscribe")  # more ranks than cores is fine for tests
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", TINYGAN_NUM_THREADS="1",
               TINYGAN_DEVICE=device)
    return subprocess.run(command + [sys.executable, str(WORKERS / script), *args], cwd=ROOT,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)


def assert_every_rank_passed(run, checks, n: int = 2):
    assert run.returncode == 0, run.stdout
    for check in checks:
        for rank in range(n):
            assert f"rank {rank}/{n} ok {check}\n" in run.stdout, (check, run.stdout)


# --------------------------------------------------------------- under mpiexec -n 2


@needs_mpi
def test_collectives_on_two_processes():
    assert_every_rank_passed(launch("collectives.py"), [
        "rank_and_size", "all_reduce", "broadcast", "all_gather", "barrier"])


@needs_mpi
def test_data_parallel_on_two_processes():
    assert_every_rank_passed(launch("data_parallel.py"), [
        "construction_broadcasts_rank0", "gradients_are_the_whole_batch_gradient",
        "parameters_without_gradient", "gan_step_gradients",
        "50_adam_steps_with_sync_batchnorm", "sync_batch_norm_forward_backward",
        "sync_batch_norm_second_derivative"])


@needs_mpi
@pytest.mark.parametrize("how, message", [
    ("raise", "RuntimeError: rank 1 fails on purpose"),
    ("exit", "error: rank 1 exits on purpose")])
def test_a_failing_rank_stops_the_job_with_its_error(how, message):
    run = launch("failure.py", how, timeout=60)  # a hang would raise TimeoutExpired
    assert run.returncode != 0, run.stdout
    assert message in run.stdout, run.stdout
    assert "rank 1 of 2" in run.stdout and "stopping every rank" in run.stdout, run.stdout
    assert "rank 0 got through" not in run.stdout


@needs_mpi
@pytest.mark.skipif(not backend.cuda_is_available(),
                    reason=f"the NCCL backend needs CuPy and a CUDA GPU per rank: "
                           f"{backend.cuda_unavailable_reason()}")
def test_nccl_matches_mpi_on_the_gpus():
    gpus = backend.cupy_module().cuda.runtime.getDeviceCount()
    n = min(gpus, 2)  # NCCL puts one rank per GPU: one GPU is a world of one
    assert_every_rank_passed(launch("nccl_collectives.py", n=n, device="cuda"), [
        "backend_is_nccl", "collectives_match_mpi", "ddp_and_sync_batchnorm_on_the_gpu"], n=n)


# ------------------------------------------------------------ in this process: N = 1


def test_a_world_of_one_before_init():
    assert not dist.is_initialized() and dist.get_backend() is None
    assert (dist.get_rank(), dist.get_world_size()) == (0, 1)
    x = tinygan.tensor(np.arange(6.0).reshape(2, 3))
    for op in (dist.ReduceOp.SUM, dist.ReduceOp.AVG, dist.ReduceOp.MAX):
        dist.all_reduce(x, op)
        assert np.array_equal(x.numpy(), np.arange(6.0).reshape(2, 3))
    dist.broadcast(x, 0)
    parts = [tinygan.zeros(2, 3, dtype="float64")]
    dist.all_gather(parts, x)
    assert np.array_equal(parts[0].numpy(), x.numpy())
    dist.barrier()
    dist.destroy_process_group()  # nothing to destroy: no error


def test_collective_arguments_are_checked():
    with pytest.raises(TypeError, match="AVG needs a floating-point"):
        dist.all_reduce(tinygan.tensor(np.arange(3)), dist.ReduceOp.AVG)
    with pytest.raises(ValueError, match="src=1 is not a rank of a world of 1"):
        dist.broadcast(tinygan.zeros(2), 1)
    with pytest.raises(ValueError, match="tensor_list has 2 tensors for a world of 1"):
        dist.all_gather([tinygan.zeros(2), tinygan.zeros(2)], tinygan.zeros(2))
    with pytest.raises(ValueError, match="shape"):
        dist.all_gather([tinygan.zeros(3)], tinygan.zeros(2))
    with pytest.raises(TypeError, match="expected a Tensor or an array"):
        dist.all_reduce([1.0, 2.0])
    with pytest.raises(ValueError, match="unknown backend 'gloo'"):
        dist.init_process_group("gloo")


@pytest.mark.parametrize("environ, size", [
    ({"PMI_SIZE": "4", "PMI_RANK": "1"}, 4),          # MPICH / Intel MPI (Hydra), srun pmi2
    ({"OMPI_COMM_WORLD_SIZE": "2"}, 2),                # Open MPI
    ({"MV2_COMM_WORLD_SIZE": "8"}, 8),                 # MVAPICH2
    ({"HOME": "/root"}, None),                         # started by hand
])
def test_launcher_world_size_from_the_environment(environ, size):
    assert dist.launcher_world_size(environ) == size


def test_without_mpi4py_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # as if not installed
    with pytest.raises(RuntimeError, match=r'pip install -e "\.\[distributed\]"'):
        dist.init_process_group("mpi")
    assert not dist.is_initialized()
    assert dist.is_available() == (importlib.util.find_spec("mpi4py") is not None)


def test_abort_on_error_in_a_world_of_one_lets_errors_through():
    with pytest.raises(SystemExit, match="bad flag"), dist.abort_on_error():
        sys.exit("bad flag")
    with pytest.raises(KeyError), dist.abort_on_error():
        raise KeyError("x")


# SyncBatchNorm's function in one process: BatchNorm's gradients to any order


def _sbn_inputs(shape, affine=True, seed=0):
    rng = np.random.default_rng(seed)
    x = tinygan.tensor(rng.standard_normal(shape) * 2 + 1, requires_grad=True)
    if not affine:
        return [x]
    c = shape[1]
    return [x, tinygan.tensor(rng.standard_normal(c), requires_grad=True),
            tinygan.tensor(rng.standard_normal(c), requires_grad=True)]


@pytest.mark.parametrize("shape", [(5, 3), (4, 2, 3), (3, 2, 2, 3)])
@pytest.mark.parametrize("affine", [True, False])
def test_sync_batch_norm_gradcheck(shape, affine):
    inputs = _sbn_inputs(shape, affine)

    def f(x, *wb):
        return sync_batch_norm(x, None, None, *wb)

    assert gradcheck(f, inputs)
    assert gradgradcheck(f, inputs)


def test_sync_batch_norm_in_one_process_is_batch_norm():
    x, w, b = _sbn_inputs((6, 3, 2, 2))
    stats, stats_ref = [np.zeros(3), np.ones(3)], [np.zeros(3), np.ones(3)]
    y = sync_batch_norm(x, *stats, w, b, momentum=0.2, eps=1e-3)
    y_ref = F.batch_norm(x, *stats_ref, w, b, training=True, momentum=0.2, eps=1e-3)
    np.testing.assert_allclose(y.detach().numpy(), y_ref.detach().numpy(), atol=1e-12)
    for s, s_ref in zip(stats, stats_ref):
        np.testing.assert_allclose(s, s_ref, atol=1e-12)
    cotangent = tinygan.tensor(np.random.default_rng(1).standard_normal(y.shape))
    grads = tinygan.grad(y, [x, w, b], cotangent)
    grads_ref = tinygan.grad(y_ref, [x, w, b], cotangent)
    for g, g_ref in zip(grads, grads_ref):
        np.testing.assert_allclose(g.numpy(), g_ref.numpy(), atol=1e-12)
    with pytest.raises(ValueError, match="more than one value per channel"):
        sync_batch_norm(tinygan.zeros(1, 3), None, None)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_sync_batchnorm_layer_alone_is_batchnorm_to_the_bit(momentum):
    tinygan.manual_seed(1)
    sync, ref = nn.SyncBatchNorm(4, momentum=momentum), nn.BatchNorm2d(4, momentum=momentum)
    for step in range(3):
        x = tinygan.randn(5, 4, 3, 3, requires_grad=True)
        cotangent = tinygan.randn(5, 4, 3, 3)
        y, y_ref = sync(x), ref(x)
        assert np.array_equal(y.detach().numpy(), y_ref.detach().numpy())
        g = tinygan.grad(y, [x, sync.weight], cotangent)
        g_ref = tinygan.grad(y_ref, [x, ref.weight], cotangent)
        assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(g, g_ref))
    for (name, v), v_ref in zip(sync.state_dict().items(), ref.state_dict().values()):
        assert np.array_equal(v.numpy(), v_ref.numpy()), name
    sync.eval()
    ref.eval()
    x = tinygan.randn(2, 4, 3, 3)
    assert np.array_equal(sync(x).detach().numpy(), ref(x).detach().numpy())
    with pytest.raises(ValueError, match="SyncBatchNorm: expected a 2-D"):
        sync(tinygan.randn(4))


def test_convert_sync_batchnorm_keeps_tensors_order_and_settings():
    tinygan.manual_seed(0)
    G = nets.dcgan_generator(8, (1, 28, 28))
    G[2].momentum, G[2].eps = None, 1e-3
    G.append(nn.Sequential(nn.BatchNorm1d(3, affine=False, track_running_stats=False)))
    G.eval()
    before = dict(G.named_modules())
    names = list(before)
    state = {k: v for k, v in G.state_dict(keep_vars=True).items()}
    z = tinygan.randn(4, 8)
    y_before = G[:-1](z).detach().numpy()

    assert nn.SyncBatchNorm.convert_sync_batchnorm(G) is G
    after = dict(G.named_modules())
    assert list(after) == names  # a Sequential keeps its order
    converted = [n for n, m in before.items() if isinstance(m, nn.BatchNorm2d)
                 or isinstance(m, nn.BatchNorm1d)]
    assert len(converted) == 4
    for name in converted:
        old, new = before[name], after[name]
        assert type(new) is SyncBatchNorm and not new.training
        assert (new.num_features, new.eps, new.momentum, new.affine,
                new.track_running_stats) == (old.num_features, old.eps, old.momentum,
                                             old.affine, old.track_running_stats)
    for key, tensor in G.state_dict(keep_vars=True).items():
        assert tensor is state[key], key  # the same Parameter and buffer objects
    assert np.array_equal(G[:-1](z).detach().numpy(), y_before)
    bn = nn.BatchNorm1d(2)
    assert type(SyncBatchNorm.convert_sync_batchnorm(bn)) is SyncBatchNorm


# DistributedDataParallel in one process


def _net():
    tinygan.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.BatchNorm1d(8), nn.Linear(8, 2)).double()


def test_ddp_in_one_process_gives_the_module_gradients_to_the_bit():
    net, ref = _net(), _net()
    model = DistributedDataParallel(net)
    assert model.module is net and unwrap(model) is net and unwrap(ref) is ref
    x = tinygan.tensor(np.random.default_rng(0).standard_normal((6, 3)))
    for _ in range(2):  # twice: a second round after the first
        net.zero_grad()
        ref.zero_grad()
        (model(x) ** 2).mean().backward()
        (ref(x) ** 2).mean().backward()
        for p, q in zip(net.parameters(), ref.parameters()):
            assert np.array_equal(p.grad.numpy(), q.grad.numpy())


def test_ddp_state_dict_names_the_module_as_pytorch():
    model = DistributedDataParallel(_net())
    keys = list(model.state_dict())
    assert keys == ["module." + k for k in model.module.state_dict()]
    other = _net()
    other.load_state_dict(unwrap(model).state_dict())
    model.load_state_dict(model.state_dict())
    assert list(model.parameters()) == list(model.module.parameters())


@pytest.mark.parametrize("build", [
    lambda: nets.dcgan_generator(100, (1, 28, 28)),
    lambda: nets.dcgan_generator(128, (3, 32, 32)),
    lambda: nets.dcgan_discriminator((3, 32, 32), batchnorm=True),
    lambda: nets.mlp_generator(100, (1, 28, 28)),
    lambda: nets.points_generator(2, (2,)),
], ids=["dcgan-G28", "dcgan-G32", "dcgan-D32", "mlp-G", "points-G"])
def test_ddp_buckets_are_few_and_cover_every_parameter_once(build):
    net = build()
    model = DistributedDataParallel(net)
    params = [p for b in model.buckets for p in b.params]
    assert 1 <= len(model.buckets) <= 5
    assert [id(p) for p in params] == [id(p) for p in reversed(list(net.parameters()))]
    assert all(len({p.dtype for p in b.params}) == 1 for b in model.buckets)


def test_ddp_a_parameter_no_backward_reaches_keeps_no_gradient():
    G, D = _net(), nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    G, D = DistributedDataParallel(G), DistributedDataParallel(D)
    z = tinygan.tensor(np.random.default_rng(0).standard_normal((6, 3)))
    D(G(z).detach()).mean().backward()  # D's update: G's forward reaches no backward
    assert all(p.grad is None for p in G.parameters())
    assert all(p.grad is not None for p in D.parameters())
    D(G(z)).mean().backward()  # G's: both get gradients, G's round completes now
    assert all(p.grad is not None for p in G.parameters())


def test_ddp_refuses_what_would_leave_gradients_unaveraged():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 1), nn.Linear(2, 1)

        def forward(self, x):
            return self.a(x), self.b(x)

    model = DistributedDataParallel(Two())
    x = tinygan.randn(3, 2)
    ya, yb = model(x)
    ya.sum().backward()  # b's parameters were used but get nothing
    with pytest.raises(RuntimeError, match="no gradient to b.bias, b.weight"):
        model(x)

    model = DistributedDataParallel(Two())
    with pytest.raises(RuntimeError, match="run one forward through the wrapper"):
        model.module(x)[0].sum().backward()  # around the wrapper

    model = DistributedDataParallel(Two())
    ya, yb = model(x)
    (ya.sum() + yb.sum()).backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="no forward through the wrapper waits for"):
        (ya.sum() + yb.sum()).backward()  # a second backward after one forward


def test_exports():
    assert nn.SyncBatchNorm is SyncBatchNorm
    assert nn.parallel.DistributedDataParallel is DistributedDataParallel


# A rank's share of a global batch, in one process: rank r of N simulated with
# global_batch(r, N); every rank's numbers, put together, must be one process's


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "batch_inner"])
@pytest.mark.parametrize("world", [2, 3])
def test_dropout_masks_of_the_shares_are_the_global_batch_mask(dtype, layout, world):
    n, shape = 2, (3, 5, 3)  # odd sizes: float32s share 64-bit outputs unevenly

    def batch(rows):
        x = np.ones((rows,) + shape, dtype=dtype)
        if layout == "channels_last":
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        elif layout == "batch_inner":  # the batch axis is not the outermost in memory
            x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
        return tinygan.tensor(x)

    for warm_up in (0, 1):  # a float32 draw before may leave half of an output kept
        tinygan.manual_seed(7)
        tinygan.rand(warm_up)
        whole = F.dropout(batch(n * world), 0.4).numpy()
        after = tinygan.rand(5).numpy()
        shares = []
        for rank in range(world):
            tinygan.manual_seed(7)
            tinygan.rand(warm_up)
            with dist.global_batch(rank, world):
                shares.append(F.dropout(batch(n), 0.4).numpy())
            assert np.array_equal(tinygan.rand(5).numpy(), after)  # the generator moved alike
        assert np.array_equal(np.concatenate(shares), whole)


def test_global_batch_is_a_world_of_one_outside_and_checks_its_rank():
    assert dist.batch_share() == (0, 1)
    with dist.global_batch(1, 4):
        assert dist.batch_share() == (1, 4)
        with dist.global_batch():  # the process group's own: a world of one here
            assert dist.batch_share() == (0, 1)
        assert dist.batch_share() == (1, 4)
    assert dist.batch_share() == (0, 1)
    with pytest.raises(ValueError, match="rank 2 is not a rank of a world of 2"):
        with dist.global_batch(2, 2):
            pass


def test_object_collectives_and_their_clock_in_a_world_of_one():
    objects = [{"a": 1}, None]
    dist.broadcast_object_list(objects, src=0)
    assert objects == [{"a": 1}, None]
    gathered = [None]
    dist.all_gather_object(gathered, ("x", 2))
    assert gathered == [("x", 2)]
    with pytest.raises(ValueError, match="object_list has 2 entries for a world of 1"):
        dist.all_gather_object([None, None], 1)
    assert dist.seconds_in_collectives() == 0.0


def test_start_up_helpers_in_a_world_of_one():
    assert init_from_launcher() == 1 and not dist.is_initialized()
    assert first_error(None) is None and first_error("bad") == "bad"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert threads_per_rank({"PMI_SIZE": "2", "MPI_LOCALNRANKS": "1"}) == cores
    assert threads_per_rank({"OMPI_COMM_WORLD_SIZE": "64"}) == 1  # ranks >= cores
    assert threads_per_rank({}) == cores

