"""A run folder survives faults: kill -9 and SIGTERM at random moments, two writers, a full
disk, Inf in the weights. Each run is a real `python -m tinygan.train` process (or, for
the injected faults, `train.main` in this process), and every interrupted run, resumed,
must end bit-identical to one that was never interrupted, with the same loss rows.
"""
import errno
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import tinygan
from tinygan import serialization, train
from tinygan.optim import Adam

ARGS = ["vanilla", "ring8", "--batch-size", "8", "--steps", "240", "--checkpoint-every", "7",
        "--sample-every", "60", "--no-progress"]


def _env(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1",
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


def _start(argv, tmp_path):
    return subprocess.Popen([sys.executable, "-m", "tinygan.train", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(tmp_path))


def _finish(process, timeout=120):
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out + err


def _rows(folder):
    with open(os.path.join(folder, "losses.csv"), "rb") as f:
        return f.read()


def _same_checkpoints(a, b):
    flat_a, flat_b = _flat(tinygan.load(a)), _flat(tinygan.load(b))
    assert flat_a.keys() == flat_b.keys()
    for key in flat_a:
        x, y = flat_a[key], flat_b[key]
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y), key
        elif key != "/logs/losses.csv":  # the bytes of rows are compared below
            assert x == y, key


def _flat(tree, prefix=""):
    if isinstance(tree, (dict, list, tuple)):
        items = tree.items() if isinstance(tree, dict) else enumerate(tree)
        return {k: v for key, value in items for k, v in _flat(value, f"{prefix}/{key}").items()}
    return {prefix: getattr(tree, "data", tree)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same run, never interrupted."""
    folder = tmp_path_factory.mktemp("reference") / "run"
    code, output = _finish(_start(ARGS + ["--out", str(folder)], folder.parent))
    assert code == 0, output
    return folder


@pytest.mark.parametrize("seed", [0, 1])
def test_killed_at_random_moments_then_resumed_ends_bit_identical(seed, reference, tmp_path):
    """SIGKILL and SIGTERM, each at a random moment (while starting, training, writing a
    checkpoint or the pictures), several times; then a resume that runs to the end."""
    rng = random.Random(seed)
    folder = tmp_path / "run"
    argv = ARGS + ["--out", str(folder)]
    outcomes = []
    for kill in (signal.SIGKILL, signal.SIGTERM, signal.SIGKILL, signal.SIGTERM):
        process = _start(argv, tmp_path)
        time.sleep(rng.uniform(0.3, 2.5))
        process.send_signal(kill)
        code, output = _finish(process)
        outcomes.append((kill, code))
        assert code in (0, -signal.SIGKILL, -signal.SIGTERM, 143), output
        if code == 143:
            assert "interrupted at step" in output and "--resume" in output
        # the next start continues the run: a new run if none was saved yet, else a resume
        argv = ["--resume", str(folder), "--no-progress"] if (
            folder / "config.json").exists() else argv
    code, output = _finish(_start(argv, tmp_path))
    assert code == 0, (outcomes, output)
    _same_checkpoints(reference / "checkpoints/latest.npz", folder / "checkpoints/latest.npz")
    assert _rows(reference) == _rows(folder)
    assert not list(folder.rglob("*.part")), "temporary files are cleaned up"


def test_two_runs_into_one_folder_exactly_one_runs(tmp_path):
    folder = tmp_path / "run"
    argv = ARGS[:4] + ["--steps", "80", "--no-progress", "--out", str(folder)]
    first, second = _start(argv, tmp_path), _start(argv, tmp_path)
    results = sorted([_finish(first), _finish(second)], key=lambda r: r[0])
    (ok, _), (refused, message) = results
    assert (ok, refused) == (0, 2), results
    assert "in use by process" in message or "already holds a run" in message
    assert tinygan.load(folder / "checkpoints/latest.npz")["step"] == 80


def test_two_resumes_at_once_exactly_one_runs(tmp_path):
    folder = tmp_path / "run"
    code, output = _finish(_start(ARGS[:4] + ["--steps", "1", "--no-progress", "--out",
                                              str(folder)], tmp_path))
    assert code == 0, output
    argv = ["--resume", str(folder), "--steps", "150", "--no-progress"]
    first = _start(argv, tmp_path)
    time.sleep(0.1)
    second = _start(argv, tmp_path)
    results = sorted([_finish(first), _finish(second)], key=lambda r: r[0])
    (ok, _), (refused, message) = results
    assert (ok, refused) == (0, 2), results
    assert "in use by process" in message
    assert tinygan.load(folder / "checkpoints/latest.npz")["step"] == 150


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path, capsys):
    folder = tmp_path / "run"
    assert train.main(ARGS[:4] + ["--steps", "2", "--no-progress", "--out", str(folder)]) == 0
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (folder / ".lock").write_text(dead)  # as a run killed with -9 leaves it
    (folder / "checkpoints" / ".latest.npz.abc123.part").write_bytes(b"half a checkpoint")
    capsys.readouterr()
    assert train.main(["--resume", str(folder), "--steps", "3", "--no-progress"]) == 0
    assert f"took over the lock of process {dead}" in capsys.readouterr().err
    assert not list(folder.rglob("*.part"))


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch, capsys):
    reference = tmp_path / "A"
    argv = ARGS[:4] + ["--steps", "30", "--checkpoint-every", "5", "--no-progress"]
    assert train.main(argv + ["--out", str(reference)]) == 0
    calls = {"n": 0}
    real_write = serialization._write_npz

    def write(file, arrays):  # the fourth checkpoint (step 15) finds the disk full
        calls["n"] += 1
        if calls["n"] == 4:
            file.write(b"x" * 100)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(file, arrays)
    monkeypatch.setattr(serialization, "_write_npz", write)
    folder = tmp_path / "B"
    assert train.main(argv + ["--out", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "latest.npz" in err and "(step 10)" in err
    assert tinygan.load(folder / "checkpoints/latest.npz")["step"] == 10
    assert not list(folder.rglob("*.part"))
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert train.main(["--resume", str(folder), "--no-progress"]) == 0
    _same_checkpoints(reference / "checkpoints/latest.npz", folder / "checkpoints/latest.npz")
    assert _rows(reference) == _rows(folder)


def test_inf_in_the_weights_never_reaches_a_checkpoint(tmp_path, monkeypatch, capsys):
    calls = {"n": 0}
    real_step = Adam.step

    def step(self, closure=None):  # the 12th update (step 6's G) writes inf into a weight:
        real_step(self, closure)      # step 6's losses, computed before it, are finite
        calls["n"] += 1
        if calls["n"] == 12:
            self.param_groups[0]["params"][0].data[0, 0] = np.inf
    monkeypatch.setattr(Adam, "step", step)
    folder = tmp_path / "run"
    code = train.main(ARGS[:4] + ["--steps", "20", "--checkpoint-every", "3",
                                  "--no-progress", "--out", str(folder)])
    err = capsys.readouterr().err
    assert code == 1 and "step 6: G." in err and "NaN or infinite" in err, err
    assert "(step 3)" in err
    state = tinygan.load(folder / "checkpoints/latest.npz")
    assert state["step"] == 3
    for net in ("G", "D"):
        assert all(np.isfinite(getattr(v, "data", v)).all()
                   for v in state["gan"][net].values())


def test_a_torn_log_is_cut_back_to_the_checkpoint(tmp_path, capsys):
    reference, folder = tmp_path / "A", tmp_path / "B"
    argv = ARGS[:4] + ["--checkpoint-every", "4", "--no-progress"]
    assert train.main(argv + ["--steps", "10", "--out", str(reference)]) == 0
    assert train.main(argv + ["--steps", "8", "--out", str(folder)]) == 0
    with open(folder / "losses.csv", "ab") as f:  # a crash mid-row, then garbage
        f.write(b"9,0,1.2\n\n\0\0\0")
    assert train.main(["--resume", str(folder), "--steps", "10", "--no-progress"]) == 0
    assert _rows(reference) == _rows(folder)
