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
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tinygan
import tinygan.distributed as dist
from tinygan import backend, data, nn
from tinygan import functional as F
from tinygan.gans import DataInfo, build, defaults, nets
from tinygan.gans.base import update
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


def mpiexec(*apps, n: int = 2) -> list:
    """The mpiexec command line running `apps` (each a command, list of str) on n ranks
    each, one after the other (MPMD: `-n 1 A : -n 1 B`), with python for "python"."""
    command = [MPIEXEC]
    version = subprocess.run([MPIEXEC, "--version"], capture_output=True, text=True).stdout
    if "Open MPI" in version:
        command.append("--oversubscribe")  # more ranks than cores is fine for tests
    for i, app in enumerate(apps):
        command += ([":"] if i else []) + ["-n", str(n)]
        command += [sys.executable if word == "python" else word for word in app]
    return command


def environment(device: str = "cpu", **extra) -> dict:
    return dict(os.environ, OPENBLAS_NUM_THREADS="1", TINYGAN_NUM_THREADS="1",
                TINYGAN_DEVICE=device, MPLBACKEND="Agg", **extra)


def launch(script: str, *args, n: int = 2, timeout: float = 120,
           device: str = "cpu") -> subprocess.CompletedProcess:
    """`mpiexec -n n python tests/distributed/<script> args`, its output in .stdout."""
    return subprocess.run(mpiexec(["python", str(WORKERS / script), *args], n=n), cwd=ROOT,
                          env=environment(device), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)


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
        "backend_is_nccl", "collectives_match_mpi", "numpy_arrays_go_over_mpi",
        "ddp_and_sync_batchnorm_on_the_gpu"], n=n)


@needs_mpi
def test_gan_training_and_evaluation_on_two_processes():
    assert_every_rank_passed(launch("gan_training.py", timeout=240), [
        "variants_train_as_on_one_process", "sync_batchnorm_in_dcgan",
        "evaluation_gives_the_scores_of_one_process"])


# The commands under mpiexec -n 2: `python -m tinygan.train` and `python -m tinygan.study`

TRAIN = ["python", "-m", "tinygan.train"]


def run_command(command, tmp_path, timeout=240, **env):
    return subprocess.run(command, cwd=tmp_path, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout,
                          env=environment(XDG_CACHE_HOME=str(tmp_path / "cache"), **env))


def loss_table(folder, name="losses.csv"):
    with open(os.path.join(folder, name)) as f:
        header = f.readline().strip().split(",")
    return header, np.loadtxt(os.path.join(folder, name), delimiter=",", skiprows=1, ndmin=2)


