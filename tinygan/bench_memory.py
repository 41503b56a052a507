"""Peak memory of a training step, measured the same way for tinygan and PyTorch.

- cpu: the peak resident set size during the steps (VmHWM, reset through
  /proc/self/clear_refs just before the first step) minus the resident set size before it;
  that is the step's working set: activations, gradients, optimiser state, temporaries.
- cuda: the high-water mark of bytes in use (CuPy's memory pool, watched through its
  allocator hook for one extra step; torch.cuda.max_memory_allocated) minus the bytes in
  use before the first step.
"""
from __future__ import annotations

import gc

MB = 2 ** 20


def _proc_status_bytes(field: str) -> int | None:
    """A memory line of /proc/self/status (VmRSS, VmHWM) in bytes; None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Set VmHWM back to the current RSS (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class _ResidentMemory:
    """cpu, both libraries: peak RSS during the steps minus RSS before the first step."""

    def start(self):
        gc.collect()
        self.reset = _reset_peak_rss()
        self.before = _proc_status_bytes("VmRSS")

    def finish(self, step) -> dict:
        peak = _proc_status_bytes("VmHWM")
        if peak is None or self.before is None:
            return {"peak_mb": None}
        out = {"peak_mb": round(max(0, peak - self.before) / MB, 1)}
        if not self.reset:
            out["peak_note"] = "VmHWM could not be reset: peak includes start-up"
        return out


class _TracedMemory(_ResidentMemory):
    """cpu, tinygan: also the peak of NumPy allocations in one more step (tracemalloc).

    NumPy reports its array buffers to tracemalloc, so this counts exactly the arrays a
    step allocates on top of what already lives (parameters, optimiser state). PyTorch's
    allocator does not report to tracemalloc, so it is an extra, not the compared number.
    """

    def finish(self, step) -> dict:
        out = super().finish(step)
        import tracemalloc
        gc.collect()
        tracemalloc.start()
        try:
            step()
            out["traced_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / MB, 1)
        finally:
            tracemalloc.stop()
        return out


class _CupyMemory:
    """cuda, tinygan: CuPy pool bytes in use, peak over one more step, minus the start."""

    def start(self):
        import cupy
        self.cupy = cupy
        self.pool = cupy.get_default_memory_pool()
        cupy.cuda.Device().synchronize()
        self.before = self.pool.used_bytes()

    def finish(self, step) -> dict:
        cupy, pool = self.cupy, self.pool
        peak = [pool.used_bytes()]

        def malloc(size):
            memory = pool.malloc(size)
            peak[0] = max(peak[0], pool.used_bytes())
            return memory

        cupy.cuda.set_allocator(malloc)
        try:
            step()
            cupy.cuda.Device().synchronize()
        finally:
            cupy.cuda.set_allocator(pool.malloc)
        return {"peak_mb": round(max(0, peak[0] - self.before) / MB, 1)}


class _TorchCudaMemory:
    """cuda, torch: max_memory_allocated over the steps minus memory_allocated before."""

    def start(self):
        import torch
        self.torch = torch
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        self.before = torch.cuda.memory_allocated()

    def finish(self, step) -> dict:
        peak = self.torch.cuda.max_memory_allocated()
        return {"peak_mb": round(max(0, peak - self.before) / MB, 1)}


def memory_meter(framework: str, device: str):
    """The meter for a library on a device: start() before the first step, finish(step)
    after the last (it may run one more step) returns {"peak_mb", ...}."""
    if device == "cpu":
        return _TracedMemory() if framework == "tinygan" else _ResidentMemory()
    return _CupyMemory() if framework == "tinygan" else _TorchCudaMemory()
