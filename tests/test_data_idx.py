"""IDX files, MNIST / Fashion-MNIST loading, the bundled sample, and the offline fallback."""
import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from tinygan.data import DatasetError, load, read_idx, write_idx
from tinygan.data import mnist, paths

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "datasets" / "mnist-10k"


@pytest.fixture
def env(data_home, monkeypatch):
    """The private data home of conftest.py, and mirrors that refuse."""
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", ["http://127.0.0.1:9/"])
    monkeypatch.setattr(mnist, "FASHION_MNIST_MIRRORS", ["http://127.0.0.1:9/"])
    return data_home


def snapshot(folder: Path) -> dict:
    """Every file and folder under `folder` with its size and mtime."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def write_mnist_like(folder: Path, split="train", n=7, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    names = mnist.FILES[split]
    write_idx(folder / (names[0] if gz else names[0][:-3]), images)
    write_idx(folder / (names[1] if gz else names[1][:-3]), labels)
    return images, labels


# --- the format ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8"])
@pytest.mark.parametrize("name", ["x.idx", "x.idx.gz"])
def test_idx_round_trip(tmp_path, dtype, name):
    array = (np.arange(60) - 20).astype(dtype).reshape(3, 4, 5)
    write_idx(tmp_path / name, array)
    back = read_idx(tmp_path / name)
    assert back.shape == (3, 4, 5) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)


def test_idx_header_is_the_standard_one(tmp_path):
    write_idx(tmp_path / "x", np.zeros((2, 28, 28), np.uint8))
    raw = (tmp_path / "x").read_bytes()
    assert raw[:16] == bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28])
    assert len(raw) == 16 + 2 * 784


def test_idx_written_by_hand_is_read(tmp_path):
    body = bytes(range(6))
    (tmp_path / "h.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x02\x00\x00\x00\x02"
                                                  b"\x00\x00\x00\x03" + body))
    np.testing.assert_array_equal(read_idx(tmp_path / "h.gz"), [[0, 1, 2], [3, 4, 5]])


# --- bad files: the message names the file and the check; the cache is untouched ----------

def _corrupt(kind, folder):
    images, labels = write_mnist_like(folder, n=5)
    target = folder / "train-images-idx3-ubyte.gz"
    if kind == "truncated gzip":
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    elif kind == "magic":
        target.write_bytes(gzip.compress(b"\x08\x08\x08\x03" + gzip.decompress(
            target.read_bytes())[4:]))
    elif kind == "size check":
        target.write_bytes(gzip.compress(gzip.decompress(target.read_bytes())[:-10]))
    elif kind == "counts disagree":
        write_idx(folder / "train-labels-idx1-ubyte.gz", labels[:4])
    elif kind == "labels out of range":
        write_idx(folder / "train-labels-idx1-ubyte.gz", np.full(5, 12, np.uint8))
    return target


@pytest.mark.parametrize("kind,message", [
    ("truncated gzip", "truncated gzip"),
    ("magic", "wrong IDX magic number"),
    ("size check", "IDX size check failed"),
    ("counts disagree", "image and label counts disagree"),
    ("labels out of range", "labels out of range"),
])
@pytest.mark.parametrize("where", ["cache", "root"])
def test_bad_idx_files_are_named_and_cache_unchanged(env, kind, message, where):
    cache = env / "xdg" / "tinygan"
    folder = (cache if where == "cache" else env / "data") / "mnist"
    target = _corrupt(kind, folder)
    before = snapshot(cache)
    with pytest.raises(DatasetError) as err:
        load("mnist", root=env / "data" if where == "root" else None)
    text = str(err.value)
    assert message in text
    named = target if kind != "labels out of range" else folder / "train-labels-idx1-ubyte.gz"
    assert str(named) in text
    assert snapshot(cache) == before


def test_wrong_magic_in_raw_file(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01\x05")
    with pytest.raises(DatasetError, match="wrong IDX magic number") as err:
        read_idx(tmp_path / "bad")
    assert str(tmp_path / "bad") in str(err.value)


# --- MNIST from the search folders -------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_mnist_read_back_exactly_from_root(env, gz):
    images, labels = write_mnist_like(env / "data" / "mnist", "test", n=9, gz=gz)
    data = load("mnist", "test", root=env / "data", download=False)
    assert data.name == "mnist" and data.split == "test"
    assert data.images.shape == (9, 1, 28, 28) and data.images.dtype == np.uint8
    assert data.labels.dtype == np.int64 and data.image_shape == (1, 28, 28)
    np.testing.assert_array_equal(data.images[:, 0], images)
    np.testing.assert_array_equal(data.labels, labels)
    assert data.num_classes == 10 and data.classes[3] == "3" and len(data) == 9


def test_search_order_root_then_env_then_cache(env, monkeypatch):
    a, _ = write_mnist_like(env / "root" / "mnist", seed=1)
    b, _ = write_mnist_like(env / "envdir" / "mnist", seed=2)
    c, _ = write_mnist_like(env / "xdg" / "tinygan" / "mnist", seed=3)
    monkeypatch.setenv("TINYGAN_DATA", str(env / "envdir"))
    np.testing.assert_array_equal(load("mnist", root=env / "root").images[:, 0], a)
    np.testing.assert_array_equal(load("mnist").images[:, 0], b)
    monkeypatch.delenv("TINYGAN_DATA")
    np.testing.assert_array_equal(load("mnist").images[:, 0], c)


def test_cache_dir_defaults_to_home(env, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert paths.cache_dir() == env / "home" / ".cache" / "tinygan"


def test_system_copy_is_searched_after_the_cache(env, monkeypatch):
    images, _ = write_mnist_like(env / "usr" / "fashion-mnist")
    monkeypatch.setattr(paths, "SYSTEM_DIRS", {"fashion-mnist": [env / "usr" / "fashion-mnist"]})
    data = load("fashion-mnist", download=False)
    np.testing.assert_array_equal(data.images[:, 0], images)
    assert data.classes[0] == "T-shirt/top" and data.classes[9] == "Ankle boot"


def test_fashion_mnist_missing_says_how_to_get_it(env):
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        load("fashion-mnist", download=False)


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not (FASHION / "t10k-images-idx3-ubyte.gz").exists(),
                    reason="Debian's dataset-fashion-mnist is not installed "
                           "(apt-get install dataset-fashion-mnist)")
def test_debian_fashion_mnist(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("TINYGAN_DATA", raising=False)
    data = load("fashion-mnist", "test", download=False)
    assert data.images.shape == (10000, 1, 28, 28)
    assert np.bincount(data.labels).tolist() == [1000] * 10
    assert data.source == str(FASHION)


# --- the bundled sample ------------------------------------------------------------------

def test_bundled_sample_checksums_shape_and_counts():
    for name, sha in mnist.SAMPLE_SHA256.items():
        assert hashlib.sha256((SAMPLE / name).read_bytes()).hexdigest() == sha
    data = load("mnist-10k", "all")
    assert data.images.shape == (10000, 1, 28, 28) and data.images.dtype == np.uint8
    assert np.bincount(data.labels).tolist() == [1001, 1127, 991, 1032, 980, 863, 1014,
                                                 1070, 944, 978]
    train, test = load("mnist-10k"), load("mnist-10k", "test")
    assert len(train) == 9000 and len(test) == 1000
    np.testing.assert_array_equal(np.concatenate([train.images, test.images]), data.images)


def test_bundled_sample_readme_lists_checksums():
    text = (SAMPLE / "README.md").read_text()
    for sha in mnist.SAMPLE_SHA256.values():
        assert sha in text


def test_sample_via_tinygan_data(env, monkeypatch):
    folder = env / "mine" / "mnist-10k"
    folder.mkdir(parents=True)
    for name in mnist.SAMPLE_SHA256:
        (folder / name).write_bytes((SAMPLE / name).read_bytes())
    monkeypatch.setenv("TINYGAN_DATA", str(env / "mine"))
    assert load("mnist-10k").source == str(folder)


def test_damaged_sample_fails_its_checksum(env, monkeypatch):
    folder = env / "mine" / "mnist-10k"
    folder.mkdir(parents=True)
    for name in mnist.SAMPLE_SHA256:
        data = bytearray((SAMPLE / name).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (folder / name).write_bytes(bytes(data))
    monkeypatch.setenv("TINYGAN_DATA", str(env / "mine"))
    with pytest.raises(DatasetError, match="SHA-256 checksum mismatch") as err:
        load("mnist-10k")
    assert str(folder / "train-images-idx3-ubyte.gz") in str(err.value)


@pytest.mark.parametrize("download", [False, True])
def test_mnist_falls_back_to_the_sample_in_one_line(env, download, capsys, monkeypatch):
    monkeypatch.setattr(mnist, "_NOTES_GIVEN", set())  # as in a fresh process
    cache = env / "xdg" / "tinygan"
    before = snapshot(cache)
    train = load("mnist", download=download)
    test = load("mnist", "test", download=download)
    out, err = capsys.readouterr()
    # one line, said once for both splits, and no Python warning's echoed source line
    assert out == "" and err.count("\n") == 1 and len(err) < 250, err
    assert err.startswith("note: full MNIST ") and "bundled in datasets/mnist-10k" in err
    assert ("could not be downloaded" if download else "download=False") in err
    assert train.name == "mnist-10k" and len(train) == 9000 and len(test) == 1000
    assert snapshot(cache) == before  # the failed download left nothing behind


def test_unknown_name_and_split(env):
    with pytest.raises(DatasetError, match="valid names: mnist, fashion-mnist, cifar10"):
        load("imagenet")
    with pytest.raises(DatasetError, match="unknown split 'val'"):
        load("mnist-10k", "val")
