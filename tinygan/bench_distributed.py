"""`python -m tinygan.bench WORKLOAD --nproc N [N ...]`: a training step on N processes.

The step of bench_models.train_step, data-parallel: `--batch` stays the whole batch, each
of the N ranks (started by `mpiexec -n N`) steps its share of it through
DistributedDataParallel (and SyncBatchNorm where the networks have BatchNorm), with
`--threads` BLAS threads each. Reported, beside one process with the same threads per
process:

  ms_per_step     the median over timed steps of the slowest rank's step
  speedup         one process's step time / N processes'
  efficiency      speedup / N: 1.0 when N processes do the step N times faster
  comm_ms         the median time a rank spends in collectives per step (the all-reduces
                  of DDP's buckets and SyncBatchNorm's sums, and any wait for a slower
                  rank), and comm_share, its part of the step

Each count of processes is a fresh `mpiexec -n N python -m tinygan.bench_distributed`;
this module's main() is what each rank runs.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

from . import backend, distributed, launch
from .bench_models import WORKLOADS, build, tinygan_framework, train_step
from .nn import SyncBatchNorm
from .nn.parallel import DistributedDataParallel

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "TINYGAN_NUM_THREADS")


def mpiexec() -> str:
    """The mpiexec beside this Python (where the mpich wheel puts it), else on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    found = here if os.path.exists(here) else shutil.which("mpiexec")
    if found is None:
        raise RuntimeError('--nproc needs an MPI launcher, mpiexec: pip install -e '
                           '".[distributed]"')
    return found


def scaling(workload: str, nprocs, device: str = "cpu", batch: int = 64, steps: int = 10,
            warmup: int = 2, threads: int = 1, seed: int = 0) -> list:
    """One result per count of processes (1 first, as the baseline), each with its
    speedup and efficiency against one process."""
    results, counts = [], sorted({1, *nprocs})
    for n in counts:
        if batch % n:
            raise ValueError(f"--batch {batch} does not split into {n} equal shares")
        results.append(_launch(workload, n, device, batch, steps, warmup, threads, seed))
    one = results[0]["ms_per_step"]
    for r in results:
        r["speedup"] = round(one / r["ms_per_step"], 2)
        r["efficiency"] = round(one / r["ms_per_step"] / r["processes"], 2)
    return results


def _launch(workload, n, device, batch, steps, warmup, threads, seed) -> dict:
    command = [mpiexec(), "-n", str(n)]
    version = subprocess.run(command[:1] + ["--version"], capture_output=True, text=True)
    if "Open MPI" in version.stdout:
        command.append("--oversubscribe")
    command += [sys.executable, "-m", "tinygan.bench_distributed", workload, "--device",
                device, "--batch", str(batch), "--steps", str(steps), "--warmup",
                str(warmup), "--seed", str(seed)]
    env = dict(os.environ, TINYGAN_DEVICE=device,  # the device chooses the backend
               **{name: str(threads) for name in THREAD_VARIABLES})
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{workload} on {n} processes failed: {tail[0]}")
    return dict(json.loads(lines[-1]), threads=threads)


def run_rank(workload: str, device: str, batch: int, steps: int, warmup: int,
             seed: int) -> dict:
    """Time the data-parallel step on this rank; every rank returns the same summary."""
    world = distributed.get_world_size()
    setup = build(tinygan_framework(device), workload, batch // world, seed)
    setup.G, setup.D = (DistributedDataParallel(SyncBatchNorm.convert_sync_batchnorm(net),
                                                broadcast_buffers=False)
                        for net in (setup.G, setup.D))
    sync = _synchronizer(device)
    times, comm = [], []
    for i in range(warmup + steps):
        distributed.barrier()  # every rank starts the step together
        start, before = time.perf_counter(), distributed.seconds_in_collectives()
        loss_d, loss_g = train_step(setup)
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - start)
            comm.append(distributed.seconds_in_collectives() - before)
    slowest, comm = np.array(times), np.array(comm)
    distributed.all_reduce(slowest, distributed.ReduceOp.MAX)
    distributed.all_reduce(comm, distributed.ReduceOp.AVG)
    ms, comm_ms = statistics.median(slowest) * 1000, statistics.median(comm) * 1000
    return {"workload": workload, "device": device, "batch": batch, "processes": world,
            "ms_per_step": round(ms, 2), "ms_min": round(float(slowest.min()) * 1000, 2),
            "ms_max": round(float(slowest.max()) * 1000, 2), "comm_ms": round(comm_ms, 2),
            "comm_share": round(comm_ms / ms, 3), "steps": steps, "warmup": warmup,
            "loss_d": float(loss_d.item()), "loss_g": float(loss_g.item())}


def _synchronizer(device: str):
    if device == "cpu":
        return lambda: None
    return lambda: backend.cupy_module().cuda.Device().synchronize()


def format_result(r: dict) -> str:
    return (f"{r['workload']:<14} {r['device']:<4} batch {r['batch']:>4} on "
            f"{r['processes']:>2} x {r['threads']} thread(s): {r['ms_per_step']:>8.1f} ms/step"
            f"  speedup {r['speedup']:.2f}  efficiency {r['efficiency']:.2f}  "
            f"in collectives {r['comm_ms']:.1f} ms ({100 * r['comm_share']:.0f}%)")


def report(workloads, nprocs, device: str, batch: int, steps: int, warmup: int,
           threads: int, seed: int, as_json: bool) -> int:
    """What `python -m tinygan.bench ... --nproc N` prints: a line (or JSON) per count."""
    failed = False
    for workload in workloads:
        try:
            results = scaling(workload, nprocs, device, batch, steps, warmup, threads, seed)
        except (RuntimeError, ValueError) as e:
            failed = True
            print(f"{workload}: {e}", flush=True)
            continue
        for r in results:
            print(json.dumps(r) if as_json else format_result(r), flush=True)
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinygan.bench_distributed",
                                     description="One rank of `tinygan.bench --nproc`.")
    parser.add_argument("workload", choices=WORKLOADS)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    launch.init_from_launcher()
    with distributed.abort_on_error():
        result = run_rank(args.workload, args.device, args.batch, args.steps, args.warmup,
                          args.seed)
        if distributed.get_rank() == 0:
            print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
