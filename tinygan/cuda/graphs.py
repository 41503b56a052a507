"""A whole training step as one CUDA graph: captured once, replayed with one launch.

Eager, a GAN step is hundreds of kernel launches, each costing the host 10-20 us of CuPy
dispatch while the GPU waits for work. Captured in a graph (PyTorch's
torch.cuda.CUDAGraph; CuPy's Stream.begin_capture / end_capture), the same kernels
replay from one launch. What a captured step must respect (checked by the capture
itself: a violation fails it, and the step then runs eagerly, said once):

- no host synchronisation inside: losses stay device tensors (read every N steps, in one
  transfer); random numbers come from the device's Philox generator (cuda/random.py),
  whose offset the replays advance on the device;
- fixed shapes and fixed memory: every array allocated while capturing is drawn from a
  memory pool that belongs to the graph and lives as long as it (PyTorch's private pool),
  and each new batch is copied into the step's static input arrays before a replay.

`GraphedStep(step, inputs)` puts this together: a few eager warm-up calls (kernels
compiled, workspaces sized), one captured call, then a replay per call.
"""
from __future__ import annotations

from .. import backend


class CUDAGraph:
    """torch.cuda.CUDAGraph's names: capture_begin(), capture_end(), replay(). `cupy` is
    the CuPy module (a stand-in in the tests)."""

    def __init__(self, cupy=None):
        self.cp = cupy if cupy is not None else backend.cupy_module()
        self.pool = self.cp.cuda.MemoryPool()  # the graph's own: never handed to others
        self.stream = self.cp.cuda.Stream(non_blocking=True)
        self.graph = None
        self._allocator = None

    def capture_begin(self) -> None:
        self.cp.cuda.Device().synchronize()  # nothing of the warm-up still in flight
        self._allocator = self.cp.cuda.get_allocator()
        self.cp.cuda.set_allocator(self.pool.malloc)
        self.stream.use()
        self.stream.begin_capture()

    def capture_end(self) -> None:
        try:
            self.graph = self.stream.end_capture()
        finally:
            self.cp.cuda.set_allocator(self._allocator)
            self.cp.cuda.Stream.null.use()

    def abandon(self) -> None:
        """End a capture that failed, leaving the allocator and stream as they were."""
        try:
            if self.stream.is_capturing():
                self.stream.end_capture()
        finally:
            self.cp.cuda.set_allocator(self._allocator)
            self.cp.cuda.Stream.null.use()

    def replay(self) -> None:
        # on the caller's stream, after the copies into the static inputs and before
        # whatever reads the outputs (the capture stream is ordered with neither)
        self.graph.launch(stream=self.cp.cuda.get_current_stream())


class GraphedStep:
    """Call `step()` eagerly `warmup` times, capture the next call, replay it from then on.

    `inputs` are the static arrays the step reads (its batches): each call copies the new
    data into them first (`call(*arrays)`). Returns what the captured step returned (the
    same device arrays every time, refreshed by each replay). If the step cannot be
    captured, it runs eagerly from then on and `fallback` says why (once).
    """

    def __init__(self, step, inputs, warmup: int = 3, cupy=None, report=print):
        self.step, self.inputs, self.warmup = step, list(inputs), int(warmup)
        self.cupy, self.report = cupy, report
        self.calls, self.graph, self.outputs, self.fallback = 0, None, None, None

    def __call__(self, *arrays):
        if len(arrays) != len(self.inputs):
            raise ValueError(f"GraphedStep: {len(arrays)} inputs for {len(self.inputs)} "
                             "static ones")
        for static, new in zip(self.inputs, arrays):
            if static.shape != new.shape or static.dtype != new.dtype:
                raise ValueError(f"GraphedStep: an input of shape {new.shape} {new.dtype} for "
                                 f"a static one of {static.shape} {static.dtype}: a graph "
                                 "replays fixed shapes (drop_last keeps batches whole)")
            static[...] = new
        self.calls += 1
        if self.graph is not None:
            self.graph.replay()
            return self.outputs
        if self.fallback is not None or self.calls <= self.warmup:
            return self.step()
        return self._capture()

    def _capture(self):
        graph = CUDAGraph(self.cupy)
        graph.capture_begin()
        try:
            outputs = self.step()
        except Exception as e:  # noqa: BLE001  (what cannot be captured runs eagerly)
            graph.abandon()
            self.fallback = f"{type(e).__name__}: {e}"
            self.report(f"note: the step cannot be captured in a CUDA graph ({self.fallback});"
                        " it runs eagerly")
            return self.step()
        graph.capture_end()
        self.graph, self.outputs = graph, outputs
        graph.replay()  # capturing ran nothing: this is the call's own step
        return outputs
