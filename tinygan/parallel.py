"""Array work on the CPU, split over threads.

A NumPy ufunc, a copy or a matrix product on a large array releases the GIL, so parts of
one op can run on several cores at once from plain Python threads. tinygan splits:

- matrix products (`matmul`) into blocks of rows of the first operand, cut where BLAS's
  kernel sums each row as it would in one call (`_Product`): each element of the
  product is one call's sum over the inner dimension, the same sum in the same order
  whatever block holds it (NumPy's BLAS is held at one thread by threads.py, so these
  blocks are the only threads a product gets); a product too short and narrow for that
  but long inside into pieces of its inner dimension, cut the same on any thread count
  and added in order (`_summed`); independent products side by side (`matmuls`);
- work over a batch (`for_each`: im2col's copy, col2im's additions, BatchNorm and the
  activations) into ranges of images;
- an optimiser's update (`apply`) into ranges of its flat arrays.

Each element is computed as one thread would compute it, so results are the same to the
bit whatever the thread count (tests/test_parallel.py checks each split op). Work below
a grain stays on the calling thread. PyTorch's grain is 32,768 elements a thread, but a
hand-off to this pool (Python threads) costs 52 us here, and on two cores a memory-bound
pass paid for it only from about half a million elements a thread: leaky_relu's forward
took 51 us on one thread and 89 on two at 262,144 elements, 95 and 125 at 524,288, 210
and 182 at 1,048,576; a product of two arrays 71 and 112 at 524,288, 169 and 149 at
1,048,576. So GRAIN is 2^19.

A step also makes and drops big arrays (an im2col matrix can be 150 MB). glibc's malloc
serves every block over a threshold (at most 32 MB) from fresh pages of the system and
hands them back when the block is freed, so each step faults the same memory in again,
zeroing it page by page: about 8% of a one-thread dcgan-mnist step's CPU time, 6,100
page faults a step against 54 once freed blocks stay in the heap for the next step.
`keep_freed_memory` (run on import, on glibc, unless the environment tunes malloc
itself) asks malloc for that: a training step's peak is the same every step, so the
memory is needed again at once.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .threads import get_num_threads

GRAIN = 1 << 19         # elements a thread takes at least (the docstring's measurements)
GEMM_GRAIN = 1 << 21    # multiply-adds a thread takes at least in a matrix product
MIN_SIZE = 1 << 17      # elements per optimiser array before splitting pays (Adam, 2 cores)
K_GRAIN = 1 << 23       # multiply-adds a piece of a long inner dimension takes at least
K_PIECES = 8            # pieces a long inner dimension is cut into, at most (_inner_pieces)
CHUNK = 1 << 17         # elements an optimiser's update takes at a time (`apply`)
_ALIGN = 48             # blocks of a product start at multiples of 48 rows (_Product)
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_pid = 0  # a forked child inherits the pool object but not its threads


def num_threads() -> int:
    """Threads for CPU work: tinygan.get_num_threads()."""
    return get_num_threads()


def split(size: int) -> list[slice]:
    """The ranges of a flat optimiser array of `size` elements that threads take."""
    n = size // MIN_SIZE
    n = min(num_threads(), n) if n > 1 else 1  # small arrays: no need to ask the count
    bounds = [size * i // n for i in range(n + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(n)]


def parts(length: int, work: int, grain: int = GRAIN, align: int = 1,
          threads: int | None = None) -> list[slice]:
    """Ranges of range(length) for the threads, when the whole is `work` units: at most
    one per thread (of `threads`, all unless told), each at least `grain` units, each
    (but the last) a multiple of `align` long."""
    n = min(work // grain, length // align) if work >= 2 * grain else 1
    if n > 1:
        n = min(n, threads or num_threads())
    if n <= 1:
        return [slice(0, length)]
    bounds = [0] + [length * i // n // align * align for i in range(1, n)] + [length]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def run(fn, parts: list[slice]) -> None:
    """fn(part) for every part, in parallel threads when there is more than one."""
    global _pool, _pool_size, _pool_pid
    if len(parts) == 1:
        fn(parts[0])
        return
    if _pool is None or _pool_size < len(parts) - 1 or _pool_pid != os.getpid():
        if _pool is not None and _pool_pid == os.getpid():
            _pool.shutdown(wait=True)
        _pool = ThreadPoolExecutor(max_workers=len(parts) - 1,
                                   thread_name_prefix="tinygan-worker")
        _pool_size, _pool_pid = len(parts) - 1, os.getpid()
    futures = [_pool.submit(fn, part) for part in parts[1:]]
    try:
        fn(parts[0])  # this thread takes the first part itself
    finally:
        for future in futures:
            future.result()  # waits for every part; re-raises a worker's exception here


def share(fn, jobs: int) -> None:
    """fn(i) for every job i in range(jobs), each thread taking the next job no thread
    has taken yet: one that finishes early (a smaller job, a less busy core) takes
    more, where a fixed share would leave it waiting for the other's last job. Each
    job writes its own results, so they are the same whichever thread ran it. A
    convolution's pieces and a transposed convolution's groups of images are shared so:
    fixed shares by size had the calling thread wait 68 ms a sagan-cifar10 step on two
    threads here (a core of this machine is not always as fast as the other), and the
    step took 4-6% less with shared jobs (in-process A/B: dcgan-mnist 479.7 -> 460.3 ms,
    sagan-cifar10 907.3 -> 852.5, against fixed shares taken in turn)."""
    threads = min(num_threads(), jobs)
    if threads <= 1:
        for i in range(jobs):
            fn(i)
        return
    queue, lock = iter(range(jobs)), threading.Lock()

    def take(_):
        while True:
            with lock:
                i = next(queue, None)
            if i is None:
                return
            fn(i)
    run(take, [slice(t, t + 1) for t in range(threads)])


def for_each(fn, a, work: int | None = None, grain: int = GRAIN) -> None:
    """fn(part) over ranges of a's first axis (the images of a batch, the rows of a
    matrix), split over threads when `work` (elements touched, a.size unless told) is
    worth it. CuPy arrays get fn(slice(None)) (a GPU op is one launch anyway), a 0-d
    array fn(...)."""
    if type(a) is not np.ndarray or a.ndim == 0:
        fn(slice(None) if a.ndim else Ellipsis)
        return
    run(fn, parts(a.shape[0], a.size if work is None else work, grain))


def elementwise(ufunc, a, b):
    """ufunc(a, b) (add, multiply, ...), split over threads along the result's first axis
    when it is large. The result is laid out as the operand of its shape (channels-last
    stays channels-last), as a when both are (b is copied to a's layout first:
    `laid_out_as`); an operand that broadcasts along that axis goes whole to each."""
    if not (type(a) is np.ndarray and type(b) is np.ndarray) or a.dtype != b.dtype \
            or a.dtype.kind != "f":
        return ufunc(a, b)
    b = laid_out_as(b, a)
    shape = np.broadcast_shapes(a.shape, b.shape)
    if not shape or a.size + b.size < 2 * GRAIN:
        return ufunc(a, b)
    like = a if a.shape == shape else b if b.shape == shape else None
    out = np.empty(shape, a.dtype) if like is None else np.empty_like(like)

    def part(p):
        pieces = [x[p] if x.ndim == len(shape) and x.shape[0] == shape[0] else x
                  for x in (a, b)]
        ufunc(*pieces, out=out[p])
    for_each(part, out)
    return out


def laid_out_as(a, model):
    """a, or a copy of it laid out in memory as `model` is, when both are NumPy arrays of
    one shape in different memory orders (a channels-first gradient against a
    channels-last activation, say). An elementwise op over such a pair steps across the
    grain of one of them: leaky_relu's gradient on (64, 128, 7, 7) took 1.65 ms so,
    against 0.29 ms with this copy first, on one core here."""
    if type(a) is not np.ndarray or type(model) is not np.ndarray or a.shape != model.shape \
            or _axes_order(a) == _axes_order(model):
        return a
    return _copy(a, np.empty_like(model, dtype=a.dtype))


def _axes_order(a) -> tuple:
    """a's axes (those longer than 1) from outermost to innermost in memory."""
    return tuple(d for d in sorted(range(a.ndim), key=lambda d: -a.strides[d])
                 if a.shape[d] > 1)


