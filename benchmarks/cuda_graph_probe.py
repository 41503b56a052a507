"""What of a training step CuPy lets a CUDA graph capture, here: one line per probe.

    python benchmarks/cuda_graph_probe.py        # needs CuPy and a GPU

Each probe runs a small piece of a step eagerly, then captures it on a stream under a
private memory pool, replays the graph and compares the two results: elementwise
kernels, tinygan's Philox draws (its offset advanced on the device), CuPy's matmul
(cuBLAS through CuPy's wrapper) and cuBLAS's SGEMM called directly on the capture stream.
A probe that cannot be captured prints the error CuPy or CUDA gave.
"""
from __future__ import annotations

import traceback

import numpy as np


def capture(cp, fn):
    """Run fn() eagerly, then capture it and replay it once: (eager, replayed) results."""
    eager = cp.asnumpy(fn())
    pool = cp.cuda.MemoryPool()
    stream = cp.cuda.Stream(non_blocking=True)
    previous = cp.cuda.get_allocator()
    cp.cuda.Device().synchronize()
    cp.cuda.set_allocator(pool.malloc)
    try:
        with stream:
            stream.begin_capture()
            try:
                out = fn()
            finally:
                graph = stream.end_capture()
    finally:
        cp.cuda.set_allocator(previous)
    graph.launch(stream=stream)
    stream.synchronize()
    return eager, cp.asnumpy(out)


def main() -> int:
    import cupy as cp

    from tinygan.cuda.random import Philox

    a = cp.asarray(np.random.default_rng(0).standard_normal((64, 128)), dtype=cp.float32)
    b = cp.asarray(np.random.default_rng(1).standard_normal((128, 32)), dtype=cp.float32)
    philox = Philox(0, cp)

    def sgemm_direct():
        from cupy_backends.cuda.libs import cublas
        c = cp.empty((64, 32), dtype=cp.float32)
        handle = cp.cuda.device.get_cublas_handle()
        cublas.setStream(handle, cp.cuda.get_current_stream().ptr)
        # row-major C = A B is column-major C^T = B^T A^T
        one, zero = np.array(1, np.float32), np.array(0, np.float32)
        cublas.setPointerMode(handle, cublas.CUBLAS_POINTER_MODE_HOST)
        cublas.sgemm(handle, cublas.CUBLAS_OP_N, cublas.CUBLAS_OP_N, 32, 64, 128,
                     one.ctypes.data, b.data.ptr, 32, a.data.ptr, 128, zero.ctypes.data,
                     c.data.ptr, 32)
        return c

    probes = {
        "elementwise": lambda: cp.tanh(a * 2.0 + 1.0).sum(axis=1),
        "philox normal draw": lambda: philox.standard_normal(size=(4096,), dtype=cp.float32),
        "cupy matmul (cuBLAS via CuPy)": lambda: a @ b,
        "cuBLAS sgemm called directly": sgemm_direct,
    }
    name = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    print(f"cupy {cp.__version__}, CUDA runtime {cp.cuda.runtime.runtimeGetVersion()}, {name}")
    for name, fn in probes.items():
        try:
            eager, replayed = capture(cp, fn)
            same = ("the same bits" if np.array_equal(eager, replayed) else
                    f"max difference {np.max(np.abs(eager - replayed)):.3g}")
            if name.startswith("philox"):  # a replay draws the next numbers, as it should
                same = "new numbers" if not np.array_equal(eager, replayed) else "repeated!"
            print(f"{name}: captured and replayed ({same})")
        except Exception as e:  # noqa: BLE001  (what fails is the finding)
            print(f"{name}: cannot be captured: {type(e).__name__}: {e}")
            traceback.print_exc(limit=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
