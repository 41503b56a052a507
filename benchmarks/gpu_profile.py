"""Where a training step's time goes on the GPU: kernels' time against the step's wall time.

    python benchmarks/gpu_profile.py WORKLOAD [--framework tinygan|torch] [--steps 20]

Runs a workload of `python -m tinygan.bench` on CUDA and prints
- the wall time of a step (synchronised), and the host time to issue it (not synchronised);
- the GPU time of its kernels, their number per step, and the heaviest kernels, read by
  PyTorch's profiler through CUPTI, which sees every CUDA kernel of the process, CuPy's too;
- for tinygan, the host-side profile (cProfile) of the same steps.
A step whose kernels keep the GPU busy for much less than its wall time is bound by the
host: launches and Python, not arithmetic. Needs CuPy, a GPU and PyTorch (for its profiler).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time

from tinygan import bench


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("workload", choices=bench.WORKLOADS)
    p.add_argument("--framework", choices=("tinygan", "torch"), default="tinygan")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--top", type=int, default=25, help="rows of each table")
    p.add_argument("--overhead", action="store_true",
                   help="first, the host time of single small operations (CuPy and tinygan)")
    args = p.parse_args(argv)
    if args.overhead:
        overhead()

    from torch.profiler import ProfilerActivity, profile

    fw = bench.framework_for(args.framework, "cuda")
    setup = bench.build(fw, args.workload, args.batch, 0)
    sync = bench._synchronizer(args.framework, "cuda")
    for _ in range(5):
        bench.train_step(setup)
    sync()

    start = time.perf_counter()
    for _ in range(args.steps):
        bench.train_step(setup)
        sync()
    wall = (time.perf_counter() - start) / args.steps * 1e3

    start = time.perf_counter()
    for _ in range(args.steps):
        bench.train_step(setup)
    issue = (time.perf_counter() - start) / args.steps * 1e3
    sync()

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(args.steps):
            bench.train_step(setup)
        sync()
    kernels = [e for e in prof.key_averages()
               if getattr(e, "device_type", None) is not None and "CUDA" in str(e.device_type)]
    gpu_us = sum(e.self_device_time_total for e in kernels) / args.steps
    launches = sum(e.count for e in kernels) / args.steps
    print(f"{args.framework} {args.workload} batch {args.batch} on CUDA: wall {wall:.2f} ms a "
          f"step, host issue {issue:.2f} ms, GPU kernels {gpu_us / 1e3:.2f} ms in "
          f"{launches:.0f} launches a step")
    if not kernels:  # a profiler that names its events otherwise: its own table
        print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=args.top))
    kernels.sort(key=lambda e: -e.self_device_time_total)
    print(f"{'kernel':70s} {'calls/step':>10s} {'us/step':>9s}")
    for e in kernels[:args.top]:
        print(f"{e.key[:70]:70s} {e.count / args.steps:10.1f} "
              f"{e.self_device_time_total / args.steps:9.1f}")

    if args.framework == "tinygan":
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.steps):
            bench.train_step(setup)
        sync()
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(args.top)
        print(text.getvalue())


def overhead(repeat: int = 2000) -> None:
    """Host microseconds per call of small operations: what a launch-bound step is made of."""
    import cupy as cp

    import tinygan
    from tinygan.kernels import activation, im2col
    from tinygan.kernels.reduce import sum_over

    a, b = cp.ones((64, 64), cp.float32), cp.ones((64, 64), cp.float32)
    x = cp.ones((8, 4, 6, 6), cp.float32)
    t = tinygan.tensor(cp.ones((64, 64), cp.float32), requires_grad=True)
    cases = {
        "cupy a + b": lambda: a + b,
        "cupy empty": lambda: cp.empty((64, 64), cp.float32),
        "cupy reshape (view)": lambda: a.reshape(16, 256),
        "cupy reshape (copy)": lambda: a.T.reshape(16, 256),
        "cupy a @ b": lambda: a @ b,
        "cupy a.sum(axis=0)": lambda: a.sum(axis=0),
        "sum_over(x, (0,2,3))": lambda: sum_over(x, (0, 2, 3)),
        "ElementwiseKernel leaky_relu": lambda: activation.leaky_relu_forward(a, 0.2),
        "RawKernel im2col": lambda: im2col.im2col(x, (3, 3), (1, 1), (1, 1), (1, 1), (6, 6)),
        "tinygan t + t (graph)": lambda: t + t,
        "tinygan (t * t).sum().backward()": lambda: (t * t).sum().backward(),
    }
    print(f"{'operation':36s} {'us/call':>8s}")
    for name, fn in cases.items():
        for _ in range(20):
            fn()
        cp.cuda.Device().synchronize()
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        host = (time.perf_counter() - start) / repeat * 1e6
        cp.cuda.Device().synchronize()
        print(f"{name:36s} {host:8.1f}")


if __name__ == "__main__":
    main()
