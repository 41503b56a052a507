"""tinygan beside its peers on the CPU: PyTorch, DeZero and tinygrad, one training step.

    python benchmarks/peers.py [--workloads vanilla-mnist dcgan-mnist] [--threads 1 2]
                               [--steps 5] [--warmup 3] [--json]

The step is BENCHMARKS.md's (one D update on a real and a fake batch, one G update, batch
64, float32, Adam): tinygan and PyTorch run `python -m tinygan.bench W --only ...`; DeZero
and tinygrad run the same networks written below in their own API. Every (library,
workload, threads) is a fresh child process, the libraries one after the other, and the
time is the median ms per step after the warm-up. A library that is not installed (or
cannot run here: tinygrad's CPU device compiles with clang) is skipped with a line.

Threads: tinygan and PyTorch as in bench.py; DeZero is NumPy, so OPENBLAS_NUM_THREADS
(its matrix products; everything else is one thread); tinygrad NUM_CPU_THREADS. tinygrad
runs its step under TinyJit, its documented fast path; DeZero 0.0.13 predates NumPy 2
and needs `np.int` put back before it imports.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

WORKLOADS = ("vanilla-mnist", "dcgan-mnist")
LIBRARIES = ("tinygan", "torch", "dezero", "tinygrad")
THREAD_VARIABLES = ("TINYGAN_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "MKL_NUM_THREADS", "NUM_CPU_THREADS")
BATCH, Z = 64, 100


# ----------------------------------------------------------------------------- DeZero


def _dezero():
    if not hasattr(np, "int"):
        np.int = int  # DeZero 0.0.13 names np.int, which NumPy 2 removed
    import dezero
    return dezero


def dezero_setup(workload: str):
    dezero = _dezero()
    import dezero.functions as F
    import dezero.layers as L
    from dezero import Model, optimizers

    lrelu = lambda x: F.leaky_relu(x, 0.2)  # noqa: E731

    class Net(Model):
        def __init__(self, *layers):
            super().__init__()
            self.layers = list(layers)
            for i, layer in enumerate(self.layers):
                if isinstance(layer, dezero.Layer):
                    setattr(self, f"l{i}", layer)

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    class Deconv(dezero.Layer):  # L.Deconv2d has no output size; F.deconv2d does
        def __init__(self, cin, cout, k, s, p, out, bias):
            super().__init__()
            scale = np.sqrt(1 / (cin * k * k))
            self.W = dezero.Parameter((np.random.randn(cin, cout, k, k) * scale
                                       ).astype(np.float32))
            self.b = dezero.Parameter(np.zeros(cout, np.float32)) if bias else None
            self.s, self.p, self.out = s, p, out

        def forward(self, x):
            return F.deconv2d(x, self.W, self.b, self.s, self.p, self.out)

    if workload == "vanilla-mnist":
        G = Net(L.Linear(256, in_size=100), lrelu, L.Linear(512, in_size=256), lrelu,
                L.Linear(1024, in_size=512), lrelu, L.Linear(784, in_size=1024), F.tanh)
        D = Net(L.Linear(1024, in_size=784), lrelu, L.Linear(512, in_size=1024), lrelu,
                L.Linear(256, in_size=512), lrelu, L.Linear(1, in_size=256))
        real = np.random.uniform(-1, 1, (BATCH, 784)).astype(np.float32)
    else:
        G = Net(L.Linear(7 * 7 * 256, nobias=True, in_size=100),
                lambda x: F.reshape(x, (x.shape[0], 256, 7, 7)), L.BatchNorm(), lrelu,
                Deconv(256, 128, 5, 1, 2, 7, False), L.BatchNorm(), lrelu,
                Deconv(128, 64, 5, 2, 2, 14, False), L.BatchNorm(), lrelu,
                Deconv(64, 1, 5, 2, 2, 28, True), F.tanh)
        D = Net(L.Conv2d(64, 5, 2, 2, in_channels=1), lrelu, lambda x: F.dropout(x, 0.3),
                L.Conv2d(128, 5, 2, 2, in_channels=64), lrelu, lambda x: F.dropout(x, 0.3),
                lambda x: F.reshape(x, (x.shape[0], -1)), L.Linear(1, in_size=6272))
        real = np.random.uniform(-1, 1, (BATCH, 1, 28, 28)).astype(np.float32)
    opt_g = optimizers.Adam(2e-4, 0.5, 0.999).setup(G)
    opt_d = optimizers.Adam(2e-4, 0.5, 0.999).setup(D)
    ones, zeros = np.ones((BATCH, 1), np.float32), np.zeros((BATCH, 1), np.float32)

    def step():
        z = np.random.randn(BATCH, Z).astype(np.float32)
        fake = G(z)
        D.cleargrads()
        loss_d = (F.sigmoid_cross_entropy(D(real), ones)
                  + F.sigmoid_cross_entropy(D(fake.data), zeros))  # .data: detached
        loss_d.backward()
        opt_d.update()
        G.cleargrads()
        loss_g = F.sigmoid_cross_entropy(D(fake), ones)
        loss_g.backward()
        opt_g.update()
        return float(loss_d.data), float(loss_g.data)
    return step


# --------------------------------------------------------------------------- tinygrad


def tinygrad_setup(workload: str):
    from tinygrad import Context, Tensor, TinyJit, nn
    from tinygrad.nn.optim import Adam
    from tinygrad.nn.state import get_parameters

    lrelu = lambda x: x.leaky_relu(0.2)  # noqa: E731
    if workload == "vanilla-mnist":
        G = [nn.Linear(100, 256), lrelu, nn.Linear(256, 512), lrelu, nn.Linear(512, 1024),
             lrelu, nn.Linear(1024, 784), Tensor.tanh]
        D = [nn.Linear(784, 1024), lrelu, nn.Linear(1024, 512), lrelu, nn.Linear(512, 256),
             lrelu, nn.Linear(256, 1)]
        shape = (BATCH, 784)
    else:
        G = [nn.Linear(100, 7 * 7 * 256, bias=False), lambda x: x.reshape(-1, 256, 7, 7),
             nn.BatchNorm(256), lrelu, nn.ConvTranspose2d(256, 128, 5, 1, 2, bias=False),
             nn.BatchNorm(128), lrelu,
             nn.ConvTranspose2d(128, 64, 5, 2, 2, output_padding=1, bias=False),
             nn.BatchNorm(64), lrelu, nn.ConvTranspose2d(64, 1, 5, 2, 2, output_padding=1),
             Tensor.tanh]
        D = [nn.Conv2d(1, 64, 5, 2, 2), lrelu, lambda x: x.dropout(0.3),
             nn.Conv2d(64, 128, 5, 2, 2), lrelu, lambda x: x.dropout(0.3),
             lambda x: x.flatten(1), nn.Linear(6272, 1)]
        shape = (BATCH, 1, 28, 28)
    run = lambda layers, x: x.sequential(layers)  # noqa: E731
    opt_g = Adam(get_parameters(G), lr=2e-4, b1=0.5, b2=0.999)
    opt_d = Adam(get_parameters(D), lr=2e-4, b1=0.5, b2=0.999)
    real = (Tensor.rand(*shape) * 2 - 1).realize()
    ones, zeros = Tensor.ones(BATCH, 1).contiguous().realize(), \
        Tensor.zeros(BATCH, 1).contiguous().realize()

    @TinyJit
    def jitted(z):
        fake = run(G, z)
        opt_d.zero_grad()
        loss_d = (run(D, real).binary_crossentropy_logits(ones)
                  + run(D, fake.detach()).binary_crossentropy_logits(zeros))
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        loss_g = run(D, fake).binary_crossentropy_logits(ones)
        loss_g.backward()
        opt_g.step()
        return loss_d.realize(), loss_g.realize()

    def step():
        with Context(TRAINING=1):
            loss_d, loss_g = jitted(Tensor.randn(BATCH, Z).realize())
        return loss_d.item(), loss_g.item()
    return step


# ---------------------------------------------------------------------- the children


def child(library: str, workload: str, steps: int, warmup: int) -> dict:
    """Time one library's step in this process."""
    step = (dezero_setup if library == "dezero" else tinygrad_setup)(workload)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        losses = step()
        if i >= warmup:
            times.append(1000 * (time.perf_counter() - start))
    return {"ms_per_step": round(statistics.median(times), 2), "losses": losses}


