"""The feature networks: the shipped classifiers reach their accuracy, weights load and
round-trip, a network trained on first use (CIFAR-10's) is trained once and cached, and
the documented commands run."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygan
from tinygan.data import ImageDataset, load
from tinygan.data.transforms import to_signed_unit
from tinygan.metrics import cli, features
from tinygan.metrics.features import (FeatureNetworkError, feature_network, load_network,
                                      save_network, train_classifier)

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def accuracy(network, dataset) -> float:
    return float((network.predict(dataset.images) == dataset.labels).mean())


def test_mnist_classifier_reaches_98_percent_on_the_held_out_1000():
    network = feature_network("mnist-10k")
    held_out = load("mnist-10k", "test")
    assert len(held_out) == 1000
    assert accuracy(network, held_out) >= 0.98
    meta = network.meta
    assert meta["dataset"] == "mnist-10k" and meta["test_accuracy"] >= 0.98
    assert meta["command"].startswith("python -m tinygan.metrics.features train mnist")
    assert feature_network("mnist") is not None  # "mnist" falls back to the same weights


@pytest.mark.skipif(not FASHION_DIR.is_dir(),
                    reason=f"Fashion-MNIST is not installed at {FASHION_DIR} "
                           "(apt-get install dataset-fashion-mnist)")
def test_fashion_classifier_reaches_90_percent_on_the_test_10000():
    network = feature_network("fashion-mnist")
    test = load("fashion-mnist", "test")
    assert len(test) == 10000
    assert accuracy(network, test) >= 0.90
    assert network.meta["test_accuracy"] >= 0.90


def test_features_take_uint8_or_signed_unit_floats_alike():
    network = feature_network("mnist-10k")
    images = load("mnist-10k", "test").images[:40]
    from_uint8 = network.features(images, batch_size=16)
    from_float = network.features(to_signed_unit(images), batch_size=16)
    assert from_uint8.shape == (40, 84) and from_uint8.dtype == np.float32
    np.testing.assert_allclose(from_uint8, from_float, rtol=1e-5, atol=1e-5)
    assert "LeNet-84" in network.describe()


def test_weights_round_trip_and_bad_files_are_named(tmp_path):
    network = feature_network("mnist-10k")
    path = tmp_path / "copy.npz"
    save_network(network.model, network.meta, path)
    again = load_network(path)
    x = load("mnist-10k", "test").images[:8]
    np.testing.assert_array_equal(again.features(x), network.features(x))
    with pytest.raises(FeatureNetworkError, match="not found"):
        load_network(tmp_path / "missing.npz")
    tinygan.save({"something": np.zeros(3)}, tmp_path / "other.npz")
    with pytest.raises(FeatureNetworkError, match="other.npz"):
        load_network(tmp_path / "other.npz")
    with pytest.raises(FeatureNetworkError, match="no tinygan feature network"):
        feature_network("celeba")


def stripes(name: str, n: int, channels: int, size: int, seed: int) -> ImageDataset:
    """A tiny stand-in for real data: class k is a bright vertical stripe at column 3k+1."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 60, (n, channels, size, size))
    for k in range(10):
        images[labels == k, :, :, 3 * k + 1:3 * k + 3] = 255
    return ImageDataset(name, images.astype(np.uint8), labels, [str(k) for k in range(10)])


def fake_cifar(n: int, seed: int) -> ImageDataset:
    return stripes("cifar10", n, 3, 32, seed)


def test_cifar_network_is_trained_on_first_use_then_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(features, "_LOADED", {})
    monkeypatch.setitem(features.DEFAULT_EPOCHS, "cifar-cnn", 1)
    calls = []

    def fake_data(dataset, root=None):
        calls.append(dataset)
        return "cifar10", fake_cifar(30, 0), fake_cifar(10, 1)

    monkeypatch.setattr(features, "_training_data", fake_data)
    network = feature_network("cifar10", log=lambda m: None)
    cached = tmp_path / "tinygan" / "metrics" / "cifar-cnn-cifar10.npz"
    assert cached.is_file() and calls == ["cifar10"]
    assert network.features(fake_cifar(5, 2).images).shape == (5, 128)
    assert network.meta["arch"] == "cifar-cnn" and 0 <= network.meta["test_accuracy"] <= 1
    # A new process (an empty in-memory cache) loads the file instead of training again.
    monkeypatch.setattr(features, "_LOADED", {})
    again = feature_network("cifar10", log=lambda m: None)
    assert calls == ["cifar10"]
    np.testing.assert_array_equal(again.features(fake_cifar(3, 3).images),
                                  network.features(fake_cifar(3, 3).images))


def test_train_classifier_learns_an_easy_problem():
    train, test = stripes("toy", 200, 1, 28, 0), stripes("toy", 100, 1, 28, 1)
    model, meta = train_classifier("lenet", train.images, train.labels, test.images,
                                   test.labels, epochs=2, seed=0, batch_size=20,
                                   log=lambda m: None)
    assert meta["test_accuracy"] >= 0.9
    assert meta["feature_dim"] == 84 and meta["n_train"] == 200


def test_the_documented_command_runs_from_the_features_module():
    """`python -m tinygan.metrics.features show mnist`, as README.md writes it."""
    done = subprocess.run([sys.executable, "-m", "tinygan.metrics.features", "show", "mnist"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "test_accuracy: 0.98" in done.stdout
    assert "python -m tinygan.metrics.features train mnist" in done.stdout


def test_floor_prints_the_real_data_fid(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cli.main(["floor", "mnist-10k"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("FID (tinygan LeNet-84 features) of real mnist-10k: train "
                          "(9000 images) vs test (1000 images) = ")
