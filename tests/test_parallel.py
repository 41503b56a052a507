"""Elementwise work split over threads gives the same bits as one thread."""
import multiprocessing
import os
import resource
import signal
import sys

import numpy as np
import pytest

import tinygan
from tinygan import functional as F, optim, parallel, threads


@pytest.fixture(autouse=True)
def environment_count(monkeypatch):
    """The count comes from the environment in each test (no set_num_threads left over)."""
    monkeypatch.setattr(threads, "_chosen", None)


def test_split_covers_every_element_once(monkeypatch):
    monkeypatch.setenv("TINYGAN_NUM_THREADS", "3")
    for size in (1, parallel.MIN_SIZE - 1, 2 * parallel.MIN_SIZE + 7, 10 * parallel.MIN_SIZE):
        parts = parallel.split(size)
        assert parts[0].start == 0 and parts[-1].stop == size
        assert all(a.stop == b.start for a, b in zip(parts, parts[1:]))
        assert len(parts) == min(3, max(1, size // parallel.MIN_SIZE))


def test_thread_count_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("TINYGAN_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert parallel.num_threads() == 2
    monkeypatch.setenv("TINYGAN_NUM_THREADS", "4")
    assert parallel.num_threads() == 4
    monkeypatch.setenv("TINYGAN_NUM_THREADS", "two")
    with pytest.raises(ValueError, match="TINYGAN_NUM_THREADS='two'"):
        parallel.num_threads()


def test_a_worker_error_reaches_the_caller(monkeypatch):
    monkeypatch.setenv("TINYGAN_NUM_THREADS", "2")

    def fail(part):
        if part.start > 0:
            raise RuntimeError("worker failed")
    with pytest.raises(RuntimeError, match="worker failed"):
        parallel.run(fail, parallel.split(4 * parallel.MIN_SIZE))


def test_apply_splits_big_numpy_arrays_and_passes_the_rest_whole(monkeypatch):
    monkeypatch.setenv("TINYGAN_NUM_THREADS", "2")
    seen = []

    def double(a, b, none, *, by):
        seen.append((a.size, none))
        a *= by
        b *= by
    big = np.ones((4, parallel.MIN_SIZE))
    other = np.ones_like(big)
    parallel.apply(double, big, other, None, by=2.0)
    # two halves, each in runs of CHUNK elements, None in each
    assert seen == [(parallel.CHUNK, None)] * (big.size // parallel.CHUNK)
    assert (big == 2).all() and (other == 2).all()
    seen.clear()
    strided = np.ones((4, 2 * parallel.MIN_SIZE))[:, ::2]  # not contiguous: one call
    parallel.apply(double, strided, np.ones_like(strided), None, by=3.0)
    assert seen == [(strided.size, None)] and (strided == 3).all()


def test_apply_takes_an_update_in_runs_with_the_bits_of_one_call(monkeypatch):
    """Adam on a parameter whose size is no multiple of CHUNK, run by runs on one thread
    and by runs of two halves on two, gives the bits of one call on the whole arrays."""
    from tinygan.optim.adam import adam
    rng = np.random.default_rng(1)
    size = 2 * parallel.MIN_SIZE + 1234  # split in two on two threads
    arrays = [rng.standard_normal(size).astype(np.float32) for _ in range(4)]
    arrays[3] = np.abs(arrays[3])
    hyper = dict(lr=1e-3, betas=(0.5, 0.999), eps=1e-8, weight_decay=0.01, step=3)
    whole = [a.copy() for a in arrays]
    adam(*whole, **hyper)
    for count in ("1", "2"):
        monkeypatch.setenv("TINYGAN_NUM_THREADS", count)
        calls = []
        parts = [a.copy() for a in arrays]
        parallel.apply(lambda *a, **k: (calls.append(a[0].size), adam(*a, **k)),
                       *parts, None, **hyper)
        halves = [size] if count == "1" else [size // 2, size - size // 2]
        assert max(calls) <= parallel.CHUNK and sum(calls) == size
        assert len(calls) == sum(-(-h // parallel.CHUNK) for h in halves)
        for mine, theirs in zip(parts, whole):
            assert np.array_equal(mine, theirs)


MAKERS = {
    "adam": lambda ps: optim.Adam(ps, lr=1e-3, betas=(0.5, 0.999)),
    "amsgrad": lambda ps: optim.Adam(ps, lr=1e-3, betas=(0.5, 0.999), amsgrad=True,
                                     weight_decay=0.01),
    "rmsprop": lambda ps: optim.RMSprop(ps, lr=1e-3, weight_decay=0.01),
    "rmsprop-centered-momentum": lambda ps: optim.RMSprop(ps, lr=1e-3, centered=True,
                                                          momentum=0.5),
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_optimizers_on_two_threads_are_bit_identical_to_one(monkeypatch, name):
    rng = np.random.default_rng(0)
    shapes = [(700, 600), (300,), (3, 5)]  # one big enough to split, two that are not
    assert 700 * 600 >= 2 * parallel.MIN_SIZE
    values = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(3)]
    results, splits = [], []
    run = parallel.run
    monkeypatch.setattr(parallel, "run", lambda fn, parts: (splits.append(len(parts)),
                                                            run(fn, parts)))
    for count in ("1", "2"):
        monkeypatch.setenv("TINYGAN_NUM_THREADS", count)
        params = [tinygan.tensor(v.copy(), requires_grad=True) for v in values]
        opt = MAKERS[name](params)
        for g in grads:
            for p, gi in zip(params, g):
                p.grad = tinygan.tensor(gi)
            opt.step()
        results.append([p.data.copy() for p in params] +
                        [s[k].copy() for s in opt.state.values() for k in s if k != "step"])
    assert splits == [2] * 3  # the big parameter, in halves, on two threads only
    for one, two in zip(*results):
        assert np.array_equal(one, two)


def test_a_forked_child_gets_its_own_threads(monkeypatch):
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    monkeypatch.setenv("TINYGAN_NUM_THREADS", "2")
    parts = parallel.split(4 * parallel.MIN_SIZE)
    parallel.run(lambda part: None, parts)  # the parent's pool exists now
    pid = os.fork()
    if pid == 0:  # the child: a pool inherited without threads would hang here
        signal.alarm(30)  # so a hang fails the test instead of stalling the suite
        out = np.zeros(4 * parallel.MIN_SIZE)

        def fill(part):
            out[part] = 1.0
        parallel.run(fill, parts)
        os._exit(0 if out.all() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0


# ------------------------------------------------ every op that tinygan splits over threads


def _on_threads(monkeypatch, fn, counts=(1, 2, 3)):
    """fn() at each thread count, with the number of parts each split made."""
    results, splits = [], []
    run = parallel.run

    def counting(f, parts):
        splits[-1].append(len(parts))
        return run(f, parts)
    monkeypatch.setattr(parallel, "run", counting)
    for n in counts:
        tinygan.set_num_threads(n)
        splits.append([])
        try:
            results.append(fn())
        finally:
            tinygan.set_num_threads(None)
    return results, splits


def _assert_same_bits(results):
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert a.dtype == b.dtype and a.shape == b.shape
            assert np.array_equal(a, b)


@pytest.mark.parametrize("shape_a, shape_b", [
    ((1000, 300), (300, 200)),      # split by rows of a
    ((64, 784), (784, 1024)),       # short and wide: (b^T a^T)^T (vanilla-mnist's D)
    ((3, 5000), (5000, 576)),       # a weight gradient: few rows, a long inner dimension
    ((333, 129), (129, 517)),       # sizes that are no multiple of anything
    ((1264, 314), (314, 122)),      # cut at 16 rows, BLAS's Haswell kernel rounded it otherwise
])
def test_matmul_in_blocks_gives_the_bits_of_one_call(monkeypatch, shape_a, shape_b):
    rng = np.random.default_rng(1)
    a = rng.standard_normal(shape_a).astype(np.float32)
    b = rng.standard_normal(shape_b).astype(np.float32)
    results, splits = _on_threads(monkeypatch, lambda: [parallel.matmul(a, b)])
    assert set(splits[0]) <= {1} and max(splits[1]) > 1  # whole on one thread; split on two
    m, n = a.shape[0], b.shape[1]
    one_call = np.ascontiguousarray((b.T @ a.T).T) if m < 96 <= n else a @ b
    _assert_same_bits(results + [[one_call]])


@pytest.mark.parametrize("pairs", [
    [((64, 512), (512, 256)), ((512, 64), (64, 256))],     # a linear layer's dx and dW
    [((64, 1024), (1024, 784)), ((1024, 64), (64, 784)), ((333, 129), (129, 517))],
    [((1264, 314), (314, 122)), ((3, 5000), (5000, 576))],  # products of unequal sizes
])
def test_products_side_by_side_give_the_bits_of_each_alone(monkeypatch, pairs):
    rng = np.random.default_rng(3)
    arrays = [(rng.standard_normal(sa).astype(np.float32),
               rng.standard_normal(sb).astype(np.float32)) for sa, sb in pairs]
    arrays[0] = (arrays[0][0], np.asfortranarray(arrays[0][1]))  # a transposed weight
    results, splits = _on_threads(monkeypatch, lambda: parallel.matmuls(*arrays),
                                  counts=(1, 2, 3, 4))
    assert set(splits[0]) <= {1}  # one thread: no split
    for s in splits[1:]:  # more: one hand-off to the pool for all the products
        assert len([n for n in s if n > 1]) == 1
    tinygan.set_num_threads(1)
    try:
        alone = [parallel.matmul(a, b) for a, b in arrays]  # one thread: one call each
    finally:
        tinygan.set_num_threads(None)
    _assert_same_bits(results + [alone])


@pytest.mark.parametrize("m, k, n", [(64, 16384, 48), (8, 40000, 90), (95, 4097, 95)])
def test_a_long_inner_dimension_is_summed_in_pieces_the_same_on_any_thread_count(
        monkeypatch, m, k, n):
    # a weight gradient (O, pixels) @ (pixels, C), too short to cut by rows: pieces of
    # the inner dimension, cut the same on any thread count and added in order
    rng = np.random.default_rng(6)
    a = rng.standard_normal((k, m)).astype(np.float32).T  # rows(gy)^T, a transposed view
    b = rng.standard_normal((k, n)).astype(np.float32)
    pieces = parallel._inner_pieces(m, k, n)
    assert len(pieces) > 1 and pieces[0].start == 0 and pieces[-1].stop == k
    assert all(p.stop == q.start for p, q in zip(pieces, pieces[1:]))
    results, splits = _on_threads(monkeypatch, lambda: [parallel.matmul(a, b)])
    assert set(splits[0]) <= {1} and max(splits[1]) == 2 and max(splits[2]) == 3
    in_order = a[:, pieces[0]] @ b[pieces[0]]
    for p in pieces[1:]:
        in_order += a[:, p] @ b[p]
    _assert_same_bits(results + [[in_order]])
    np.testing.assert_allclose(results[0][0], a.astype(np.float64) @ b, rtol=1e-4, atol=1e-3)
    assert len(parallel._inner_pieces(m, k, 2 * parallel._ALIGN)) == 1  # cut by rows instead


def test_matmul_of_transposed_views_and_stacks(monkeypatch):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((900, 256)).astype(np.float32)
    w = rng.standard_normal((512, 256)).astype(np.float32)
    s1 = rng.standard_normal((8, 256, 32)).astype(np.float32)
    s2 = rng.standard_normal((8, 32, 256)).astype(np.float32)
    results, splits = _on_threads(monkeypatch, lambda: [
        parallel.matmul(x, w.T), parallel.matmul(w, x.T), parallel.matmul(s1, s2)])
    assert max(splits[2]) > 1
    # w x^T, shorter than wide with x^T stored by columns, runs as (x w^T)^T (_swapped)
    _assert_same_bits(results + [[x @ w.T, np.ascontiguousarray((x @ w.T).T), s1 @ s2]])
    assert parallel.matmul(np.ones(3), np.ones(3)) == 3.0  # vectors: plain @


@pytest.mark.parametrize("m, n", [(256, 2048), (64, 4096), (3, 5)])
def test_an_outer_product_is_a_multiply_with_the_bits_of_blas(monkeypatch, m, n):
    # (m, 1) @ (1, n): a spectral norm's u v^T, a one-output layer's input gradient
    rng = np.random.default_rng(5)
    a = rng.standard_normal((m, 1)).astype(np.float32)
    b = rng.standard_normal((1, n)).astype(np.float32)
    results, _ = _on_threads(monkeypatch, lambda: [parallel.matmul(a, b),
                                                   parallel.matmul(b.T, a.T)])
    _assert_same_bits(results + [[a @ b, b.T @ a.T]])


def test_a_stack_stored_by_columns_gives_its_product_stored_by_columns(monkeypatch):
    # attention's h (N, C, P), a channels-last conv's output reshaped, times beta (N, P, P):
    # computed as (beta^T h^T)^T, so that o reshaped to an image is channels-last too
    rng = np.random.default_rng(4)
    h = rng.standard_normal((8, 256, 64)).astype(np.float32).transpose(0, 2, 1)
    beta = rng.standard_normal((8, 256, 256)).astype(np.float32)
    results, splits = _on_threads(monkeypatch, lambda: [parallel.matmul(h, beta)])
    assert max(splits[1]) > 1
    _assert_same_bits(results)
    out = results[0][0]
    assert out.shape == (8, 64, 256) and out.strides[1] == out.itemsize  # by columns
    np.testing.assert_allclose(out, h.astype(np.float64) @ beta, rtol=1e-4, atol=1e-3)


def test_jobs_are_shared_each_once_whichever_thread_takes_them(monkeypatch):
    # a convolution's pieces: each job run once, by whichever thread is free first
    import threading
    for n in (1, 2, 3):
        tinygan.set_num_threads(n)
        try:
            done, names = [], set()

            def job(i):
                done.append(i)
                names.add(threading.current_thread().name)
                sum(range(20000))  # long enough that a second thread starts
            parallel.share(job, 7)
            parallel.share(job, 0)  # no job: nothing runs
        finally:
            tinygan.set_num_threads(None)
        assert sorted(done) == list(range(7))
        assert len(names) <= n


def test_a_short_batch_times_a_transposed_weight_runs_as_its_transpose(monkeypatch):
    # x W^T with fewer rows than W: computed as (W x^T)^T, which BLAS runs faster, and
    # handed back in rows like any other product
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 784)).astype(np.float32)
    w = rng.standard_normal((1024, 784)).astype(np.float32)
    results, splits = _on_threads(monkeypatch, lambda: [parallel.matmul(x, w.T)])
    assert max(splits[1]) > 1
    assert all(r[0].flags.c_contiguous for r in results)
    _assert_same_bits(results + [[np.ascontiguousarray((w @ x.T).T)]])
    np.testing.assert_allclose(results[0][0], x.astype(np.float64) @ w.T, rtol=1e-4, atol=1e-3)


def test_contiguous_copy_in_parts(monkeypatch):
    x = np.arange(64 * 40 * 40 * 16, dtype=np.float32).reshape(64, 16, 40, 40)
    view = x.transpose(0, 2, 3, 1)
    results, splits = _on_threads(monkeypatch, lambda: [parallel.ascontiguousarray(view)])
    assert max(splits[1]) > 1
    assert results[0][0].flags.c_contiguous
    _assert_same_bits(results + [[np.ascontiguousarray(view)]])


def _conv_input(shape=(64, 16, 36, 36)):
    rng = np.random.default_rng(3)
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("layer", [dict(kernel_size=5, stride=2, padding=2),
                                   dict(kernel_size=3, stride=1, padding=1),
                                   dict(kernel_size=1)])
def test_im2col_and_col2im_over_threads(monkeypatch, layer):
    x = tinygan.tensor(_conv_input())
    k = layer["kernel_size"]
    args = (k, layer.get("stride", 1), layer.get("padding", 0))

    def both():
        cols = F.im2col(x, *args)
        return [cols.data.copy(), F.col2im(cols, x.shape, *args).data.copy()]
    results, splits = _on_threads(monkeypatch, both)
    assert max(splits[1]) > 1
    _assert_same_bits(results)


@pytest.mark.parametrize("piece_bytes", [None, 2 ** 16])
@pytest.mark.parametrize("stride,padding", [(2, 2), (1, 2), (2, 0)])
def test_convolutions_by_tiles_over_threads(monkeypatch, stride, padding, piece_bytes):
    # conv2d, its weight gradient and conv_transpose2d cut into tiles (padding 2 makes 9
    # to 25 of them, padding 0 one), each tile's copies and products split over threads;
    # a transposed conv that widens the channels at stride 2 runs by phases; with small
    # pieces, each tile is cut into runs of a few images that the threads share out
    if piece_bytes is not None:
        monkeypatch.setattr(F.conv_tiles, "PIECE_BYTES", piece_bytes)
    rng = np.random.default_rng(5)
    x = tinygan.tensor(_channels_last((64, 16, 14, 14), 6))
    w = tinygan.tensor((0.1 * rng.standard_normal((32, 16, 5, 5))).astype(np.float32))
    up_w = tinygan.tensor((0.1 * rng.standard_normal((16, 32, 5, 5))).astype(np.float32))

    def ops():
        y = F.conv2d(x, w, None, stride, padding)
        gw = F.conv.conv2d_weight(x, y, (5, 5), stride, padding)
        back = F.conv_transpose2d(y, w, None, stride, padding)
        up = F.conv_transpose2d(x, up_w, None, stride, padding)  # by phases at stride 2
        return [y.data.copy(), gw.data, back.data, up.data]
    results, splits = _on_threads(monkeypatch, ops)
    assert max(splits[1]) > 1
    _assert_same_bits(results)


def test_a_convolution_that_fits_one_piece_is_cut_for_the_threads(monkeypatch):
    # attention's 1x1 convolutions: one tile, one piece of 4 MB at most; cut into
    # MIN_PIECES runs of images all the same, on any thread count
    rng = np.random.default_rng(7)
    x = tinygan.tensor(_channels_last((64, 64, 8, 8), 8))
    w = tinygan.tensor((0.1 * rng.standard_normal((8, 64, 1, 1))).astype(np.float32))
    calls = []
    pieces = F.conv_tiles._pieces
    monkeypatch.setattr(F.conv_tiles, "_pieces", lambda *a: calls.append(pieces(*a))
                        or calls[-1])

    def ops():
        y = F.conv2d(x, w)
        return [y.data.copy(), F.conv.conv2d_weight(x, y, (1, 1), 1, 0).data]
    results, splits = _on_threads(monkeypatch, ops)
    assert [len(found) for found in calls] == [F.conv_tiles.MIN_PIECES] * 2 * 3
    assert max(splits[1]) == 2
    _assert_same_bits(results)


def test_a_step_of_each_kind_of_layer_is_the_same_on_any_thread_count(monkeypatch):
    """conv, transposed conv, linear, BatchNorm, leaky_relu and their gradients."""
    rng = np.random.default_rng(4)
    x0 = rng.standard_normal((32, 8, 14, 14)).astype(np.float32)
    w0 = (0.1 * rng.standard_normal((16, 8, 5, 5))).astype(np.float32)
    t0 = (0.1 * rng.standard_normal((16, 8, 4, 4))).astype(np.float32)
    l0 = (0.1 * rng.standard_normal((10, 8 * 14 * 14))).astype(np.float32)
    g0 = rng.standard_normal((32, 10)).astype(np.float32)

    def step():
        x, w, t, lw = (tinygan.tensor(a.copy(), requires_grad=True) for a in (x0, w0, t0, l0))
        h = F.leaky_relu(F.conv2d(x, w, None, 2, 2), 0.2)
        h = F.batch_norm(h, None, None, None, None, training=True)
        h = F.relu(F.conv_transpose2d(h, t, None, 2, 1))
        y = F.linear(F.flatten(h[:, :, :14, :14], 1)[:, :8 * 14 * 14], lw)
        y.backward(tinygan.tensor(g0))
        return [y.data.copy(), x.grad.data, w.grad.data, t.grad.data, lw.grad.data]
    results, splits = _on_threads(monkeypatch, step)
    assert max(splits[1]) > 1
    _assert_same_bits(results)


def test_freed_memory_is_kept_for_the_next_step_unless_malloc_is_tuned(monkeypatch):
    if not sys.platform.startswith("linux"):
        assert parallel.keep_freed_memory() is False
        return
    assert parallel.keep_freed_memory() is True  # glibc (CI and this machine)
    np.ones(40_000_000, np.float32)  # 160 MB, past glibc's own threshold: the heap grows
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):  # the same again, from the heap (without the setting: ~740 faults each)
        block = np.ones(40_000_000, np.float32)
        del block
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults < 1000
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert parallel.keep_freed_memory() is False  # the environment's own setting stands


def _channels_last(shape, seed):
    """An NCHW-shaped array over channels-last memory, as a convolution leaves it."""
    n, c, h, w = shape
    data = np.random.default_rng(seed).standard_normal((n, h, w, c)).astype(np.float32)
    return data.transpose(0, 3, 1, 2)


ELEMENTWISE = {
    "leaky_relu": lambda x, g: F.leaky_relu(x, 0.2),
    "relu": lambda x, g: F.relu(x),
    "batch_norm": lambda x, g: F.batch_norm(x, None, None, g, None, training=True),
    "softmax": lambda x, g: F.softmax(x, 1),
    "add_sub_mul_div": lambda x, g: (x * F.reshape(g, (1, -1, 1, 1)) + x) / (x * x + 1.0) - x,
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_each_elementwise_op_and_its_gradient_over_threads(monkeypatch, name):
    x0 = _channels_last((64, 16, 48, 48), seed=5)  # 2,359,296 elements: split in parts
    gy = _channels_last((64, 16, 48, 48), seed=6)
    assert x0.size >= 4 * parallel.GRAIN

    def both():
        x = tinygan.tensor(x0, requires_grad=True)
        g = tinygan.tensor(np.linspace(0.5, 1.5, 16, dtype=np.float32), requires_grad=True)
        y = ELEMENTWISE[name](x, g)
        y.backward(tinygan.tensor(gy))
        return [y.data.copy(), x.grad.data] + ([g.grad.data] if g.grad is not None else [])
    results, splits = _on_threads(monkeypatch, both)
    assert splits[0] == [1] * len(splits[0]) and min(splits[1]) > 1  # every pass split
    _assert_same_bits(results)


def test_an_operand_in_another_memory_order_is_copied_to_the_first_ones():
    first = _channels_last((8, 16, 7, 7), seed=7)
    second = np.random.default_rng(8).standard_normal((8, 16, 7, 7)).astype(np.float32)
    copied = parallel.laid_out_as(second, first)
    assert np.array_equal(copied, second) and copied.strides == first.strides
    assert parallel.laid_out_as(second, second.copy()) is second   # one order: no copy
    sum_ = parallel.elementwise(np.add, first, second)
    assert sum_.strides == first.strides and np.array_equal(sum_, first + second)
    x = tinygan.tensor(second, requires_grad=True)   # channels-first, as after a reshape
    y = F.leaky_relu(x, 0.2)
    y.backward(tinygan.tensor(first))                  # a channels-last gradient
    assert x.grad.data.strides == second.strides
    assert np.array_equal(x.grad.data, np.where(second > 0, first, first * np.float32(0.2)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kept_half", [0, 1])
def test_a_dropout_mask_drawn_over_threads_is_one_draws(monkeypatch, dtype, kept_half):
    """Each thread draws its run of the numbers from a copy of the generator moved ahead;
    the numbers, and the generator's state after them, are those of one draw. An odd
    count and a float32 drawn before (half of a 64-bit output kept) test the seams."""
    from tinygan.functional import stochastic
    shape = (3, 2 * stochastic.RANDOM_GRAIN + 1)

    def draw():
        generator = np.random.default_rng(11)
        generator.random(kept_half, dtype=np.float32)
        u = stochastic._random(generator, shape, dtype)
        return [u, generator.random(5, dtype=np.float32)]
    results, splits = _on_threads(monkeypatch, draw)
    assert splits[0] == [] and splits[1] == [2] and splits[2] == [3]
    one = np.random.default_rng(11)
    one.random(kept_half, dtype=np.float32)
    _assert_same_bits(results + [[one.random(shape, dtype=dtype),
                                  one.random(5, dtype=np.float32)]])
    tinygan.set_num_threads(2)
    try:  # and through dropout: the same mask as one thread's
        tinygan.manual_seed(3)
        two = F.dropout(tinygan.ones(64, 16, 16, 16), 0.3).numpy()
    finally:
        tinygan.set_num_threads(None)
    tinygan.set_num_threads(1)
    try:
        tinygan.manual_seed(3)
        assert np.array_equal(F.dropout(tinygan.ones(64, 16, 16, 16), 0.3).numpy(), two)
    finally:
        tinygan.set_num_threads(None)