@needs_mpi
@pytest.mark.parametrize("argv, exact_rows, rtol", [
    (["vanilla", "ring8", "--batch-size", "8", "--eval-every", "20"], 20, 2e-5),
    (["dcgan", "mnist-10k", "--batch-size", "8"], 10, 1e-4),
], ids=["vanilla-ring8", "dcgan-mnist-10k"])
def test_two_processes_train_the_one_process_gan(argv, exact_rows, rtol, tmp_path):
    """The same losses, row by row, as one process (6 digits, as losses.csv writes them),
    for the first `exact_rows` steps; after that, in DCGAN, a difference of the last bits
    grows: Adam divides each gradient by its own size, so the parameters whose gradient
    is only rounding noise (|g| ~ eps = 1e-8) move by up to lr on either run alike, and
    the game amplifies such differences, as it would any change of the order of the sums.
    How soon depends on the seed and on how the products round: over seeds 0-3, two
    versions of the convolutions first differ beyond 2e-5 at steps 10-43 and by up to
    1.6e-2 at step 60; with OpenBLAS's Haswell kernel (AMD's Zen cores) DCGAN's first
    ten rows differed by up to 3.7e-5, hence 1e-4 there (the first gradients themselves
    are compared in tests/distributed/gan_training.py). The vanilla GAN drifts too, only
    later: with the SkylakeX kernel (an Intel Xeon), over seeds 0-4, its rows first differ
    beyond 2e-5 at steps 53, 36 and 49 (seeds 0, 2, 3; never for 1 and 4), by up to 3.1e-3
    at step 60, hence 20 rows. The evaluations up to then (the mode count too: it is 3
    against 5 at step 60 for seed 2 once the runs drift) and the checkpoint format are the same."""
    common = argv + ["--steps", "60", "--sample-every", "1000", "--no-progress"]
    one = run_command(TRAIN + common + ["--out", "one"], tmp_path)
    two = run_command(mpiexec(TRAIN + common + ["--out", "two"]), tmp_path)
    assert one.returncode == 0 and two.returncode == 0, one.stdout + two.stdout
    assert two.stdout.count("done: 60 steps") == 1  # rank 0 alone reports
    header, alone = loss_table(tmp_path / "one")
    assert loss_table(tmp_path / "two")[0] == header
    together = loss_table(tmp_path / "two")[1]
    assert together.shape == alone.shape == (60, len(header))
    np.testing.assert_allclose(together[:exact_rows], alone[:exact_rows], rtol=rtol)
    np.testing.assert_allclose(together, alone, rtol=2.5e-2)
    if "--eval-every" in argv:
        scores = [loss_table(tmp_path / out, "metrics.csv")[1] for out in ("two", "one")]
        early = [table[table[:, 0] <= exact_rows] for table in scores]
        assert len(early[0]) == len(early[1]) >= 1
        np.testing.assert_allclose(early[0], early[1], rtol=1e-3)
    a = tinygan.load(tmp_path / "one" / "checkpoints" / "latest.npz")
    b = tinygan.load(tmp_path / "two" / "checkpoints" / "latest.npz")
    assert (a["processes"], b["processes"]) == (1, 2) and a["step"] == b["step"] == 60
    for part in ("G", "D", "opt_g", "opt_d"):
        assert a["gan"][part].keys() == b["gan"][part].keys()


@needs_mpi
def test_a_killed_two_process_run_resumes_bit_identically(tmp_path):
    common = ["vanilla", "ring8", "--batch-size", "8", "--steps", "160",
              "--checkpoint-every", "20", "--sample-every", "1000", "--no-progress"]
    assert run_command(mpiexec(TRAIN + common + ["--out", "A"]), tmp_path).returncode == 0
    env = environment(XDG_CACHE_HOME=str(tmp_path / "cache"))
    job = subprocess.Popen(mpiexec(TRAIN + common + ["--out", "B"]), cwd=tmp_path, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)  # its own process group: all of it dies
    checkpoint = tmp_path / "B" / "checkpoints" / "latest.npz"
    try:
        while job.poll() is None and _rows(tmp_path / "B") < 45:
            time.sleep(0.05)
    finally:
        os.killpg(job.pid, signal.SIGKILL)  # mpiexec and both ranks, mid-run
        job.wait()
    saved = int(tinygan.load(checkpoint)["step"])
    assert 20 <= saved < 160
    resumed = run_command(mpiexec(TRAIN + ["--resume", "B", "--no-progress"]), tmp_path)
    assert resumed.returncode == 0, resumed.stdout
    assert "took over the lock" in resumed.stdout
    a = tinygan.load(tmp_path / "A" / "checkpoints" / "latest.npz")
    b = tinygan.load(checkpoint)
    for name, x, y in _leaves_of(a, b):
        assert (np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y), name
    assert (tmp_path / "A" / "losses.csv").read_bytes() == (
        tmp_path / "B" / "losses.csv").read_bytes()


def _rows(folder) -> int:
    try:
        return (folder / "losses.csv").read_text().count("\n") - 1
    except FileNotFoundError:
        return 0


def _leaves_of(a, b, name=""):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), name
        for key in a:
            yield from _leaves_of(a[key], b[key], f"{name}/{key}")
    elif isinstance(a, (list, tuple)):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _leaves_of(x, y, f"{name}/{i}")
    elif name != "/logs/losses.csv":  # compared as bytes
        yield name, getattr(a, "data", a), getattr(b, "data", b)


def image_folder(root, classes=2, per_class=4):
    """A folder: dataset of random 28x28 PNGs, a sub-folder per class."""
    from PIL import Image  # only these tests make images
    rng = np.random.default_rng(0)
    for k in range(classes):
        (root / f"class{k}").mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (28, 28), dtype=np.uint8)
            Image.fromarray(pixels).save(root / f"class{k}" / f"{i}.png")


