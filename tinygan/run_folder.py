"""A run folder, kept consistent whatever stops the run (Ctrl-C, kill -9, a full disk).

    RUN/config.json              every setting (written atomically)
    RUN/losses.csv               a row per generator step (also metrics.csv, with --eval-every)
    RUN/samples/step_N.png       sample grids
    RUN/checkpoints/latest.npz   the last checkpoint
    RUN/.lock                    held by the one process that writes the folder

The checkpoint and the logs are committed together: before a checkpoint is renamed into
place, every log is flushed and fsynced, and the checkpoint records how many bytes of
each log belong to it. On resume each log is cut back to exactly that length (rows
written after the checkpoint, or a row torn by a crash, go; the resumed run writes them
again, bit-identically), so logs and checkpoint always agree, and no row is lost or
written twice. A checkpoint replaces the previous one only once it is fully on disk.
"""
from __future__ import annotations

import csv
import glob
import io
import json
import os

from .files import atomic_path, atomic_write
from .serialization import CheckpointError, load, save

try:  # one writer per folder: an advisory lock that the OS releases when the holder dies
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOGS = ("losses.csv", "metrics.csv", "gradients.csv", "coverage.csv")
CHECKPOINT_KEYS = ("gan", "step", "rng", "loader", "config")


class RunFolderError(RuntimeError):
    """A run folder that cannot be used as asked; the message names the file."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True


class RunFolder:
    """The files of one run, written by one process at a time."""

    def __init__(self, path: str):
        self.path = os.fspath(path)
        self._lock = None
        self._logs: dict = {}  # name -> open file, appended to

    def file(self, *parts) -> str:
        return os.path.join(self.path, *parts)

    @property
    def checkpoint_path(self) -> str:
        return self.file("checkpoints", "latest.npz")

    # -- one writer
    def acquire(self) -> str | None:
        """Take the folder's lock (creating the folder). Raises RunFolderError when another
        live process holds it; returns a note when the lock of a dead process is taken over."""
        try:
            os.makedirs(self.file("samples"), exist_ok=True)
            os.makedirs(self.file("checkpoints"), exist_ok=True)
            fd = os.open(self.file(".lock"), os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise RunFolderError(f"cannot write the run folder {self.path}: "
                                 f"{e.strerror or e}") from e
        previous = os.read(fd, 64).decode("ascii", "replace").strip()
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise RunFolderError(
                    f"{self.path} is in use by process {previous or '?'}, which is writing "
                    "it now; wait for it to finish or stop it") from None
        elif previous.isdigit() and _pid_alive(int(previous)):
            os.close(fd)
            raise RunFolderError(f"{self.path} is in use by process {previous}")
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, str(os.getpid()).encode())
        self._lock = fd
        if previous.isdigit() and int(previous) != os.getpid():
            return (f"took over the lock of process {previous} in {self.path} (it is no "
                    "longer running)")
        return None

    def release(self) -> None:
        """Close the logs and let go of the lock (an empty lock file: nobody holds it)."""
        for f in self._logs.values():
            f.close()
        self._logs = {}
        if self._lock is not None:
            os.ftruncate(self._lock, 0)
            os.close(self._lock)  # closing releases the flock
            self._lock = None

    def remove_temp_files(self) -> list:
        """Delete what killed writes left behind (.NAME.XXXX.part beside their targets)."""
        stale = [p for pattern in (".*.part", ".*.part.*")
                 for folder in (self.path, self.file("checkpoints"), self.file("samples"))
                 for p in glob.glob(os.path.join(folder, pattern))]
        for path in stale:
            os.remove(path)
        return stale

    # -- settings
    def has_run(self) -> bool:
        return os.path.exists(self.file("config.json"))

    def read_config(self) -> dict:
        path = self.file("config.json")
        try:
            with open(path) as f:
                config = json.load(f)
        except FileNotFoundError:
            raise RunFolderError(f"no run in {self.path}: {path} does not exist") from None
        except ValueError as e:
            raise RunFolderError(f"{path} is not valid JSON ({e})") from None
        if not isinstance(config, dict) or "variant" not in config:
            raise RunFolderError(f"{path} is not a tinygan run's config (no 'variant')")
        config.pop("versions", None)
        return config

    def write_config(self, config: dict, versions: dict) -> None:
        with atomic_path(self.file("config.json")) as tmp, open(tmp, "w") as f:
            json.dump({**config, "versions": versions}, f, indent=2)

    # -- logs
    def log(self, name: str, header, row) -> None:
        """Append a CSV row to the log `name` (writing its header first if it is new)."""
        f = self._logs.get(name)
        if f is None:
            path = self.file(name)
            new = not os.path.exists(path) or os.path.getsize(path) == 0
            f = self._logs[name] = open(path, "a", newline="")
            if new:
                csv.writer(f).writerow(header)
        csv.writer(f).writerow(row)

    def flush_logs(self) -> None:
        """Let readers see the rows so far (not yet durable: see save_checkpoint)."""
        for f in self._logs.values():
            f.flush()

    def _sync_logs(self) -> dict:
        """Flush and fsync every log; {name: bytes} as they now stand on disk."""
        for f in self._logs.values():
            f.flush()
            os.fsync(f.fileno())
        return {name: os.path.getsize(self.file(name)) for name in LOGS
                if os.path.exists(self.file(name))}

    # -- checkpoints
    def save_checkpoint(self, state: dict) -> None:
        """Make the logs durable, then write the checkpoint atomically, recording the logs'
        lengths in it. A failure (a full disk) leaves the previous checkpoint in place."""
        path = self.checkpoint_path
        try:
            state = dict(state, logs=self._sync_logs())
            save(state, path)
        except OSError as e:
            raise RunFolderError(f"cannot write {path}: {e.strerror or e}; the previous "
                                 "checkpoint is kept") from e

    def load_checkpoint(self, device: str) -> dict:
        """The latest checkpoint, checked to be a training checkpoint."""
        path = self.checkpoint_path
        if not os.path.exists(path):
            raise RunFolderError(f"no checkpoint at {path}")
        try:
            state = load(path, device=device)
        except CheckpointError as e:
            raise RunFolderError(str(e)) from None
        missing = [k for k in CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
        if missing:
            raise RunFolderError(f"{path} is not a training checkpoint (it has no "
                                 f"{', '.join(repr(k) for k in missing)})")
        return state

    def restore_logs(self, state: dict) -> None:
        """Cut every log back to what the checkpoint recorded, atomically; drop the sample
        grids of steps after it (the resumed run draws them again)."""
        step = int(state["step"])
        recorded = state.get("logs")
        for name in LOGS:
            path = self.file(name)
            if not os.path.exists(path):
                if recorded and recorded.get(name):
                    raise RunFolderError(f"{path} is missing; its checkpoint (step {step}) "
                                         f"recorded {recorded[name]} bytes of it")
                continue
            with open(path, "rb") as f:
                content = f.read()
            if recorded is None:  # a checkpoint from before logs were recorded in it
                kept = _rows_up_to(content, step)
            else:
                size = recorded.get(name, 0)
                if len(content) < size:
                    raise RunFolderError(
                        f"{path} holds {len(content)} bytes, but its checkpoint (step {step}) "
                        f"recorded {size}: the log was cut or replaced after the checkpoint")
                kept = content[:size]
            if kept != content:
                atomic_write(path, lambda f: f.write(kept))
        for grid in glob.glob(self.file("samples", "step_*.png")):
            digits = os.path.basename(grid)[5:-4]
            if digits.isdigit() and int(digits) > step:
                os.remove(grid)


def _rows_up_to(content: bytes, step: int) -> bytes:
    """The header and the well-formed rows of steps <= step (for logs that a checkpoint did
    not measure): torn rows, blank lines and NUL bytes go."""
    lines = content.decode("utf-8", "replace").splitlines()
    if not lines:
        return b""
    out = io.StringIO()
    writer = csv.writer(out)
    header = next(csv.reader([lines[0]]))
    writer.writerow(header)
    for row in csv.reader(line for line in lines[1:] if line.strip() and "\0" not in line):
        if len(row) == len(header) and row[0].isdigit() and int(row[0]) <= step:
            writer.writerow(row)
    return out.getvalue().encode()
