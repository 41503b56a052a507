"""Checkpoints: bit-identical round trips, corrupt files refused clearly, atomic writes."""
import json
import os
import zipfile

import numpy as np
import pytest

import tinygan
from tinygan import serialization
from tinygan.serialization import CheckpointError


def same_bits(a, b):
    return (type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape
            and np.asarray(a).tobytes() == np.asarray(b).tobytes())


def assert_same_tree(a, b):
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert type(k) is type(next(kk for kk in b if kk == k))
            assert_same_tree(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_tree(x, y)
    elif isinstance(a, tinygan.Tensor):
        assert same_bits(a.data, b.data) and a.requires_grad == b.requires_grad
    elif isinstance(a, (np.ndarray, np.generic)):
        assert same_bits(a, b)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b and repr(a) == repr(b)


def example_tree():
    rng = np.random.default_rng(7)
    return {
        "model": {
            "main.0.weight": tinygan.tensor(rng.standard_normal((4, 3)).astype(np.float32),
                                            requires_grad=True),
            "main.0.bias": tinygan.tensor(np.zeros(4, np.float32)),
            "main.1.num_batches_tracked": tinygan.tensor(np.array(12, np.int64)),
        },
        "arrays": {
            "f32": rng.standard_normal((2, 5)).astype(np.float32),
            "f64": np.array([np.pi, -0.0, np.inf, -np.inf, np.nan, 5e-324]),
            "i64": np.array([-(2 ** 63), 2 ** 63 - 1, 0], np.int64),
            "bool": np.array([[True, False], [False, True]]),
            "zero_d": np.array(3.25, np.float32),
            "empty": np.zeros((0, 3), np.float32),
            "uint8": np.arange(256, dtype=np.uint8),
            "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        },
        "numbers": [0, -7, 2 ** 200, 1.5, -0.0, float("inf"), float("nan"), True, False, None],
        "scalars": (np.float32(0.1), np.int64(-3), np.bool_(True)),
        "text": "Wasserstein — λ=10",
        "optimizer": {"state": {0: {"step": 3, "exp_avg": np.ones(3, np.float32)}},
                      "param_groups": [{"lr": 2e-4, "betas": (0.5, 0.999), "params": [0, 1]}]},
        "rng": np.random.default_rng(2 ** 100).bit_generator.state,
        "empty_dict": {},
        "empty_list": [],
    }


def test_round_trip_is_bit_identical(tmp_path):
    tree = example_tree()
    tinygan.save(tree, tmp_path / "ckpt.npz")
    back = tinygan.load(tmp_path / "ckpt.npz")
    assert_same_tree(tree, back)
    assert isinstance(back["model"]["main.0.weight"], tinygan.Tensor)
    assert isinstance(back["arrays"]["f32"], np.ndarray)
    assert list(back["optimizer"]["state"]) == [0]  # int keys stay ints
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def test_generator_state_with_huge_ints_round_trips(tmp_path):
    gen = np.random.default_rng(12345)
    gen.standard_normal(10)
    state = gen.bit_generator.state
    assert state["state"]["state"] > 2 ** 64  # a 128-bit integer
    tinygan.save({"rng": state}, tmp_path / "rng.npz")
    back = tinygan.load(tmp_path / "rng.npz")["rng"]
    assert back == state
    twin = np.random.default_rng()
    twin.bit_generator.state = back
    np.testing.assert_array_equal(twin.standard_normal(5), gen.standard_normal(5))


def test_the_path_is_used_as_given(tmp_path):
    tinygan.save([1, 2], str(tmp_path / "run.ckpt"))
    assert os.listdir(tmp_path) == ["run.ckpt"]
    assert tinygan.load(str(tmp_path / "run.ckpt")) == [1, 2]


def test_colliding_paths_get_distinct_members(tmp_path):
    tree = {"a/b": np.ones(2), "a": {"b": np.zeros(2)}, "__tinygan__": np.full(1, 7)}
    tinygan.save(tree, tmp_path / "c.npz")
    assert_same_tree(tree, tinygan.load(tmp_path / "c.npz"))


def test_save_refuses_object_arrays_and_unknown_types(tmp_path):
    path = tmp_path / "c.npz"
    with pytest.raises(CheckpointError, match="model/w.*pickle"):
        tinygan.save({"model": {"w": np.array([{"a": 1}], dtype=object)}}, path)
    with pytest.raises(CheckpointError, match="set"):
        tinygan.save({"x": {1, 2}}, path)
    with pytest.raises(CheckpointError, match="keys"):
        tinygan.save({(1, 2): 3}, path)
    assert os.listdir(tmp_path) == []


def test_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "ckpt.npz"
    tinygan.save(example_tree(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=str(path)):
        tinygan.load(path)


def test_random_bytes_are_a_clear_error(tmp_path):
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError, match=str(path)):
        tinygan.load(path)


def test_zip_with_a_bad_member_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("__tinygan__.npy", b"this is not an array")
    with pytest.raises(CheckpointError, match=f"{path}.*__tinygan__"):
        tinygan.load(path)


def test_flipped_byte_in_a_member_is_caught(tmp_path):
    path = tmp_path / "ckpt.npz"
    weights = np.arange(1000, dtype=np.int64)
    tinygan.save({"w": weights}, path)
    data = bytearray(path.read_bytes())
    at = bytes(data).index(weights.tobytes()) + 4000
    data[at] ^= 0xFF  # the zip's CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"{path}.*'w'"):
        tinygan.load(path)


def test_npz_without_manifest_is_refused(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, w=np.ones(3))
    with pytest.raises(CheckpointError, match="manifest"):
        tinygan.load(path)


def test_newer_format_version_is_refused(tmp_path):
    path = tmp_path / "future.npz"
    manifest = json.dumps({"format": "tinygan-checkpoint", "version": 99, "tree": None})
    np.savez(path, __tinygan__=np.frombuffer(manifest.encode(), np.uint8))
    with pytest.raises(CheckpointError, match="version 99"):
        tinygan.load(path)


UNPICKLED = []


def _record_unpickling():
    UNPICKLED.append(True)
    return "pwned"


class Trap:
    def __reduce__(self):
        return (_record_unpickling, ())


def test_pickled_object_array_is_never_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    manifest = json.dumps({"format": "tinygan-checkpoint", "version": 1,
                           "tree": {"kind": "array", "member": "x", "dtype": "|O", "shape": [1]}})
    np.savez(path, __tinygan__=np.frombuffer(manifest.encode(), np.uint8),
             x=np.array([Trap()], dtype=object))
    with pytest.raises(CheckpointError, match="pickle"):
        tinygan.load(path)
    assert UNPICKLED == []
    pickled = tmp_path / "evil.npy"
    np.save(pickled, np.array([Trap()], dtype=object))  # a lone .npy that holds a pickle
    with pytest.raises(CheckpointError, match=str(pickled)):
        tinygan.load(pickled)
    assert UNPICKLED == []


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    tinygan.save({"w": np.arange(3.0)}, path)
    before = path.read_bytes()

    def fail_midway(file, arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise RuntimeError("disk full")

    monkeypatch.setattr(serialization, "_write_npz", fail_midway)
    with pytest.raises(RuntimeError, match="disk full"):
        tinygan.save({"w": np.arange(5.0)}, path)
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    assert path.read_bytes() == before
    np.testing.assert_array_equal(tinygan.load(path)["w"], np.arange(3.0))


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        tinygan.load(tmp_path / "nothing.npz")


@pytest.mark.skipif(not tinygan.cuda_is_available(),
                    reason=f"no CUDA device: {tinygan.backend.cuda_unavailable_reason()}")
def test_load_onto_the_gpu(tmp_path):
    tinygan.save({"t": tinygan.tensor([1.0, 2.0]), "a": np.ones(2)}, tmp_path / "c.npz")
    back = tinygan.load(tmp_path / "c.npz", device="cuda")
    assert back["t"].device == "cuda"
    assert tinygan.backend.device_of(back["a"]) == "cuda"
    tinygan.save(back, tmp_path / "d.npz")  # and back from the GPU
    assert tinygan.load(tmp_path / "d.npz")["t"].device == "cpu"


def test_module_state_dict_round_trips(tmp_path):
    nn = pytest.importorskip("tinygan.nn")
    if not hasattr(nn, "Linear"):
        pytest.skip("tinygan.nn has no Linear yet")
    tinygan.manual_seed(0)
    model = nn.Linear(3, 2)
    tinygan.save({"model": model.state_dict()}, tmp_path / "m.npz")
    tinygan.manual_seed(1)
    twin = nn.Linear(3, 2)
    twin.load_state_dict(tinygan.load(tmp_path / "m.npz")["model"])
    for (name, p), (_, q) in zip(model.named_parameters(), twin.named_parameters()):
        assert same_bits(p.data, q.data), name
