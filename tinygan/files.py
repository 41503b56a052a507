"""Writing files atomically: a temporary file beside the target, then one rename.

A reader (or a run resumed after a crash) sees the old file or the new one, never half
of one; a writer that fails leaves nothing behind. Every file tinygan writes (checkpoints,
downloads, decoded-image caches, pictures, metrics) goes through here.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from typing import BinaryIO, Callable

_UMASK = os.umask(0)
os.umask(_UMASK)


def _temporary_beside(path: str) -> tuple[int, str]:
    folder = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    return tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")


def _publish(tmp: str, path: str) -> None:
    """Give tmp the permissions of a normally created file, rename it onto path, and make
    the rename durable where the platform allows."""
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes files private (0600)
    os.replace(tmp, path)
    try:
        folder = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError:
        pass


def _discard(tmp: str) -> None:
    try:
        os.remove(tmp)
    except FileNotFoundError:
        pass


def atomic_write(path, write: Callable[[BinaryIO], None]) -> None:
    """Call write(file) on a temporary file beside path, flush it to disk, then rename."""
    path = os.fspath(path)
    fd, tmp = _temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, path)
    except BaseException:
        _discard(tmp)
        raise


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path` (for writers that want a file name: PIL,
    matplotlib); it is renamed onto `path` when the block ends without an exception."""
    path = os.fspath(path)
    fd, tmp = _temporary_beside(path)
    os.close(fd)
    root, ext = os.path.splitext(path)
    named = tmp + ext  # PIL and matplotlib pick the format from the extension
    os.replace(tmp, named)
    try:
        yield named
        _publish(named, path)
    except BaseException:
        _discard(named)
        raise
