"""Scoring GANs: FID on the tinygan LeNet behaves (real vs real small, real vs noise large),
evaluate_gan returns the right finite floats, the 2D protocol finds all 8 modes of real
mixture samples, Stacked MNIST is built and counted right, and the CLI writes metrics.json."""
import json
import math

import numpy as np
import pytest

import tinygan
from tinygan.data import load, to_signed_unit
from tinygan.evaluate import main as evaluate_main
from tinygan.gans import DataInfo, build, defaults
from tinygan.metrics import evaluate as ev
from tinygan.metrics import stacked_mnist, stacked_mnist_modes
from tinygan.metrics.features import feature_network
from tinygan.metrics.frechet import frechet_distance_from_features
from tinygan.metrics.stacked import predict_digits
from tinygan.training import Training


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    # Real-data statistics go to a cache of this test session, not the user's.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
    # A 2,000-image reference keeps the tests fast; the default is 10,000 (all 9,000 here).
    monkeypatch.setattr(ev, "DEFAULT_SAMPLES", 2000)


def make_gan(dataset_name: str, variant: str = "vanilla"):
    """A GAN trained for 0 steps, with the config that train.py would give it."""
    dataset = load(dataset_name)
    info = DataInfo.of(dataset)
    config = defaults(variant, info)
    config.update(variant=variant, dataset=dataset_name, device="cpu", seed=0, pack=1,
                  feature_matching=False, minibatch_discrimination=False,
                  label_smoothing=0.0, minimax=False, data_dir=None)
    return build(variant, config, info), config, dataset


def test_fid_of_real_vs_real_is_small_and_of_real_vs_noise_large():
    network = feature_network("mnist-10k")
    train, test = load("mnist-10k", "train"), load("mnist-10k", "test")
    real_a = network.features(train.images[:1000])
    real_b = network.features(test.images)
    noise = np.random.default_rng(0).uniform(-1, 1, (1000, 1, 28, 28)).astype(np.float32)
    fid_real = frechet_distance_from_features(real_a, real_b)
    fid_noise = frechet_distance_from_features(real_a, network.features(noise))
    assert fid_real < 0.05 * fid_noise
    assert fid_noise > 10 * max(fid_real, 1e-9)


def test_evaluate_gan_on_an_untrained_gan_returns_finite_floats():
    gan, config, dataset = make_gan("mnist-10k")
    scores = ev.evaluate_gan(gan, dataset, config, n_samples=300)
    assert list(scores) == list(ev.IMAGE_KEYS)  # fid first: the headline train.py plots
    assert all(isinstance(v, float) and math.isfinite(v) for v in scores.values())
    assert scores["fid"] > 0 and 1 <= scores["classes_covered"] <= 10
    assert 0 <= scores["precision"] <= 1 and 0 <= scores["coverage"] <= 1
    about = ev.describe_scores(dataset, 300)
    assert about["metric"] == "FID (tinygan LeNet-84 features)"
    assert "Inception" not in about["metric"]
    assert about["floor_samples"] == 1000 and about["reference_samples"] == 2000
    assert about["classifier_test_accuracy"] >= 0.98
    assert 0 < about["real_floor_fid"] < scores["fid"]
    json.dumps(about)  # JSON-ready


def test_real_statistics_are_cached_in_memory_and_on_disk(monkeypatch):
    network = feature_network("mnist-10k")
    first = ev.real_statistics("mnist-10k", network, ev.DEFAULT_SAMPLES)
    assert ev.real_statistics("mnist-10k", network, ev.DEFAULT_SAMPLES) is first
    monkeypatch.setattr(ev, "_REAL", {})
    monkeypatch.setattr(ev, "_reference_sets", lambda *a, **k: pytest.fail("recomputed"))
    again = ev.real_statistics("mnist-10k", network, ev.DEFAULT_SAMPLES)
    np.testing.assert_allclose(again["mu"], first["mu"])
    assert again["floor_fid"] == pytest.approx(first["floor_fid"])


def test_2d_protocol_finds_all_8_modes_of_real_samples(monkeypatch):
    gan, config, dataset = make_gan("ring8")
    real = dataset.sample(ev.MIXTURE_SAMPLES, np.random.default_rng(0))[0]
    monkeypatch.setattr(gan, "samples", lambda n, seed=0, batch_size=None: real[:n])
    scores = ev.evaluate_gan(gan, dataset, config)
    assert list(scores) == list(ev.POINT_KEYS)
    assert scores["modes_covered"] == 8.0
    assert scores["high_quality_fraction"] > 0.97
    assert scores["reverse_kl"] < 0.05
    # and the untrained generator, which has not found the ring, scores finite numbers
    monkeypatch.undo()
    untrained = ev.evaluate_gan(gan, dataset, config, n_samples=500)
    assert 0 <= untrained["modes_covered"] <= 8


@pytest.mark.filterwarnings("ignore:full MNIST")  # where only the bundled sample is here
def test_stacked_mnist_is_built_and_its_modes_recovered_by_the_classifier():
    data = stacked_mnist("test", n=1000, seed=0, source="mnist-10k")
    assert data.images.shape == (1000, 3, 28, 28) and data.images.dtype == np.uint8
    digits = load("mnist-10k", "test")
    assert set(np.unique(data.images[:, 0].reshape(1000, -1).sum(1))) <= set(
        digits.images.reshape(1000, -1).sum(1))  # each channel is a real digit
    assert data.labels.min() >= 0 and data.labels.max() < 1000
    np.testing.assert_array_equal(stacked_mnist("test", n=50, seed=0, source="mnist-10k").labels,
                                  data.labels[:50])
    by_name = load("stacked-mnist", "test", download=False)  # full MNIST, or the sample
    np.testing.assert_array_equal(by_name.labels[:50],
                                  stacked_mnist("test", n=50, download=False).labels)
    assert len(by_name) == 10_000 and by_name.image_shape == (3, 28, 28)
    predicted = predict_digits(to_signed_unit(data.images))
    modes = 100 * predicted[:, 0] + 10 * predicted[:, 1] + predicted[:, 2]
    # three digits right at once: about accuracy^3 (0.98^3 ~ 0.94)
    assert (modes == data.labels).mean() >= 0.9
    counted = stacked_mnist_modes(data.images)  # uint8 in, scaled like G's output
    true_modes = len(np.unique(data.labels))
    assert true_modes > 580  # 1,000 draws of 1,000 modes: 1000 (1 - 1/e) ~ 632 expected
    assert abs(counted["modes_covered"] - true_modes) <= 0.05 * true_modes
    assert counted["stacked_kl"] < 1.0


def test_evaluate_cli_writes_metrics_json(tmp_path, capsys):
    _, config, dataset = make_gan("mnist-10k")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    tinygan.save(Training(config, dataset).state_dict(), run / "checkpoints" / "latest.npz")
    assert evaluate_main([str(run), "--samples", "200"]) == 0
    out = capsys.readouterr().out
    assert "FID (tinygan LeNet-84 features)" in out and "real-data floor" in out
    report = json.loads((run / "metrics.json").read_text())
    assert list(report["scores"]) == list(ev.IMAGE_KEYS)
    assert report["about"]["generated_samples"] == 200
    assert report["about"]["classifier_dataset"] == "mnist-10k"
    assert not list(run.glob(".metrics.json*"))  # no temp file left behind
    assert evaluate_main([str(tmp_path / "nowhere")]) == 2
