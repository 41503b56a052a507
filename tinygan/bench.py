"""`python -m tinygan.bench WORKLOAD`: milliseconds per training step, beside PyTorch.

A step is one discriminator (critic) update on a real and a fake batch, then one generator
update, in float32 (the workloads are in bench_models.py and BENCHMARKS.md). The time is
the median over `--steps` timed steps after `--warmup` untimed ones; on CUDA each step ends
with a device synchronisation, so the time is the step's, not its launch's.

Each library runs in a fresh child process (`--only tinygan|torch`), one after the other,
so that neither sees the other's memory, caches or thread pools, and both get the same
thread count (`--threads N`: TINYGAN/OMP/OPENBLAS/MKL_NUM_THREADS, and
torch.set_num_threads). `--threads auto`, the default, is what a training run does
without a flag: tinygan's ThreadTuner picks the count in the untimed warm-up steps
(made long enough for its trial) and keeps checking; PyTorch gets its own default, every
core. `--busy-core` times tinygan at 1 thread, 2 threads and auto while another process
keeps one core busy. `--cuda-graph` runs tinygan's step as a CUDA graph (cuda/graphs.py:
captured after the warm-up, replayed once per step; PyTorch stays eager), or eagerly with
the reason in "cuda_graph" where the step cannot be captured; the graph's private memory
pool counts in its peak. Peak memory is measured the same way for both
(bench_memory.py).

PyTorch is never a dependency: it is imported only in the comparison, which is skipped
with a one-line message where it is not installed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from . import bench_distributed
from .bench_memory import MB, memory_meter
from . import threads as tinygan_threads
from .bench_models import WORKLOADS, build, tinygan_framework, torch_framework, train_step
from .cuda.graphs import GraphedStep

SCALING_BATCHES = (16, 32, 64, 128, 256)
FRAMEWORKS = ("tinygan", "torch")
THREAD_VARIABLES = ("TINYGAN_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "MKL_NUM_THREADS")
AUTO = "auto"
TORCH_MISSING = "tinygan.bench: PyTorch is not installed; skipping --compare torch"


def _synchronizer(framework: str, device: str):
    if device == "cpu":
        return lambda: None
    if framework == "torch":
        import torch
        return torch.cuda.synchronize
    from . import backend
    return lambda: backend.cupy_module().cuda.Device().synchronize()


# ------------------------------------------------------------------------ one workload


def framework_for(framework: str, device: str = "cpu", threads: int | str | None = None):
    """The Framework of `tinygan` or `torch`, on `threads` threads (None or "auto": each
    library's default; tinygan's tuner is started by `run`)."""
    count = None if threads in (None, AUTO) else int(threads)
    if framework == "tinygan":
        if count is not None:
            tinygan_threads.set_num_threads(count)
        return tinygan_framework(device)
    if framework == "torch":
        import torch
        torch.set_num_threads(count or tinygan_threads.cores())
        return torch_framework(device)
    raise ValueError(f"unknown framework {framework!r}: expected one of {FRAMEWORKS}")


def _torch_flops(setup) -> float | None:
    """Floating-point operations of one step, as counted by torch's FlopCounterMode."""
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return None
    try:
        with FlopCounterMode(display=False) as counter:
            train_step(setup)
    except RuntimeError:  # the counter cannot follow autograd.grad (the WGAN-GP penalty)
        return None
    return float(counter.get_total_flops())


