"""Capturing a step in a CUDA graph: the control flow (warm-up, one capture, replays that
see each new batch, a private memory pool, the eager fallback) against a stand-in for
CuPy's stream capture; the real thing where there is a GPU."""
import numpy as np
import pytest

from tinygan import backend
from tinygan.cuda.graphs import CUDAGraph, GraphedStep


class FakeCupy:
    """Just enough of cupy.cuda for graphs.py: a stream whose capture records the
    'kernels' launched while it lasts, and a graph that runs them again."""

    def __init__(self):
        fake = self
        self.allocator, self.capturing, self.recorded, self.pools = "default", False, None, []

        class Graph:
            def __init__(self, ops):
                self.ops = ops

            def launch(self, stream=None):
                for op in self.ops:
                    op()

        class Stream:
            null = None

            def __init__(self, non_blocking=False):
                pass

            def use(self):
                return self

            def begin_capture(self):
                fake.capturing, fake.recorded = True, []

            def end_capture(self):
                fake.capturing = False
                return Graph(fake.recorded)

            def is_capturing(self):
                return fake.capturing

        class MemoryPool:
            def __init__(self):
                fake.pools.append(self)

            def malloc(self, size):
                raise AssertionError("not called in these tests")

        class Device:
            def synchronize(self):
                pass

        Stream.null = Stream()
        self.cuda = type("cuda", (), dict(
            Stream=Stream, MemoryPool=MemoryPool, Device=Device,
            get_allocator=lambda: fake.allocator, get_current_stream=lambda: Stream.null,
            set_allocator=lambda allocator: setattr(fake, "allocator", allocator)))

    def launch(self, kernel):
        """What a kernel launch does: run now, or be recorded while capturing."""
        if self.capturing:
            self.recorded.append(kernel)
        else:
            kernel()


def test_warm_up_then_one_capture_then_replays_that_see_every_new_batch():
    cp = FakeCupy()
    static, out, host_calls = np.zeros(3), np.zeros(3), []

    def step():  # one 'kernel': out = 2 * batch + 1, and the host-side Python around it
        host_calls.append(1)
        cp.launch(lambda: np.multiply(static, 2, out=out))
        cp.launch(lambda: np.add(out, 1, out=out))
        return out

    graphed = GraphedStep(step, [static], warmup=2, cupy=cp)
    for k in range(6):
        batch = np.full(3, float(k))
        np.testing.assert_array_equal(graphed(batch), 2 * batch + 1)
    assert len(host_calls) == 3  # 2 eager warm-up calls and the capture; then replays only
    assert isinstance(graphed.graph, CUDAGraph) and len(cp.pools) == 1
    assert cp.allocator == "default", "the private pool is the allocator only while capturing"


def test_what_cannot_be_captured_runs_eagerly_and_says_so_once():
    cp, notes = FakeCupy(), []
    static = np.zeros(2)

    def step():
        if cp.capturing:
            raise NotImplementedError("cuBLAS refuses to run during stream capture")
        return static * 3

    graphed = GraphedStep(step, [static], warmup=1, cupy=cp, report=notes.append)
    results = [graphed(np.full(2, float(k))) for k in range(4)]
    assert [r[0] for r in results] == [0.0, 3.0, 6.0, 9.0]
    assert len(notes) == 1 and "cuBLAS refuses" in notes[0] and "eagerly" in notes[0]
    assert cp.allocator == "default" and not cp.capturing


def test_a_batch_of_another_shape_is_refused():
    graphed = GraphedStep(lambda: None, [np.zeros((4, 2))], cupy=FakeCupy())
    with pytest.raises(ValueError, match="replays fixed shapes"):
        graphed(np.zeros((3, 2)))


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_is_available(), reason=backend.cuda_unavailable_reason()
                    or "no GPU")
def test_a_captured_elementwise_step_replays_on_the_gpu():
    cp = backend.cupy_module()
    static, out = cp.zeros(1000, dtype=cp.float32), cp.zeros(1000, dtype=cp.float32)

    def step():
        cp.multiply(static, 2, out=out)
        out[...] += backend.generator("cuda").random(1000) * 0  # a device-side draw
        return out

    graphed = GraphedStep(step, [static], warmup=1)
    for k in range(4):
        batch = cp.full(1000, float(k), dtype=cp.float32)
        cp.testing.assert_array_equal(graphed(batch), 2 * batch)
    assert graphed.fallback is None and graphed.graph is not None
