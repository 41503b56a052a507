"""One thread count for the BLAS and tinygan's pool; the tuner that picks it by timing."""
import os
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import tinygan
from tinygan import bench_models, threads


@pytest.fixture(autouse=True)
def environment_count(monkeypatch):
    """Each test starts from the environment's count and leaves it so."""
    monkeypatch.setattr(threads, "_chosen", None)
    yield
    threads.set_num_threads(None)


def test_set_and_get_num_threads_by_pytorchs_names(monkeypatch):
    monkeypatch.setenv("TINYGAN_NUM_THREADS", "3")
    assert tinygan.get_num_threads() == 3
    tinygan.set_num_threads(2)
    assert tinygan.get_num_threads() == 2  # the call wins over the environment
    tinygan.set_num_threads(None)
    assert tinygan.get_num_threads() == 3
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match="set_num_threads"):
            tinygan.set_num_threads(bad)


def test_the_environment_in_order(monkeypatch):
    for name in ("TINYGAN_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    assert tinygan.get_num_threads() == threads.cores()
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "5")
    assert tinygan.get_num_threads() == 5
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert tinygan.get_num_threads() == 4
    monkeypatch.setenv("TINYGAN_NUM_THREADS", "auto")
    assert tinygan.get_num_threads() == threads.cores()
    monkeypatch.setenv("TINYGAN_NUM_THREADS", "0")
    with pytest.raises(ValueError, match="TINYGAN_NUM_THREADS='0'"):
        tinygan.get_num_threads()


def test_blas_is_held_at_one_thread():
    tinygan.set_num_threads(2)
    blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
    assert blas and all(p["num_threads"] == 1 for p in blas)


def test_a_count_from_a_flag_or_a_variable():
    assert threads.thread_count("auto") == "auto" and threads.thread_count(" 3 ") == 3
    for bad in ("0", "-1", "two", "1.5", ""):
        with pytest.raises(ValueError, match="expected a whole number of threads"):
            threads.thread_count(bad)


def test_busy_core_spins_while_the_block_runs_and_stops_after():
    with threads.busy_core() as load:
        assert load["core"] in range(threads.cores())
        os.kill(load["pid"], 0)  # alive
        if sys.platform.startswith("linux"):
            with open(f"/proc/{load['pid']}/status") as status:
                pinned = [line.split()[-1] for line in status
                          if line.startswith("Cpus_allowed_list")]
            assert pinned == [str(load["core"])]
    with pytest.raises(ProcessLookupError):
        os.kill(load["pid"], 0)  # ended and reaped


def test_candidate_counts():
    assert threads.candidate_counts(1) == [1]
    assert threads.candidate_counts(2) == [1, 2]
    assert threads.candidate_counts(6) == [1, 2, 4, 6]
    assert threads.candidate_counts(16) == [1, 2, 4, 8, 16]


class Clock:
    """A fake perf_counter: a step at n threads takes cost[n] seconds."""

    def __init__(self, cost):
        self.now, self.cost = 0.0, dict(cost)

    def __call__(self):
        return self.now

    def step(self, tuner):
        self.now += self.cost[tinygan.get_num_threads()]
        tuner()


def test_the_tuner_keeps_the_fastest_and_moves_when_a_core_gets_busy(monkeypatch):
    clock = Clock({1: 1.0, 2: 0.6})
    monkeypatch.setattr(threads.time, "perf_counter", clock)
    said = []
    tuner = threads.ThreadTuner([1, 2], trial_steps=3, recheck_every=100, patience=4,
                                report=said.append)
    for _ in range(tuner.trial_length):
        clock.step(tuner)
    assert tuner.threads == 2 and tinygan.get_num_threads() == 2
    assert said == ["tinygan: 2 threads (a step timed 1: 1000 ms, 2: 600 ms); checking "
                    f"again at step {tuner.trial_length + 100}"]
    clock.cost[2] = 3.0  # another program takes a core: two threads crawl
    for _ in range(4 + tuner.trial_length):
        clock.step(tuner)
    assert tuner.threads == 1 and tinygan.get_num_threads() == 1
    assert len(said) == 2 and said[1].startswith("tinygan: 1 thread (")
    assert [count for _, count in tuner.schedule][-2:] == [2, 1]
    clock.cost[2] = 0.6  # the core is free again: the periodic check finds it
    for _ in range(100 + tuner.trial_length):
        clock.step(tuner)
    assert tuner.threads == 2


@pytest.mark.parametrize("two_threads,chosen", [(0.97, 1), (0.9, 2)])
def test_the_tuner_keeps_fewer_threads_unless_more_are_clearly_faster(monkeypatch,
                                                                      two_threads, chosen):
    clock = Clock({1: 1.0, 2: two_threads})  # 3% faster: within the margin; 10%: beyond
    monkeypatch.setattr(threads.time, "perf_counter", clock)
    tuner = threads.ThreadTuner([1, 2], margin=0.05, report=lambda line: None)
    for _ in range(tuner.trial_length):
        clock.step(tuner)
    assert tuner.threads == chosen and tinygan.get_num_threads() == chosen


def test_a_single_candidate_needs_no_trial():
    tuner = threads.ThreadTuner([1], report=pytest.fail)
    assert tuner.threads == 1 and tuner.trial_length == 0
    tuner()
    assert tinygan.get_num_threads() == 1


def test_the_tuner_resumes_with_the_count_it_chose(monkeypatch):
    clock = Clock({1: 1.0, 2: 0.5})
    monkeypatch.setattr(threads.time, "perf_counter", clock)
    tuner = threads.ThreadTuner([1, 2], recheck_every=50, report=lambda line: None)
    for _ in range(20):
        clock.step(tuner)
    state = tuner.state_dict()
    assert state["threads"] == 2 and state["schedule"][-1][1] == 2
    tinygan.set_num_threads(1)  # a new process starts with another count
    resumed = threads.ThreadTuner([1, 2], recheck_every=50, report=pytest.fail)
    resumed.load_state_dict(state)
    assert tinygan.get_num_threads() == 2 and resumed.threads == 2
    assert resumed.state_dict() == state  # no trial: nothing new recorded
    for _ in range(5):
        clock.step(resumed)
    assert resumed.threads == 2 and resumed.schedule == state["schedule"]


def _train(workload, counts):
    fw = bench_models.tinygan_framework()
    setup = bench_models.build(fw, workload, 32, seed=0)
    losses = []
    for n in counts:
        tinygan.set_num_threads(n)
        losses.append([float(loss.item()) for loss in bench_models.train_step(setup)])
    return losses, [p.data.copy() for p in setup.G.parameters()] + [
        p.data.copy() for p in setup.D.parameters()]


@pytest.mark.parametrize("workload", ["vanilla-mnist", "dcgan-mnist", "wgan-gp-mnist"])
def test_training_gives_the_same_bits_whatever_the_counts(workload):
    """What the tuner may do mid-run (change the count) changes no number."""
    one = _train(workload, [1, 1, 1])
    switching = _train(workload, [2, 1, 3])
    assert one[0] == switching[0]
    assert all(np.array_equal(a, b) for a, b in zip(one[1], switching[1]))