def installed(library: str) -> str | None:
    """None when the library can run here, else why not (one line)."""
    probe = {"tinygan": "import tinygan", "torch": "import torch",
             "dezero": "import numpy as np; np.int = int; import dezero",
             "tinygrad": "from tinygrad import Tensor; (Tensor.ones(2) + 1).realize()"}
    done = subprocess.run([sys.executable, "-c", probe[library]], capture_output=True,
                          text=True)
    if done.returncode == 0:
        return None
    last = (done.stderr.strip().splitlines() or ["failed"])[-1]
    return f"{library} cannot run here: {last}"


def measure(library: str, workload: str, threads: int, steps: int, warmup: int) -> dict:
    env = dict(os.environ, **{name: str(threads) for name in THREAD_VARIABLES})
    if library in ("tinygan", "torch"):
        command = [sys.executable, "-m", "tinygan.bench", workload, "--only", library,
                   "--threads", str(threads), "--steps", str(steps), "--warmup",
                   str(warmup), "--json"]
    else:
        command = [sys.executable, __file__, "--child", library, "--workloads", workload,
                   "--steps", str(steps), "--warmup", str(warmup)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"library": library, "workload": workload, "threads": threads,
                "error": tail[0]}
    r = json.loads(lines[-1])
    return {"library": library, "workload": workload, "threads": threads,
            "ms_per_step": r["ms_per_step"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/peers.py", description=__doc__
                                     .split("\n")[0])
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--libraries", nargs="+", choices=LIBRARIES, default=list(LIBRARIES))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="one JSON line per measurement")
    parser.add_argument("--child", choices=("dezero", "tinygrad"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.workloads[0], args.steps, args.warmup)))
        return 0
    libraries = []
    for library in args.libraries:
        why = installed(library)
        if why:
            print(f"peers: skipping {why}", flush=True)
        else:
            libraries.append(library)
    for workload in args.workloads:
        for threads in args.threads:
            for library in libraries:
                r = measure(library, workload, threads, args.steps, args.warmup)
                print(json.dumps(r) if args.json else
                      f"{workload:<14} {threads} thread(s)  {library:<9} "
                      + (f"ERROR {r['error']}" if "error" in r
                         else f"{r['ms_per_step']:>9.1f} ms/step"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
