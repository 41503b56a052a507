"""The IDX format of MNIST and Fashion-MNIST, read with every check a corrupt file can fail.

An IDX file is a 4-byte magic number (0, 0, a dtype code, the number of dimensions), one
big-endian uint32 per dimension, then the array in C order. Files may be gzip-compressed.
http://yann.lecun.com/exdb/mnist/ describes it.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from .dataset import DatasetError

# The dtype code in the magic number's third byte; multi-byte types are big-endian.
IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":  # not gzip: an uncompressed IDX file
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError as e:
        raise DatasetError(f"{path}: truncated gzip file (the compressed stream ends early: "
                           f"{e}); delete it and fetch it again") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as e:
        raise DatasetError(f"{path}: corrupt gzip file ({e})") from None


def parse_idx(data: bytes, path: Path | str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an IDX file into a native-endian NumPy array."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES:
        raise DatasetError(f"{path}: wrong IDX magic number {data[:4].hex() or '(empty)'} "
                           "(expected 0000 then a dtype code 08/09/0b/0c/0d/0e and ndim)")
    dtype, ndim = IDX_DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DatasetError(f"{path}: IDX header truncated or ndim={ndim} invalid")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    actual = len(data) - header
    if actual != expected:
        raise DatasetError(f"{path}: IDX size check failed: header says shape {shape} "
                           f"({expected} bytes of data) but the file has {actual}")
    array = np.frombuffer(data, dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)  # native order, writable


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file, gzip-compressed or not, checking magic number and size."""
    path = Path(path)
    try:
        data = _read_bytes(path)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    return parse_idx(data, path)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write an array as IDX (gzip-compressed when the name ends in .gz)."""
    array = np.asarray(array)
    codes = {(t.kind, t.itemsize): code for code, t in IDX_DTYPES.items()}
    code = codes.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    body = array.astype(IDX_DTYPES[code]).tobytes()
    path = Path(path)
    data = header + body
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