def ascontiguousarray(a):
    """np.ascontiguousarray(a), the copy split over threads along a's first axis."""
    if a.flags.c_contiguous:
        return a
    if type(a) is not np.ndarray:
        return a.copy()  # CuPy's copy is C-ordered too
    return _copy(a, np.empty(a.shape, dtype=a.dtype))


def _copy(a, out):
    """out[...] = a, threads taking ranges of a's first axis; out."""
    def part(p):
        out[p] = a[p]
    for_each(part, a)
    return out


def matmul(a, b):
    """a @ b, split over threads in blocks of rows of a (`_Product`); stacks of
    matrices are split over the stack.

    Each block is one BLAS call on views of a and b, written into its place of the
    result, and gives the bits the whole product would. Anything else (CuPy arrays,
    vectors, broadcast stacks, small products) is `a @ b`. An outer product (k = 1: a
    spectral norm's u v^T, the input gradient of a layer with one output) is a broadcast
    multiply, each element the one rounded product BLAS gives, at 4-20x BLAS's speed here
    ((256, 1) @ (1, 2048): 1.46 ms against 0.25).

    A stack whose matrices are stored by columns (`_by_columns`: a channels-last
    activation reshaped to (N, C, pixels), as self-attention's h and f are) gives its
    product stored by columns too, computed as (b^T a^T)^T: reshaped back to an image it
    is channels-last, as the layers around it are, and no gradient of attention needs a
    layout copy. On one core here sagan-cifar10's step took 2-3% less (730.2 -> 716.2 ms,
    746.5 -> 723.4); on two, three runs gave 1.03, 0.89 and 0.99 of the old step.
    """
    if not (type(a) is np.ndarray and type(b) is np.ndarray) or a.ndim < 2 or b.ndim < 2:
        return a @ b
    m, k = a.shape[-2:]
    n = b.shape[-1]
    if a.ndim == 2 and b.ndim == 2:
        if _by_rows(a, b):
            product = _Product(a, b)
            run(product.block, product.blocks)
            return product.result()
        if k == 1:
            return elementwise(np.multiply, a, b)
        if min(m, n) < 2:
            return a @ b  # a matrix-vector product: BLAS's gemv, whose blocks round otherwise
        return _summed(a, b, _inner_pieces(m, k, n))
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0] or b.shape[1] != k:
        return a @ b
    swap = _by_columns(a)
    if swap:
        a, b, m, n = b.transpose(0, 2, 1), a.transpose(0, 2, 1), n, m
    blocks = parts(a.shape[0], a.shape[0] * m * n * k, GEMM_GRAIN)
    if len(blocks) == 1:
        out = a @ b
    else:
        out = np.empty((a.shape[0], m, n), dtype=np.result_type(a, b))
        run(lambda p: np.matmul(a[p], b[p], out=out[p]), blocks)
    return out.transpose(0, 2, 1) if swap else out


