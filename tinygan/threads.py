"""How many cores tinygan computes on: one number for the BLAS and for tinygan's own threads.

NumPy hands matrix products to its BLAS (OpenBLAS), which keeps a pool of threads of its
own; tinygan splits the rest of a step (im2col, col2im, elementwise ops, BatchNorm, Adam)
over the threads of `parallel.py`. Two pools on the same cores oversubscribe them, and an
idle OpenBLAS thread spins for a while before it sleeps, so on a busy machine a step can
take ten times longer with two threads than with one. So tinygan holds the BLAS at one
thread and splits its matrix products itself, by blocks of rows or columns, on its own
pool: one pool, one number, set here.

    tinygan.set_num_threads(4)     # PyTorch's names
    tinygan.get_num_threads()      # -> 4

Without a call the number is $TINYGAN_NUM_THREADS, else $OMP_NUM_THREADS or
$OPENBLAS_NUM_THREADS (the variables that already tell NumPy's BLAS how many cores it
may use), else the cores this process may run on. `TINYGAN_NUM_THREADS=auto` is the
cores, until a `ThreadTuner` (below: called after each training step) picks the count
by timing steps.

What depends on the count: nothing that tinygan computes. A matrix product split into
blocks of rows (or of columns) gives each element the same sum in the same order as one
call would (OpenBLAS blocks the inner dimension the same way whatever block of rows it is
given: tests/test_parallel.py checks every split op bit for bit), elementwise work is
per element, and sums over a batch are cut by the array's size, never by the count.
What OpenBLAS computes on its own threads can depend on their number (a product of
(64, 784) by (784, 1024) differs in its last bits between one and two OpenBLAS threads),
which is why it is held at one.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time

from threadpoolctl import threadpool_limits

_VARIABLES = ("TINYGAN_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_chosen: int | None = None   # set_num_threads's number; None: read the environment
_blas_pid = 0                # the process whose BLAS was held at one thread


def cores() -> int:
    """The cores this process may run on (its affinity mask, where the system has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity masks (macOS, Windows)
        return os.cpu_count() or 1


def thread_count(text: str) -> int | str:
    """A count as a flag or a variable gives it: a whole number >= 1, or "auto"."""
    text = text.strip().lower()
    if text == "auto" or text.isdigit() and int(text) >= 1:
        return text if text == "auto" else int(text)
    raise ValueError(f"expected a whole number of threads (>= 1) or 'auto', got {text!r}")


def thread_flag(text: str) -> int | str:
    """thread_count as an argparse type: --threads N|auto."""
    try:
        return thread_count(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _from_environment() -> int:
    for name in _VARIABLES:
        value = os.environ.get(name, "").strip()
        if not value:
            continue
        try:
            count = thread_count(value)
        except ValueError:
            raise ValueError(f"{name}={value!r}: expected a whole number of threads (>= 1)"
                             + (" or 'auto'" if name == "TINYGAN_NUM_THREADS" else "")
                             ) from None
        if count == "auto" and name != "TINYGAN_NUM_THREADS":
            raise ValueError(f"{name}={value!r}: expected a whole number of threads (>= 1)")
        return cores() if count == "auto" else count
    return cores()


def setting(flag: int | str | None = None) -> int | str:
    """What a command computes on: its --threads flag if given, else the environment's
    number, else "auto" (no variable set, or TINYGAN_NUM_THREADS=auto)."""
    if flag is not None:
        return thread_count(str(flag))
    for name in _VARIABLES:
        if os.environ.get(name, "").strip():
            return "auto" if os.environ[name].strip().lower() == "auto" else _from_environment()
    return "auto"


def get_num_threads() -> int:
    """The threads tinygan splits its work over (asked before every split, so it is cheap)."""
    if _blas_pid != os.getpid():
        hold_blas_at_one_thread()
    return _chosen if _chosen is not None else _from_environment()


def set_num_threads(n: int | None) -> None:
    """Compute on `n` threads from now on (None: back to the environment's number)."""
    global _chosen
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"set_num_threads: expected a whole number >= 1, got {n!r}")
    if _blas_pid != os.getpid():
        hold_blas_at_one_thread()
    _chosen = n


def uses_environment() -> bool:
    """True while no set_num_threads(n) overrides the environment's number."""
    return _chosen is None


def hold_blas_at_one_thread() -> None:
    """Set NumPy's BLAS to one thread, once per process (threadpoolctl finds the library).

    A forked child inherits the setting; it is asked again there all the same, since a
    child that imports NumPy afresh (spawn) does not.
    """
    global _blas_pid
    _blas_pid = os.getpid()
    threadpool_limits(limits=1, user_api="blas")


@contextlib.contextmanager
def busy_core():
    """Another process spinning on one core (the last this process may use) while the block
    runs, as another program would: what a ThreadTuner must cope with (bench --busy-core).
    Yields {"core", "pid"}."""
    core, pin = max(cores() - 1, 0), getattr(os, "sched_setaffinity", None)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"],
                               preexec_fn=(lambda: pin(0, {core})) if pin else None)
    try:
        yield {"core": core, "pid": spinner.pid}
    finally:
        spinner.kill()
        spinner.wait()