def _in(folder, *command):
    """A command started in `folder` (each rank of an MPMD launch its own folder)."""
    return ["sh", "-c", 'cd "$0" && exec "$@"', str(folder), *command]


@needs_mpi
def test_data_missing_on_one_rank_stops_every_rank_and_rank_0_alone_writes(tmp_path):
    for rank in ("0", "1"):
        (tmp_path / rank).mkdir()
    image_folder(tmp_path / "0" / "images")
    argv = TRAIN + ["dcgan", "folder:images", "--batch-size", "4", "--steps", "3",
                    "--no-progress", "--out", "run"]
    missing = run_command(mpiexec(_in(tmp_path / "0", *argv), _in(tmp_path / "1", *argv),
                                  n=1), tmp_path, timeout=60)
    assert missing.returncode == 2, missing.stdout
    assert missing.stdout.count("error: rank 1 of 2: ") == 1, missing.stdout
    assert "images: not a folder" in missing.stdout and "Traceback" not in missing.stdout
    assert not (tmp_path / "0" / "run" / "config.json").exists()  # stopped before writing
    shutil.copytree(tmp_path / "0" / "images", tmp_path / "1" / "images")
    both = run_command(mpiexec(_in(tmp_path / "0", *argv), _in(tmp_path / "1", *argv),
                               n=1), tmp_path, timeout=120)
    assert both.returncode == 0, both.stdout
    assert sorted(os.listdir(tmp_path / "1")) == ["images"]  # nothing written by rank 1
    written = tmp_path / "0" / "run"
    assert (written / "config.json").exists() and (written / "losses.csv").exists()
    assert tinygan.load(written / "checkpoints" / "latest.npz")["processes"] == 2


@needs_mpi
def test_a_rank_failing_mid_run_ends_the_job_with_its_error(tmp_path):
    argv = ["dcgan", "mnist-10k", "--batch-size", "4", "--steps", "50", "--no-progress",
            "--out", "run"]
    # rank 1's optimiser breaks at its third update (step 2's), after rank 0 went on
    failed = run_command(mpiexec(TRAIN + argv, ["python", "-c", FAILS_AT_ITS_THIRD_UPDATE,
                                                *argv], n=1), tmp_path, timeout=60)
    assert failed.returncode != 0
    assert "ValueError: rank 1's third optimiser update fails" in failed.stdout, failed.stdout
    assert "rank 1 of 2 failed; stopping every rank" in failed.stdout


FAILS_AT_ITS_THIRD_UPDATE = """
import sys
from tinygan import train
from tinygan.optim.optimizer import Optimizer
step, updates = Optimizer.step, []
def failing(self, *args, **kwargs):
    updates.append(1)
    if len(updates) == 3:
        raise ValueError("rank 1's third optimiser update fails")
    return step(self, *args, **kwargs)
Optimizer.step = failing
sys.exit(train.main(sys.argv[1:]))
"""


@needs_mpi
def test_a_study_on_two_processes_is_the_one_process_study_to_the_bit(tmp_path):
    argv = ["python", "-m", "tinygan.study", "mode-collapse", "--seeds", "1", "--steps",
            "60", "--methods", "vanilla", "pacgan2", "--datasets", "ring8"]
    one = run_command(argv + ["--workers", "1", "--out", "one"], tmp_path)
    two = run_command(mpiexec(argv + ["--out", "two"]), tmp_path)
    assert one.returncode == 0 and two.returncode == 0, one.stdout + two.stdout
    runs = sorted(os.listdir(tmp_path / "one" / "runs"))
    assert len(runs) == 2 and runs == sorted(os.listdir(tmp_path / "two" / "runs"))
    for name in runs:
        a, b = (json.loads((tmp_path / which / "runs" / name).read_text())
                for which in ("one", "two"))
        a["run"].pop("seconds")
        b["run"].pop("seconds")
        assert a == b, name
    assert two.stdout.count("wall time") == 1  # rank 0 alone reports
    refused = run_command(mpiexec(argv + ["--workers", "2", "--out", "three"]), tmp_path)
    assert refused.returncode == 2
    assert refused.stdout.count("error: --workers: the 2 processes") == 1


