"""Checkpoints: `save(obj, path)` and `load(path, device)`, a portable .npz with no pickle.

A state dict is a tree: dicts, lists and tuples whose leaves are Tensors, arrays and
plain values (numbers, strings, booleans, None). `save` writes every array leaf as one
member of an .npz, named after its path in the tree ("model/main.0.weight"), and the tree
itself as a JSON manifest under the reserved key "__tinygan__": which leaves were Tensors,
arrays or NumPy scalars, with their dtypes and shapes, and the plain values in place.
Python ints live in the JSON, so the 128-bit integers of a NumPy generator's state
survive. `load` reads it back with `np.load(..., allow_pickle=False)`, so a checkpoint
can never run code, and checks every member against the manifest.

Files are written atomically: into a temporary file in the same folder, flushed to disk,
then renamed over the target, so a crash leaves either the old checkpoint or the new one.
"""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from . import backend
from .files import atomic_write
from ._tensor import Tensor

FORMAT = "tinygan-checkpoint"
VERSION = 1
MANIFEST_KEY = "__tinygan__"


class CheckpointError(ValueError):
    """A checkpoint that cannot be written or read; the message names the file."""


# ----------------------------------------------------------------------------------- save


def _member_name(path: list, taken: set) -> str:
    name = "/".join(str(k) for k in path) or "root"
    candidate, n = name, 1
    while candidate in taken:
        candidate, n = f"{name}#{n}", n + 1
    taken.add(candidate)
    return candidate


def _check_array(array, where: str):
    if array.dtype.hasobject:
        raise CheckpointError(
            f"cannot save {where}: an array of dtype {array.dtype} holds Python objects, which "
            "only pickle could store (tinygan checkpoints never pickle); convert it to numbers")
    if array.dtype.names is not None:
        raise CheckpointError(f"cannot save {where}: structured dtype {array.dtype} is not "
                              "supported; save each field as its own array")


def _pack(obj, path: list, arrays: dict):
    """The manifest node of `obj`; its arrays go into `arrays` under their member names."""
    where = "/".join(str(k) for k in path) or "the object"
    if obj is None or isinstance(obj, (bool, str)):
        return {"kind": "value", "value": obj}
    if isinstance(obj, int):
        return {"kind": "value", "value": int(obj)}  # int subclasses become plain ints
    if isinstance(obj, float):
        return {"kind": "value", "value": float(obj)}  # repr round-trips; nan/inf allowed
    if isinstance(obj, (Tensor, np.ndarray, np.generic)) or type(obj).__module__.startswith("cupy"):
        kind = "tensor" if isinstance(obj, Tensor) else (
            "scalar" if isinstance(obj, np.generic) else "array")
        array = backend.to_numpy(obj.data if kind == "tensor" else obj)
        array = np.asarray(array)
        _check_array(array, where)
        name = _member_name(path, set(arrays) | {MANIFEST_KEY})
        arrays[name] = array
        node = {"kind": kind, "member": name, "dtype": array.dtype.str,
                "shape": list(array.shape)}
        if kind == "tensor":
            node["requires_grad"] = bool(obj.requires_grad)
        return node
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if isinstance(key, np.integer):
                key = int(key)
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise CheckpointError(f"cannot save {where}: dict keys must be str or int, "
                                      f"got {key!r} ({type(key).__name__})")
            key_type = "str" if isinstance(key, str) else "int"
            items.append([key_type, key if key_type == "str" else int(key),
                          _pack(value, path + [key], arrays)])
        return {"kind": "dict", "items": items}
    if isinstance(obj, (list, tuple)):
        return {"kind": type(obj).__name__ if type(obj) in (list, tuple) else "list",
                "items": [_pack(v, path + [i], arrays) for i, v in enumerate(obj)]}
    raise CheckpointError(
        f"cannot save {where}: {type(obj).__name__} is not a checkpoint value (expected "
        "dict, list, tuple, Tensor, array, number, str, bool or None)")


def _write_npz(file, arrays: dict) -> None:
    """Write the members; kept apart so that a test can make it fail midway."""
    np.savez(file, **arrays)


