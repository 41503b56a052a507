"""Downloads: mirrors tried in order, a progress bar, quick timeouts, MD5 checked, atomic.

The file is streamed into a temp file in the destination folder while its MD5 is computed;
only when the checksum matches is it renamed onto its final name. An interrupted, stalled
or corrupt download therefore leaves nothing in the cache (folders created for it are
removed too).
"""
from __future__ import annotations

import hashlib
import http.client
import socket
import sys
import urllib.request
from pathlib import Path

from ..files import atomic_write
from .dataset import DatasetError
from .paths import made_dirs

CONNECT_TIMEOUT = 5.0   # seconds to open a connection: fail fast when offline
READ_TIMEOUT = 30.0     # seconds a read may wait for the next bytes before we call it stalled
CHUNK = 1 << 16


class DownloadError(DatasetError):
    """A download failed (offline, HTTP error, stalled, or wrong checksum)."""


def file_digest(path: Path, algorithm: str = "md5") -> str:
    """The hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fetch(url: str, dest: Path, md5: str, connect_timeout: float, read_timeout: float,
           progress: bool) -> None:
    from tqdm import tqdm  # only needed when something is actually downloaded

    with urllib.request.urlopen(url, timeout=connect_timeout) as response:
        # urlopen's timeout covers the connection; reads may legitimately wait longer, so
        # give the socket its own stall timeout (when the response exposes it).
        sock = getattr(getattr(response.fp, "raw", None), "_sock", None)
        if sock is not None:
            sock.settimeout(read_timeout)
        total = int(response.headers.get("Content-Length") or 0) or None
        digest = hashlib.md5()

        def write(f):
            received = 0
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name,
                      disable=not progress, file=sys.stderr, leave=False) as bar:
                while True:
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    digest.update(chunk)
                    f.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if total is not None and received != total:
                raise DownloadError(f"{url}: download ended after {received} of {total} bytes")
            if digest.hexdigest() != md5:
                raise DownloadError(
                    f"{url}: MD5 checksum mismatch, expected {md5}, "
                    f"got {digest.hexdigest()}, the file was not kept")

        atomic_write(dest, write)


def download(urls: list[str], dest: Path, md5: str, connect_timeout: float | None = None,
             read_timeout: float | None = None, progress: bool = True) -> Path:
    """Fetch the first mirror that works into `dest`, check its MD5, and return `dest`."""
    connect_timeout = CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
    read_timeout = READ_TIMEOUT if read_timeout is None else read_timeout
    failures = []
    with made_dirs(dest.parent):
        for url in urls:
            try:
                _fetch(url, dest, md5, connect_timeout, read_timeout, progress)
                return dest
            except DownloadError as e:
                failures.append(str(e))
            except (socket.timeout, TimeoutError) as e:
                failures.append(f"{url}: timed out ({e})")
            except http.client.HTTPException as e:  # e.g. IncompleteRead: cut off mid-body
                failures.append(f"{url}: {type(e).__name__}: {e}")
            except OSError as e:  # URLError, HTTPError, connection refused, DNS failure
                failures.append(f"{url}: {getattr(e, 'reason', e)}")
        raise DownloadError(f"could not download {dest.name} into {dest.parent}: "
                            + "; ".join(failures))