@needs_mpi
def test_bench_times_the_step_on_one_and_on_two_processes(tmp_path):
    bench = [sys.executable, "-m", "tinygan.bench", "vanilla-mnist", "--steps", "2",
             "--warmup", "1", "--json", "--nproc", "2"]
    done = run_command(bench + ["--batch", "8"], tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [r["processes"] for r in results] == [1, 2]
    one, two = results
    assert one["comm_ms"] == 0 < two["comm_ms"] and one["threads"] == two["threads"] == 1
    assert one["speedup"] == one["efficiency"] == 1.0
    assert two["speedup"] == round(one["ms_per_step"] / two["ms_per_step"], 2)
    assert abs(two["efficiency"] - two["speedup"] / 2) <= 0.006
    odd = run_command(bench + ["--batch", "7"], tmp_path, timeout=60)
    assert odd.returncode == 1 and "--batch 7 does not split into 2 equal shares" in odd.stdout


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


def _gan(variant="vanilla", dataset="ring8", **settings):
    info = DataInfo.of(data.load(dataset))
    config = dict(defaults(variant, info), variant=variant, dataset=dataset, seed=0,
                  device="cpu", **settings)
    tinygan.manual_seed(0)
    return build(variant, config, info)


def test_z_of_the_shares_is_one_process_z():
    gan = _gan()
    tinygan.manual_seed(3)
    whole, after = gan.sample_z(8).numpy(), tinygan.rand(2).numpy()
    shares = []
    for rank in range(4):
        gan.rank, gan.world = rank, 4  # what data_parallel() sets on rank r of 4
        tinygan.manual_seed(3)
        shares.append(gan.sample_z(2).numpy())
        assert np.array_equal(tinygan.rand(2).numpy(), after)
    assert np.array_equal(np.concatenate(shares), whole)


def test_evaluation_shares_of_samples_are_the_rows_of_all_samples():
    gan = _gan("dcgan", "mnist-10k")
    every = gan.samples(10, seed=4, batch_size=4)
    parts = [gan.samples(10, seed=4, batch_size=4, rows=slice(a, b))
             for a, b in ((0, 3), (3, 10))]
    np.testing.assert_allclose(np.concatenate(parts), every, rtol=0, atol=1e-6)  # equal here


def test_update_gives_gradients_to_the_optimisers_parameters_only():
    """G's loss goes through D with D's weights held fixed: D's .grad stays as it was
    (D's update's business), and G's gradients are those of a plain backward."""
    gan, twin = _gan(), _gan()
    z = tinygan.randn(6, gan.z_dim)
    for net in (gan.D, twin.D):
        for p in net.parameters():
            p.grad = None
    update(gan.opt_g, gan.generator_loss(None, gan.G(z)))
    twin.opt_g.zero_grad()
    twin.generator_loss(None, twin.G(z)).backward()
    twin.opt_g.step()
    for net in (gan.D, twin.D):
        assert all(p.grad is None and p.requires_grad for p in net.parameters())
    for p, q in zip(gan.G.parameters(), twin.G.parameters()):
        assert p.grad is not None
        assert np.array_equal(p.grad.numpy(), q.grad.numpy())
        assert np.array_equal(p.detach().numpy(), q.detach().numpy())


@pytest.mark.parametrize("settings, message", [
    (dict(minibatch_discrimination=True), "--minibatch-discrimination compares each sample"),
    (dict(pack=4, batch_size=8), "--pack 4: each of the 4 processes' share of the batch, 2"),
])
def test_what_cannot_split_over_processes_is_refused(monkeypatch, settings, message):
    monkeypatch.setattr(dist, "get_world_size", lambda: 4)
    gan = _gan(**settings)
    with pytest.raises(ValueError, match=message):
        gan.data_parallel()


def test_features_read_another_way_are_refused_on_several_processes(monkeypatch):
    """Feature matching takes the global batch's features through GAN.d_features (cgan's
    too: tests/distributed/gan_training.py); a variant reading them its own way would
    match each rank's share only, and is refused."""
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    gan = _gan("vanilla", "ring8", feature_matching=True)

    class OwnFeatures(type(gan)):
        def d_features(self, x, labels=None):
            return self.D.features(x)
    gan.__class__ = OwnFeatures
    with pytest.raises(ValueError, match="vanilla: --feature-matching reads D's features"):
        gan.data_parallel()