def _inner_pieces(m: int, k: int, n: int) -> list[slice]:
    """Ranges of the inner dimension of a product too short and too narrow to cut by
    rows or columns (m and n below 2 _ALIGN) but long, as a weight gradient's (O, pixels)
    @ (pixels, C): pieces of K_GRAIN multiply-adds at least, at most K_PIECES, cut at
    multiples of 64 and the same on any thread count. One piece for any other."""
    count = min(K_PIECES, m * n * k // K_GRAIN) if max(m, n) < 2 * _ALIGN else 1
    if count < 2:
        return [slice(0, k)]
    bounds = [k * i // count // 64 * 64 for i in range(count)] + [k]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def _summed(a, b, pieces: list[slice]):
    """a @ b as the sum of a[:, p] @ b[p] over the pieces p of the inner dimension, the
    threads taking the products (`share`), added in the pieces' order: the same bits on
    any thread count (not those of one BLAS call, which sums the whole row at once).
    D's first layer's weight gradient in sagan-cifar10, (64, 16384) @ (16384, 48), in 6
    pieces: 2.2 ms on one thread and 1.6 on two, against 2.4 and 2.1 as one call
    (PyTorch: 2.2 and 1.8)."""
    products = [None] * len(pieces)

    def piece(i):
        products[i] = a[:, pieces[i]] @ b[pieces[i]]
    share(piece, len(pieces))
    out = products[0]
    for product in products[1:]:
        out += product
    return out


def _by_columns(a) -> bool:
    """Whether each matrix of the stack a is stored column by column."""
    return a.strides[1] == a.itemsize and a.strides[2] == a.shape[1] * a.itemsize \
        and a.shape[1] > 1


def _swapped(a, b) -> bool:
    """Whether a @ b runs as (b^T a^T)^T, on any thread count:

    - x W^T for a batch shorter than W, which OpenBLAS runs as W x^T (the same sums, its
      operands swapped) at 90-97 GFLOP/s against 72-76 on one core of the AVX-512
      machine, for every linear layer at batch 64 (benchmarks/README.md);
    - a product too short for two blocks of rows but wide (m < 2 _ALIGN <= n), whose
      rows, b's columns, can then be cut (`_Product`).

    Its transpose is copied back to rows (m*n floats, small next to the product's
    m*n*k)."""
    m, n = a.shape[0], b.shape[1]
    by_columns = b.flags.f_contiguous and not b.flags.c_contiguous
    return m < n and by_columns or m < 2 * _ALIGN <= n


def multiply(a, b, out=None):
    """a @ b as one BLAS call on the calling thread: a product that is one thread's job
    (a convolution tile's piece), which `share` handed it; benchmarks/gemm_floor.py
    counts these here."""
    return np.matmul(a, b, out=out)


def _by_rows(a, b) -> bool:
    """Whether matmul computes the matrix product a @ b by blocks of rows (`_Product`):
    all but outer products (k = 1), matrix-vector products, and products with a long
    inner dimension that is summed in pieces instead (`_inner_pieces`)."""
    (m, k), n = a.shape, b.shape[1]
    return k > 1 and min(m, n) > 1 and (_swapped(a, b) or len(_inner_pieces(m, k, n)) == 1)


class _Product:
    """a @ b planned as BLAS calls on blocks of rows of a, each of GEMM_GRAIN
    multiply-adds at least, starting at a multiple of _ALIGN rows, at most one block per
    thread of `threads` (all unless told); where `_swapped`, of b^T a^T, whose transpose
    `result()` copies back to rows. `block(p)` computes rows p of `out`.

    Blocks give the bits of one call only where BLAS's kernel handles every row the
    same in either: OpenBLAS's kernels work on tiles of rows (16 in its SkylakeX kernel,
    24 in its Haswell one, which AMD's Zen cores get), and rows cut off a tile are
    summed otherwise. Cuts at multiples of 48 kept the bits in 60 random shapes and
    layouts on both, where cuts at 16 changed them on the Haswell kernel, and cuts of
    columns changed them at almost any place (a product with fewer rows than columns
    runs there with its columns as the kernel's rows)."""

    def __init__(self, a, b, threads: int | None = None):
        self.swap = _swapped(a, b)
        if self.swap:
            a, b = b.T, a.T
        (m, k), n = a.shape, b.shape[1]
        self.a, self.b = a, b
        self.out = np.empty((m, n), dtype=np.result_type(a, b))
        self.blocks = parts(m, m * n * k, GEMM_GRAIN, _ALIGN, threads)

    def block(self, p):
        np.matmul(self.a[p], self.b, out=self.out[p])

    def result(self):
        return ascontiguousarray(self.out.T) if self.swap else self.out


def matmuls(*pairs) -> list:
    """[a @ b for a, b in pairs]: independent products of matrices, taken side by side.

    A linear layer's backward has two, dx = gy W and dW = gy^T x, of one size. Each
    split in two blocks of rows on its own (`matmul`), they cost two hand-offs to the
    pool and two half-size BLAS calls each; side by side, each thread takes its share of
    the blocks of both from one hand-off (`share`), on two threads one whole product
    each. vanilla-mnist's seven layer shapes, both gradients on two threads: 10.5 ms
    one product after the other, 7.6 side by side, PyTorch 8.2 (benchmarks/README.md).
    Each product is cut as `matmul` cuts it, so the bits are the same."""
    if len(pairs) < 2 or num_threads() < 2 or not all(
            type(a) is np.ndarray and type(b) is np.ndarray and a.ndim == 2 == b.ndim
            and _by_rows(a, b) for a, b in pairs):
        return [matmul(a, b) for a, b in pairs]
    threads = max(1, num_threads() // len(pairs))  # the threads a product may be cut for
    products = [_Product(a, b, threads) for a, b in pairs]
    jobs = [(product, p) for product in products for p in product.blocks]
    share(lambda i: jobs[i][0].block(jobs[i][1]), len(jobs))
    return [product.result() for product in products]


def apply(fn, *arrays, **kwargs) -> None:
    """fn(*arrays, **kwargs), for an elementwise fn that updates some of its arrays in place.

    NumPy arrays of one shape, all C-contiguous, are flattened and each thread runs fn on
    its part of them (see `split`), a run of CHUNK elements at a time; any other arrays
    (CuPy's, non-contiguous ones) go to fn whole. None stands for an array fn is not
    given, in every part.

    Run by runs, Adam's dozen passes over a parameter and its moments read and write
    each run while it is still in the core's cache, instead of streaming the whole
    arrays from memory a dozen times: `adam` over 2.29 million floats (five
    parameters shaped as vanilla-mnist's larger layers) took 8.6-9.1 ms in runs of
    131,072 against 12.4-12.7 whole on one thread of an Intel Xeon (2 MB of L2 a core;
    runs of 32,768: 8.0-8.7). On two threads shorter runs lose: each run is a dozen
    NumPy calls, and the two threads' calls take turns at the GIL. Over vanilla-mnist's
    D (1.46 million floats) on the Zen 3 machine, one thread and two: 5.4 and 3.6 ms in
    runs of 131,072, 7.1 and 5.7 in runs of 32,768, 6.3 and 6.0 whole. Each element is
    computed as before: the same bits.
    """
    first = arrays[0]
    if not isinstance(first, np.ndarray) or first.size <= CHUNK or not all(
            a is None or a.flags.c_contiguous for a in arrays):
        fn(*arrays, **kwargs)
        return
    flat = [None if a is None else a.reshape(-1) for a in arrays]

    def runs(part):
        for start in range(part.start, part.stop, CHUNK):
            run_ = slice(start, min(start + CHUNK, part.stop))
            fn(*(None if a is None else a[run_] for a in flat), **kwargs)
    ranges = split(first.size)
    if len(ranges) == 1:
        runs(ranges[0])
    else:
        run(runs, ranges)


_MALLOC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to serve big blocks from its heap and keep what is freed there
    (mallopt M_MMAP_THRESHOLD and M_TRIM_THRESHOLD to their largest); True if it did."""
    if not sys.platform.startswith("linux") or any(v in os.environ for v in _MALLOC_VARIABLES):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    largest = ctypes.c_int(2 ** 31 - 1)
    return bool(mallopt(_M_MMAP_THRESHOLD, largest)) and bool(mallopt(_M_TRIM_THRESHOLD,
                                                                       largest))


keep_freed_memory()
