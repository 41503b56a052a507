"""CIFAR-10 binary archives: read from the tar without extracting; bad archives refused."""
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tinygan.data import DatasetError, load
from tinygan.data import cifar
from tinygan.data.cifar import read_cifar10_tar


@pytest.fixture
def env(data_home, monkeypatch):
    monkeypatch.setattr(cifar, "CIFAR10_URL", "http://127.0.0.1:9/cifar-10-binary.tar.gz")
    return data_home


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def records(n, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    data = np.concatenate([labels[:, None], images.reshape(n, -1)], axis=1).tobytes()
    return images, labels.astype(np.int64), data


def add(tar, name, data: bytes):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_tar(path: Path, sizes=(3, 2, 4, 1, 2), test=5, extra=(), meta=True, mode="w:gz"):
    """A tar in the layout of cifar-10-binary.tar.gz; returns the expected arrays."""
    path.parent.mkdir(parents=True, exist_ok=True)
    expected = {"train": ([], []), "test": ([], [])}
    with tarfile.open(path, mode) as tar:
        for i, n in enumerate(sizes, 1):
            images, labels, data = records(n, i)
            expected["train"][0].append(images)
            expected["train"][1].append(labels)
            add(tar, f"cifar-10-batches-bin/data_batch_{i}.bin", data)
        images, labels, data = records(test, 99)
        expected["test"] = ([images], [labels])
        add(tar, "cifar-10-batches-bin/test_batch.bin", data)
        if meta:
            add(tar, "cifar-10-batches-bin/batches.meta.txt",
                "\n".join(cifar.CIFAR10_CLASSES).encode() + b"\n\n")
        for name, data in extra:
            add(tar, name, data)
    return {k: (np.concatenate(v[0]), np.concatenate(v[1])) for k, v in expected.items()}


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("mode", ["w:gz", "w"])
def test_cifar_tar_read_back_exactly(tmp_path, split, mode):
    expected = make_tar(tmp_path / "c.tar.gz", mode=mode)
    images, labels, classes = read_cifar10_tar(tmp_path / "c.tar.gz", split)
    np.testing.assert_array_equal(images, expected[split][0])
    np.testing.assert_array_equal(labels, expected[split][1])
    assert classes == cifar.CIFAR10_CLASSES


def test_cifar_loads_from_the_cache(env):
    expected = make_tar(env / "xdg" / "tinygan" / "cifar10" / "cifar-10-binary.tar.gz")
    data = load("cifar10")
    assert data.images.shape == (12, 3, 32, 32) and data.image_shape == (3, 32, 32)
    np.testing.assert_array_equal(data.images, expected["train"][0])
    np.testing.assert_array_equal(data.labels, expected["train"][1])
    assert data.num_classes == 10 and data.classes[0] == "airplane"
    assert len(load("cifar10", "test")) == 5
    assert not (env / "xdg" / "tinygan" / "cifar10" / "cifar-10-batches-bin").exists()


@pytest.mark.parametrize("evil", ["../evil.bin", "/tmp/evil.bin",
                                  "cifar-10-batches-bin/../../evil.bin"])
def test_member_escaping_its_folder_is_refused(env, evil):
    cache = env / "xdg" / "tinygan"
    tar = cache / "cifar10" / "cifar-10-binary.tar.gz"
    make_tar(tar, extra=[(evil, b"x")])
    before = snapshot(cache)
    with pytest.raises(DatasetError, match="escapes its folder") as err:
        load("cifar10")
    assert str(tar) in str(err.value) and evil in str(err.value)
    assert snapshot(cache) == before
    assert not (env / "evil.bin").exists()


def test_bad_record_size(env):
    cache = env / "xdg" / "tinygan"
    tar = cache / "cifar10" / "cifar-10-binary.tar.gz"
    tar.parent.mkdir(parents=True)
    with tarfile.open(tar, "w:gz") as t:
        add(t, "cifar-10-batches-bin/test_batch.bin", b"\x01" * 3000)
    before = snapshot(cache)
    with pytest.raises(DatasetError, match="not a whole number of 3073-byte records") as err:
        load("cifar10", "test")
    assert str(tar) in str(err.value) and "test_batch.bin" in str(err.value)
    assert snapshot(cache) == before


def test_truncated_archive(env):
    cache = env / "xdg" / "tinygan"
    tar = cache / "cifar10" / "cifar-10-binary.tar.gz"
    make_tar(tar, sizes=(300, 2, 2, 2, 2))
    tar.write_bytes(tar.read_bytes()[:5000])
    before = snapshot(cache)
    with pytest.raises(DatasetError) as err:
        load("cifar10")
    assert str(tar) in str(err.value)
    assert "truncated" in str(err.value) or "corrupt" in str(err.value)
    assert snapshot(cache) == before


def test_missing_member(env):
    tar = env / "xdg" / "tinygan" / "cifar10" / "cifar-10-binary.tar.gz"
    make_tar(tar, sizes=(1, 1))
    with pytest.raises(DatasetError, match="missing member cifar-10-batches-bin/data_batch_3"):
        load("cifar10")


def test_absent_and_offline(env):
    with pytest.raises(DatasetError, match="could not download cifar-10-binary.tar.gz"):
        load("cifar10")
    with pytest.raises(DatasetError, match="download=False"):
        load("cifar10", download=False)
    assert snapshot(env / "xdg" / "tinygan") == {}