def save(obj, path) -> None:
    """Write `obj` (a state dict or any tree of dicts/lists/Tensors/arrays/values) to `path`."""
    path = os.fspath(path)
    arrays: dict = {}
    tree = _pack(obj, [], arrays)
    manifest = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree},
                          separators=(",", ":"))
    arrays[MANIFEST_KEY] = np.frombuffer(manifest.encode("utf-8"), dtype=np.uint8)
    atomic_write(path, lambda f: _write_npz(f, arrays))


# ----------------------------------------------------------------------------------- load


def _read_member(npz, name: str, path: str):
    try:
        array = npz[name]
        if not isinstance(array, np.ndarray):  # NpzFile hands back raw bytes for a non-.npy
            raise CheckpointError(f"{path}: member {name!r} is not a .npy array")
        return array
    except CheckpointError:
        raise
    except KeyError:
        raise CheckpointError(f"{path}: member {name!r} listed in the manifest is missing")
    except ValueError as e:
        if "pickle" in str(e):
            raise CheckpointError(f"{path}: member {name!r} holds pickled objects, which "
                                  "tinygan refuses to load (it could run arbitrary code)") from e
        raise CheckpointError(f"{path}: member {name!r} is corrupt ({e})") from e
    except Exception as e:  # zipfile.BadZipFile (bad CRC), EOFError, OSError, zlib.error
        raise CheckpointError(f"{path}: member {name!r} is corrupt "
                              f"({type(e).__name__}: {e})") from e


def _unpack(node, npz, path: str, device: str):
    try:
        kind = node["kind"]
        if kind == "value":
            return node["value"]
        if kind == "dict":
            return {(int(k) if t == "int" else str(k)): _unpack(v, npz, path, device)
                    for t, k, v in node["items"]}
        if kind in ("list", "tuple"):
            items = [_unpack(v, npz, path, device) for v in node["items"]]
            return items if kind == "list" else tuple(items)
        if kind in ("tensor", "array", "scalar"):
            name = node["member"]
            dtype, shape = np.dtype(node["dtype"]), tuple(node["shape"])
        else:
            raise CheckpointError(f"{path}: the manifest has a node of unknown kind {kind!r}")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{path}: the manifest is malformed ({type(e).__name__}: {e})") \
            from e
    array = _read_member(npz, name, path)
    if array.dtype != dtype or array.shape != shape:
        raise CheckpointError(f"{path}: member {name!r} is {array.dtype}{list(array.shape)}, "
                              f"the manifest says {dtype}{list(shape)}")
    if kind == "scalar":
        return array[()]
    array = backend.to_device(array, device)
    if kind == "array":
        return array
    return Tensor(array, requires_grad=bool(node.get("requires_grad", False)))


def load(path, device: str = "cpu"):
    """Read a checkpoint written by `save`; Tensors and arrays come back on `device`."""
    path = os.fspath(path)
    device = backend.check_device(device)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        npz = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise CheckpointError(f"{path}: not a tinygan checkpoint (neither a .npz archive nor "
                              "a .npy array; pickled files are refused)") from e
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise CheckpointError(f"{path}: not a readable .npz archive, perhaps truncated "
                              f"({type(e).__name__}: {e})") from e
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise CheckpointError(f"{path}: a single .npy array, not a tinygan checkpoint")
    with npz:
        if MANIFEST_KEY not in npz.files:
            raise CheckpointError(f"{path}: no {MANIFEST_KEY!r} manifest: not written by "
                                  "tinygan.save")
        raw = _read_member(npz, MANIFEST_KEY, path)
        try:
            manifest = json.loads(raw.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise CheckpointError(f"{path}: the manifest is not valid JSON ({e})") from e
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise CheckpointError(f"{path}: the manifest does not describe a {FORMAT}")
        version = manifest.get("version")
        if not isinstance(version, int) or version > VERSION:
            raise CheckpointError(f"{path}: checkpoint format version {version!r}; this tinygan "
                                  f"reads versions up to {VERSION} (upgrade tinygan)")
        if "tree" not in manifest:
            raise CheckpointError(f"{path}: the manifest has no 'tree'")
        return _unpack(manifest["tree"], npz, path, device)