def candidate_counts(most: int | None = None) -> list[int]:
    """The counts a tuner times: 1, 2, 4, ... below the cores, and the cores."""
    most = cores() if most is None else most
    counts, n = [], 1
    while n < most:
        counts.append(n)
        n *= 2
    return counts + [most]


class ThreadTuner:
    """Chooses the thread count by timing training steps: call it after every step.

        tuner = ThreadTuner()               # candidates 1, 2, 4, ... and the cores
        training.fit([tuner, log, save])    # fit calls tuner(training, losses)

    It times `trial_steps` steps at each candidate count (the first step after a change
    is left out: pools and caches settle), keeps the fewest threads whose median step is
    within `margin` of the shortest, and says so in one line. The margin is for noise and
    load: with one core busy, dcgan-cifar10's step took 4-9% longer at two threads than
    at one, within what three steps' medians vary by, and a tuner without it kept two
    threads in both rounds of one run, 11% slower than one thread. It checks again every
    `recheck_every` steps, and at once when `patience` steps in a row take `slower` times
    the chosen count's median: when another program takes a core, two threads can be far
    slower than one, and a few slow steps later the tuner has moved. A step is the time
    from one call to the next, so put the tuner first among the callbacks.

    Which results depend on the thread count: none of tinygan's. NumPy's BLAS is held at
    one thread (see this module's docstring); a matrix product that tinygan splits gives
    each element the bits of one BLAS call, and every other split op computes each
    element as one thread would; sums are cut by size, never by the count. So the same
    run gives the same weights and losses at 1, 2 or 16 threads, and under a tuner that
    changed its mind mid-run (tests/test_threads.py trains both ways). Only the speed
    changes, and the times a tuner measures are the one thing it cannot replay.

    `state_dict()` records the count it chose, when each change happened (`schedule`,
    [step, count] pairs) and the medians it measured; a run stores it in its checkpoint.
    `load_state_dict()` puts the count back at once on resume, without a new trial, and
    carries on checking on the same schedule.
    """

    def __init__(self, candidates=None, trial_steps: int = 3, recheck_every: int = 500,
                 patience: int = 5, slower: float = 1.5, margin: float = 0.05, report=print):
        self.candidates = sorted(set(candidates or candidate_counts()))
        if self.candidates[0] < 1 or trial_steps < 1 or recheck_every < 1:
            raise ValueError(f"ThreadTuner: candidates {self.candidates}, trial_steps "
                             f"{trial_steps} and recheck_every {recheck_every} must be >= 1")
        self.trial_steps, self.recheck_every = trial_steps, recheck_every
        self.patience, self.slower, self.margin = patience, slower, margin
        self.report = report
        self.step = 0            # calls so far: steps taken
        self.threads = None      # the chosen count; None until the first trial ends
        self.schedule = []       # [step, count]: from that step on, that many threads
        self.medians = {}        # count -> median seconds a step, from the last trial
        self.next_check = 0
        self._plan = []          # counts still to time in this trial
        self._times = {}         # count -> seconds of its timed steps in this trial
        self._recent = []        # the chosen count's last step times
        self._settling = True    # the step running now follows a change: not timed
        self._last = None
        self._start_trial()

    @property
    def trial_length(self) -> int:
        """Steps a trial takes at most: each count's timed steps and the step that
        settles after a change (the first step of a run is that step for its count)."""
        return len(self.candidates) * (self.trial_steps + 1) if len(self.candidates) > 1 else 0

    def __call__(self, *_):
        """After a step (fit passes the training and its losses; neither is needed)."""
        now = time.perf_counter()
        elapsed = None if self._last is None or self._settling else now - self._last
        self.step += 1
        self._settling = False
        if self._plan:
            self._trial_step(elapsed)
        elif elapsed is not None:
            self._watch(elapsed)
        self._last = time.perf_counter()

    # -- trials
    def _start_trial(self):
        if len(self.candidates) == 1:
            self._choose(self.candidates[0])
            return
        # the count in use is timed first: no change, so no settling step for it
        current = get_num_threads()
        self._plan = sorted(self.candidates, key=lambda c: c != current)
        self._times = {c: [] for c in self.candidates}
        self._use(self._plan[0])

    def _trial_step(self, elapsed):
        count = self._plan[0]
        if elapsed is not None:
            self._times[count].append(elapsed)
        if len(self._times[count]) < self.trial_steps:
            return
        self._plan.pop(0)
        if self._plan:
            self._use(self._plan[0])
            return
        self.medians = {c: statistics.median(t) for c, t in self._times.items()}
        shortest = min(self.medians.values())
        best = min(c for c, s in self.medians.items() if s <= shortest * (1 + self.margin))
        changed = best != self.threads
        self._choose(best)
        if changed:
            timed = ", ".join(f"{c}: {1000 * s:.0f} ms" for c, s in sorted(self.medians.items()))
            self.report(f"tinygan: {best} thread{'s' if best > 1 else ''} (a step timed "
                        f"{timed}); checking again at step {self.next_check}")

    def _choose(self, count):
        self.threads = count
        self._use(count)
        self._recent = []
        self.next_check = self.step + self.recheck_every

    def _use(self, count):
        if get_num_threads() != count:
            self._settling = True
        set_num_threads(count)
        if not self.schedule or self.schedule[-1][1] != count:
            self.schedule.append([self.step, count])

    # -- between trials
    def _watch(self, elapsed):
        self._recent = (self._recent + [elapsed])[-self.patience:]
        median = self.medians.get(self.threads)
        slow = (median is not None and len(self._recent) == self.patience
                and min(self._recent) > self.slower * median)
        if slow or self.step >= self.next_check:
            self._start_trial()

    # -- checkpoints
    def state_dict(self) -> dict:
        return {"threads": self.threads, "step": self.step, "next_check": self.next_check,
                "schedule": [list(s) for s in self.schedule],
                "medians_ms": {str(c): round(1000 * s, 3) for c, s in self.medians.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Resume: the recorded count at once (no trial), checks on the recorded schedule."""
        self.step = int(state["step"])
        self.schedule = [list(s) for s in state["schedule"]]
        self.medians = {int(c): ms / 1000 for c, ms in state["medians_ms"].items()}
        self._plan, self._times, self._last = [], {}, None
        if state["threads"] is None:  # saved in the middle of the first trial
            self.threads = None
            self._start_trial()
            return
        self._choose(int(state["threads"]))
        self.next_check = int(state["next_check"])