def run(workload: str, device: str = "cpu", batch: int = 64, steps: int = 10, warmup: int = 2,
        framework: str = "tinygan", threads: int | str | None = None, seed: int = 0,
        cuda_graph: bool = False) -> dict:
    """Time `steps` training steps of a workload in this process, after `warmup` steps.

    With threads "auto" tinygan's ThreadTuner runs after every step, as in training, and
    the warm-up lasts at least its first trial. Returns {"workload", "device", "batch",
    "framework", "ms_per_step" (median), "ms_per_sample", "ms_min", "ms_max", "steps",
    "warmup", "threads", "peak_mb", "loss_d", "loss_g", ...}; with `cuda_graph` (tinygan on
    cuda) also "cuda_graph": "replayed", or why the step ran eagerly.
    """
    if steps < 1 or warmup < 0 or batch < 2:
        raise ValueError(f"bench: need steps >= 1, warmup >= 0 and batch >= 2, got steps "
                         f"{steps}, warmup {warmup}, batch {batch}")
    fw = framework_for(framework, device, threads)
    setup = build(fw, workload, batch, seed)
    sync = _synchronizer(framework, device)
    tuner = None
    if threads == AUTO and framework == "tinygan" and device == "cpu":
        tuner = tinygan_threads.ThreadTuner(report=lambda line: print(line, file=sys.stderr))
        warmup = max(warmup, tuner.trial_length)

    def step():
        return train_step(setup)

    graphed = None
    if cuda_graph:
        if framework != "tinygan" or device != "cuda":
            raise ValueError("bench: --cuda-graph is for tinygan on --device cuda")
        # the real batch is the same every step here, so the graph has no inputs to refresh
        graphed = GraphedStep(step, [], warmup=min(warmup, 3),
                              report=lambda line: print(line, file=sys.stderr))
        step = graphed

    meter = memory_meter(framework, device)
    meter.start()
    times, cpu = [], []  # wall and CPU milliseconds (CPU: every thread's, waits aside)
    for i in range(warmup + steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        loss_d, loss_g = step()
        sync()
        elapsed = time.perf_counter() - start
        if tuner is not None:
            tuner()
        if i >= warmup:
            times.append(elapsed * 1000.0)
            cpu.append((time.process_time() - cpu_start) * 1000.0)
    loss_d, loss_g = float(loss_d.item()), float(loss_g.item())
    memory = meter.finish(step)

    ms = statistics.median(times)
    result = {
        "workload": workload, "device": device, "batch": batch, "framework": framework,
        "ms_per_step": round(ms, 2), "ms_per_sample": round(ms / batch, 4),
        "ms_min": round(min(times), 2), "ms_max": round(max(times), 2),
        "cpu_ms_per_step": round(statistics.median(cpu), 2),
        "steps": steps, "warmup": warmup, "threads": _threads_in_use(framework),
        **memory, "loss_d": loss_d, "loss_g": loss_g,
    }
    if tuner is not None:
        result["threads_auto"] = tuner.state_dict()
    if graphed is not None:
        result["cuda_graph"] = "replayed" if graphed.graph is not None else graphed.fallback
        if graphed.graph is not None:  # what the replays use lives in the graph's own pool
            result["peak_mb"] = round(result["peak_mb"]
                                      + graphed.graph.pool.total_bytes() / MB, 1)
    if framework == "torch" and device == "cpu":
        flops = _torch_flops(setup)
        if flops is not None:
            result["gflop_per_step"] = round(flops / 1e9, 3)
    return result


def _threads_in_use(framework: str) -> int:
    if framework == "torch":
        import torch
        return torch.get_num_threads()
    return tinygan_threads.get_num_threads()


# ----------------------------------------------------------- child processes, comparison


def torch_available() -> bool:
    """True when PyTorch imports (the comparison needs it; tinygan never does)."""
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def run_isolated(framework: str, workload: str, device: str, batch: int, steps: int,
                 warmup: int, threads: int | str, seed: int = 0,
                 cuda_graph: bool = False) -> dict:
    """`run` in a fresh Python process with `threads` threads (or "auto")."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    if threads != AUTO:
        env.update({name: str(threads) for name in THREAD_VARIABLES})
    command = [sys.executable, "-m", "tinygan.bench", workload, "--only", framework, "--json",
               "--device", device, "--batch", str(batch), "--steps", str(steps),
               "--warmup", str(warmup), "--threads", str(threads), "--seed", str(seed)]
    if cuda_graph:
        command.append("--cuda-graph")
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{framework} {workload} (batch {batch}) failed: {tail[0]}")
    return json.loads(lines[-1])


def measure(workload: str, device: str, batch: int, steps: int, warmup: int,
            threads: int | str, compare: bool, seed: int = 0, rounds: int = 1,
            cuda_graph: bool = False) -> dict:
    """tinygan's numbers, and torch's with their ratio when `compare`: the two libraries
    alternate `rounds` times, each going first in every other round, and times and peaks
    are medians over the rounds; one dict."""
    runs = {"tinygan": [], "torch": []}
    for r in range(rounds):
        order = FRAMEWORKS if r % 2 == 0 else FRAMEWORKS[::-1]
        for framework in order if compare else ("tinygan",):
            runs[framework].append(run_isolated(framework, workload, device, batch, steps,
                                                warmup, threads, seed,
                                                cuda_graph and framework == "tinygan"))
    ours = _medians(runs["tinygan"])
    result = {key: ours[key] for key in ("workload", "device", "batch", "ms_per_step",
                                         "peak_mb", "ms_per_sample", "ms_min", "ms_max",
                                         "cpu_ms_per_step", "steps", "warmup", "threads",
                                         "traced_peak_mb", "loss_d", "loss_g", "peak_note",
                                         "threads_auto", "cuda_graph") if key in ours}
    if compare:
        theirs = _medians(runs["torch"])
        result.update(torch_ms_per_step=theirs["ms_per_step"], torch_peak_mb=theirs["peak_mb"],
                      ratio=round(ours["ms_per_step"] / theirs["ms_per_step"], 2),
                      torch_cpu_ms_per_step=theirs["cpu_ms_per_step"],
                      cpu_ratio=round(ours["cpu_ms_per_step"] / theirs["cpu_ms_per_step"], 2),
                      torch_threads=theirs["threads"])
        if "gflop_per_step" in theirs:
            result["gflop_per_step"] = theirs["gflop_per_step"]
    if rounds > 1:
        result["rounds"] = rounds
    return result


def _medians(results: list) -> dict:
    """The first run's dict, with its times and peaks the medians over all runs."""
    out = dict(results[0])
    for key in ("ms_per_step", "ms_per_sample", "cpu_ms_per_step", "peak_mb"):
        values = [r[key] for r in results if r.get(key) is not None]
        out[key] = round(statistics.median(values), 4) if values else out.get(key)
    return out


def _format(r: dict) -> str:
    if "error" in r:
        return f"{r['workload']:<14} {r['device']:<4} batch {r['batch']:>4}  ERROR {r['error']}"
    text = (f"{r['workload']:<14} {r['device']:<4} batch {r['batch']:>4}  "
            f"tinygan {r['ms_per_step']:>9.1f} ms/step ({r['ms_per_sample']:.3f} ms/sample)  "
            f"peak {_mb(r.get('peak_mb'))}")
    if "torch_ms_per_step" in r:
        text += (f"  | torch {r['torch_ms_per_step']:>8.1f} ms/step  "
                 f"peak {_mb(r.get('torch_peak_mb'))}  | ratio {r['ratio']:.2f}")
    return text


def _mb(value) -> str:
    return "   n/a" if value is None else f"{value:>7.1f} MB"


def measure_busy(workload: str, device: str, batch: int, steps: int, warmup: int,
                 rounds: int, seed: int = 0) -> dict:
    """tinygan at 1 thread, 2 threads and auto, one after the other, `rounds` times, while
    another process keeps one core busy; medians, and auto's against the better of 1 and 2."""
    times, chosen = {1: [], 2: [], AUTO: []}, []
    with tinygan_threads.busy_core() as load:
        for _ in range(rounds):
            for t in times:
                r = run_isolated("tinygan", workload, device, batch, steps, warmup, t, seed)
                times[t].append(r["ms_per_step"])
                chosen += [r["threads"]] if t == AUTO else []
    ms = {t: statistics.median(v) for t, v in times.items()}
    return {"workload": workload, "device": device, "batch": batch, "busy_core": load["core"],
            "steps": steps, "ms_threads1": ms[1], "ms_threads2": ms[2], "ms_auto": ms[AUTO],
            "auto_chose": chosen, "auto_vs_best": round(ms[AUTO] / min(ms[1], ms[2]), 3),
            "runs_ms": {str(t): v for t, v in times.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tinygan.bench",
        description="Milliseconds per GAN training step (D update then G update), float32.")
    parser.add_argument("workload", choices=WORKLOADS + ("all",))
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--json", action="store_true", help="one JSON line per workload")
    parser.add_argument("--compare", choices=("torch",), help="time PyTorch beside tinygan")
    parser.add_argument("--threads", type=tinygan_threads.thread_count, default=AUTO,
                        help="threads for both libraries, or 'auto' (the default: tinygan's "
                             "tuner picks; PyTorch uses every core)")
    parser.add_argument("--busy-core", action="store_true",
                        help="keep one core busy with another process and time tinygan at "
                             "1 thread, 2 threads and auto (repeated --rounds times)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs of each library (or thread setting), alternated; medians")
    parser.add_argument("--scaling", action="store_true",
                        help=f"run batches {', '.join(map(str, SCALING_BATCHES))}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cuda-graph", action="store_true",
                        help="tinygan's step as one CUDA graph (--device cuda; PyTorch stays "
                             "eager); eager, with the reason, where it cannot be captured")
    parser.add_argument("--only", choices=FRAMEWORKS,
                        help="run one library in this process (no child process); what "
                             "each child runs, and what to put under a profiler")
    parser.add_argument("--nproc", type=int, nargs="+", metavar="N",
                        help="data-parallel on N processes (mpiexec), beside one: the step, "
                             "speedup, efficiency and time in all-reduce; --batch is the "
                             "whole batch, --threads per process (1 unless given)")
    args = parser.parse_args(argv)
    workloads = WORKLOADS if args.workload == "all" else (args.workload,)
    batches = SCALING_BATCHES if args.scaling else (args.batch,)

    if args.nproc:  # bench_distributed.py
        return bench_distributed.report(workloads, args.nproc, args.device, args.batch,
                                        args.steps, args.warmup,
                                        1 if args.threads == AUTO else args.threads,
                                        args.seed, args.json)

    if args.only:
        for workload in workloads:
            for batch in batches:
                r = run(workload, args.device, batch, args.steps, args.warmup, args.only,
                        args.threads, args.seed, args.cuda_graph and args.only == "tinygan")
                print(json.dumps(r) if args.json else
                      f"{workload} {args.only} {args.device} batch {batch}: "
                      f"{r['ms_per_step']:.1f} ms/step, peak {_mb(r['peak_mb']).strip()}",
                      flush=True)
        return 0

    if args.busy_core:
        for workload in workloads:
            r = measure_busy(workload, args.device, args.batch, args.steps, args.warmup,
                             args.rounds, args.seed)
            print(json.dumps(r) if args.json else
                  f"{workload}, one core busy: ms/step at 1 thread {r['ms_threads1']}, 2 "
                  f"{r['ms_threads2']}, auto {r['ms_auto']} (chose {r['auto_chose']})", flush=True)
        return 0

    compare = args.compare == "torch"
    if compare and not torch_available():
        print(TORCH_MISSING, flush=True)
        compare = False
    failed = False
    for workload in workloads:
        for batch in batches:
            try:
                r = measure(workload, args.device, batch, args.steps, args.warmup,
                            args.threads, compare, args.seed, args.rounds, args.cuda_graph)
            except RuntimeError as e:
                failed = True
                r = {"workload": workload, "device": args.device, "batch": batch,
                     "error": str(e)}
            print(json.dumps(r) if args.json else _format(r), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
