"""Elementwise work split over threads gives the same bits as one thread."""
import multiprocessing
import os
import signal

import numpy as np
import pytest

import tinygan
from tinygan import optim, parallel


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
    assert sorted(seen) == [(2 * parallel.MIN_SIZE, None)] * 2  # two halves, None in each
    assert (big == 2).all() and (other == 2).all()
    seen.clear()
    strided = np.ones((4, 2 * parallel.MIN_SIZE))[:, ::2]  # not contiguous: one call
    parallel.apply(double, strided, np.ones_like(strided), None, by=3.0)
    assert seen == [(strided.size, None)] and (strided == 3).all()


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
    for threads in ("1", "2"):
        monkeypatch.setenv("TINYGAN_NUM_THREADS", threads)
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
