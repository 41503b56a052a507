"""Where data is looked for, and where it is written.

Search order, first hit wins:
  1. `root` (the `--data-dir` option), then $TINYGAN_DATA;
  2. the cache, $XDG_CACHE_HOME/tinygan or ~/.cache/tinygan;
  3. system copies (Debian's dataset-fashion-mnist installs /usr/share/datasets/fashion-mnist);
  4. a download, into `root` when it was given, else into the cache.
Each dataset lives in a sub-folder named after it (root/mnist/, cache/cifar10/, ...).
"""
from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .dataset import DatasetError

# The repository's datasets/ folder, next to the tinygan package (found after `pip install -e .`).
BUNDLED_DIR = Path(__file__).resolve().parents[2] / "datasets"

# Copies installed by system packages, per dataset. A module constant so tests can point it
# elsewhere.
SYSTEM_DIRS: dict[str, list[Path]] = {
    "fashion-mnist": [Path("/usr/share/datasets/fashion-mnist")],
}


def cache_dir() -> Path:
    """The cache folder: $XDG_CACHE_HOME/tinygan, else ~/.cache/tinygan."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tinygan"


def user_dirs(root: str | os.PathLike | None) -> list[Path]:
    """The folders the user named: `root`, then $TINYGAN_DATA."""
    dirs = []
    if root is not None:
        dirs.append(Path(root).expanduser())
    env = os.environ.get("TINYGAN_DATA")
    if env:
        dirs.append(Path(env).expanduser())
    return dirs


def search_dirs(folder: str, root=None) -> list[Path]:
    """Every place a dataset's files may be, in search order (without the download)."""
    dirs = [d / folder for d in user_dirs(root)] + [cache_dir() / folder]
    return dirs + list(SYSTEM_DIRS.get(folder, []))


def download_dir(folder: str, root=None) -> Path:
    """Where a download lands: `root` when given explicitly, else the cache."""
    return (Path(root).expanduser() if root is not None else cache_dir()) / folder


@contextmanager
def made_dirs(path: Path) -> Iterator[Path]:
    """Create `path` (and parents) for a write; remove what was created if the write fails.

    So a failed download or decode leaves the cache exactly as it was, with no empty folders.
    """
    created = []
    p = Path(path)
    while not p.exists():
        created.append(p)
        p = p.parent
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    except BaseException:
        for d in created:  # deepest first
            try:
                d.rmdir()
            except OSError:
                pass
        raise


def safe_member_name(archive: Path, name: str) -> str:
    """A member's normalised path; refuse one that is absolute or has a '..' component."""
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
        raise DatasetError(f"{archive}: member {name!r} has a path that escapes its folder "
                           "(absolute or with '..'); refusing to read this archive")
    return posixpath.normpath("/".join(parts))
