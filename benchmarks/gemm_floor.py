"""How far each workload's CPU step is from the GEMM floor, and how much of it is split.

    python benchmarks/gemm_floor.py [--threads 1 2] [--steps 5] [--json]

The GEMM floor of a step is the time its matrix products would take at this machine's
measured peak: every convolution is im2col plus one product, so the products are nearly
all of a step's arithmetic (the rest is elementwise work, bound by memory). The FLOPs
are the textbook count, every kernel tap at every output pixel (what PyTorch's FLOP
counter gives); tinygan's CPU convolutions skip the taps that fall on the padding
(functional/conv_tiles.py), so the products it runs are fewer, and both are reported.
For each thread count this prints:

- the peak: a 2048 x 2048 x 2048 float32 product through tinygan.parallel.matmul (BLAS
  held at one thread, blocks on tinygan's threads), median of 5, in GFLOP/s;
- per workload (batch 64), the step's FLOPs in products (2mnk per product outside the
  convolutions, the textbook count for each convolution, counted as it runs), the
  floor (those FLOPs at the peak), the FLOPs tinygan's products ran, the step's median
  time, and its distance from the floor (step / floor);
- and where the step's wall time goes: inside matrix products (at the measured speed,
  not the peak's), and inside work split over threads (parallel.run with
  more than one part: blocks of products, im2col and col2im by images, BatchNorm and
  activations by images, Adam's large arrays), and everything else, on one core: products
  too small to split, elementwise ops NumPy runs whole, the autograd graph's Python.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time

import numpy as np

import tinygan
from tinygan import parallel
from tinygan.functional import conv
from tinygan.bench_models import WORKLOADS, build, tinygan_framework, train_step


def gemm_peak(threads: int, size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of one size^3 float32 product through parallel.matmul at `threads`."""
    tinygan.set_num_threads(threads)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    parallel.matmul(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        parallel.matmul(a, b)
        times.append(time.perf_counter() - start)
    return 2 * size ** 3 / statistics.median(times) / 1e9


def _conv_flops(op, args) -> int:
    """The textbook FLOPs of a convolution op's forward: 2 per kernel tap, output pixel,
    input and output channel (two such products for ConvTranspose2dGrad)."""
    if isinstance(op, conv.Conv2d):            # (x, W): pixels of its output
        x, w = args[:2]
        out = [conv.conv_output_size(x.shape[2 + a], w.shape[2 + a], op.stride[a],
                                     op.padding[a], op.dilation[a]) for a in (0, 1)]
        return 2 * x.shape[0] * out[0] * out[1] * w.size
    if isinstance(op, conv.ConvTranspose2d):   # (x, W): pixels of its input
        x, w = args[:2]
        return 2 * x.shape[0] * x.shape[2] * x.shape[3] * w.size
    if isinstance(op, conv.Conv2dWeight):      # (x, gy): pixels of gy
        x, gy = args
        return 2 * gy.shape[0] * gy.shape[2] * gy.shape[3] * gy.shape[1] * x.shape[1] * (
            op.kernel[0] * op.kernel[1])
    gy, x, w = args                            # ConvTranspose2dGrad: pixels of x, twice
    return 2 * 2 * x.shape[0] * x.shape[2] * x.shape[3] * w.size


class Meter:
    """Counts the FLOPs of a step's products, the textbook count (`flops`) and what
    parallel.matmul and parallel.multiply ran (`run_flops`), and the
    wall time inside products (the main thread's, for the products threads take as
    their own jobs) and inside split work."""
    CONVS = (conv.Conv2d, conv.ConvTranspose2d, conv.Conv2dWeight, conv.ConvTranspose2dGrad)

    def __init__(self):
        self.flops, self.run_flops, self.matmul_s, self.split_s = 0, 0, 0.0, 0.0
        self._matmul, self._multiply, self._run = parallel.matmul, parallel.multiply, parallel.run
        self._lock = threading.Lock()
        self._forwards = {cls: cls.forward for cls in self.CONVS}
        self._in_conv = 0

    def __enter__(self):
        def counted(forward):
            def wrapper(op, *args):
                self.flops += _conv_flops(op, args)
                self._in_conv += 1
                try:
                    return forward(op, *args)
                finally:
                    self._in_conv -= 1
            return wrapper

        def count(a, b):
            flops = 2 * a.shape[-2] * a.shape[-1] * b.shape[-1] * (
                a.shape[0] if a.ndim == 3 else 1)
            self.run_flops += flops
            if not self._in_conv:
                self.flops += flops

        def timed(fn, *args):
            start = time.perf_counter()
            try:
                return fn(*args)
            finally:
                self.matmul_s += time.perf_counter() - start

        def matmul(a, b):
            count(a, b)
            return timed(self._matmul, a, b)

        def multiply(a, b, out=None):  # on the threads' own: counted under a lock
            with self._lock:
                count(a, b)
            if threading.current_thread() is not threading.main_thread():
                return self._multiply(a, b, out)
            return timed(self._multiply, a, b, out)

        def run(fn, parts):
            if len(parts) < 2:
                return self._run(fn, parts)
            start = time.perf_counter()
            try:
                return self._run(fn, parts)
            finally:
                self.split_s += time.perf_counter() - start

        parallel.matmul, parallel.multiply, parallel.run = matmul, multiply, run
        for cls, forward in self._forwards.items():
            cls.forward = counted(forward)
        return self

    def __exit__(self, *exc):
        parallel.matmul, parallel.multiply, parallel.run = self._matmul, self._multiply, self._run
        for cls, forward in self._forwards.items():
            cls.forward = forward


def measure(workload: str, threads: int, steps: int, peak: float) -> dict:
    tinygan.set_num_threads(threads)
    setup = build(tinygan_framework("cpu"), workload, 64, 0)
    for _ in range(2):
        train_step(setup)
    times, products, split, flops, run_flops = [], [], [], 0, 0
    for _ in range(steps):
        with Meter() as meter:
            start = time.perf_counter()
            train_step(setup)
            times.append(time.perf_counter() - start)
        products.append(meter.matmul_s)
        split.append(meter.split_s)
        flops, run_flops = meter.flops, meter.run_flops
    ms = statistics.median(times) * 1000
    floor = flops / peak / 1e6
    return {"workload": workload, "threads": threads, "gemm_gflop": round(flops / 1e9, 2),
            "run_gflop": round(run_flops / 1e9, 2), "peak_gflops": round(peak, 1), "floor_ms": round(floor, 1),
            "ms_per_step": round(ms, 1), "over_floor": round(ms / floor, 2),
            "products_share": round(statistics.median(products) * 1000 / ms, 2),
            "split_share": round(statistics.median(split) * 1000 / ms, 2)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if not args.json:
        print("| workload | threads | GEMM GFLOP/step | GFLOP run | peak GFLOP/s | floor ms "
              "| step ms | step / floor | in products | in split work |\n"
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for threads in args.threads:
        peak = gemm_peak(threads)
        for workload in args.workloads:
            r = measure(workload, threads, args.steps, peak)
            print(json.dumps(r) if args.json else
                  f"| {workload} | {threads} | {r['gemm_gflop']} | {r['run_gflop']} | "
                  f"{r['peak_gflops']} | "
                  f"{r['floor_ms']} | {r['ms_per_step']} | {r['over_floor']} | "
                  f"{r['products_share']:.0%} | {r['split_share']:.0%} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
