"""The evaluation maths against closed forms, brute-force references and published numbers."""
import importlib
import math

import numpy as np
import pytest

from tinygan.metrics import (class_coverage, feature_statistics, frechet_distance,
                             frechet_distance_from_features, kernel_inception_distance,
                             mixture_metrics, mmd2_unbiased, prdc, stacked_modes)

# The package exports the function prdc under the module's own name, so fetch the module.
prdc_module = importlib.import_module("tinygan.metrics.manifolds")


def random_covariance(rng, d):
    """A random well-conditioned SPD matrix."""
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def frechet_reference(mu1, s1, mu2, s2):
    """Same d^2, with Tr((S1 S2)^{1/2}) from the (non-symmetric) eigenvalues of S1 S2 itself."""
    eigenvalues = np.linalg.eigvals(s1 @ s2)
    trace_sqrt = np.sqrt(np.clip(eigenvalues.real, 0.0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt)


# ---------------------------------------------------------------- Frechet distance

def test_feature_statistics_is_mean_and_unbiased_covariance():
    x = np.random.default_rng(0).standard_normal((300, 7))
    mu, sigma = feature_statistics(x)
    np.testing.assert_allclose(mu, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False, ddof=1), rtol=1e-12)


def test_frechet_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(1).standard_normal((500, 64)) * 3.0 + 1.0
    _, sigma = feature_statistics(x)
    assert frechet_distance_from_features(x, x) < 1e-6 * np.trace(sigma)


def test_frechet_diagonal_gaussians_closed_form():
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.standard_normal(10), rng.standard_normal(10)
    s1, s2 = rng.uniform(0.1, 4.0, 10), rng.uniform(0.1, 4.0, 10)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)


def test_frechet_commuting_covariances_closed_form():
    # S1 = Q diag(a) Q^T and S2 = Q diag(b) Q^T commute; then (S1 S2)^{1/2} = Q diag(sqrt(ab)) Q^T.
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    a, b = rng.uniform(0.1, 4.0, 12), rng.uniform(0.1, 4.0, 12)
    mu1, mu2 = rng.standard_normal(12), rng.standard_normal(12)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    got = frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-9)


def test_frechet_non_commuting_matches_eigenvalues_of_the_product():
    rng = np.random.default_rng(4)
    s1, s2 = random_covariance(rng, 20), random_covariance(rng, 20)
    assert not np.allclose(s1 @ s2, s2 @ s1)
    mu1, mu2 = rng.standard_normal(20), rng.standard_normal(20)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(frechet_reference(mu1, s1, mu2, s2), rel=1e-9)


def test_frechet_non_commuting_matches_scipy_sqrtm():
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(5)
    s1, s2 = random_covariance(rng, 16), random_covariance(rng, 16)
    mu1, mu2 = rng.standard_normal(16), rng.standard_normal(16)
    trace_sqrt = np.trace(linalg.sqrtm(s1 @ s2)).real
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_frechet_from_features_with_fewer_samples_than_dimensions():
    # D > N makes both covariances singular: S1^{1/2} is singular and the identity must still hold.
    rng = np.random.default_rng(6)
    f1, f2 = rng.standard_normal((40, 64)), rng.standard_normal((50, 64)) + 0.2
    (mu1, s1), (mu2, s2) = feature_statistics(f1), feature_statistics(f2)
    assert frechet_distance_from_features(f1, f2) == pytest.approx(frechet_reference(mu1, s1, mu2, s2), rel=1e-7)


def test_frechet_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="feature widths differ"):
        frechet_distance_from_features(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="sigma2"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))


# ---------------------------------------------------------------- KID

def test_mmd2_unbiased_matches_the_double_sum():
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((5, 3)) + 0.3
    k = lambda a, b: (a @ b / 3 + 1.0) ** 3  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_mmd2_is_unbiased_where_the_diagonal_would_bias_it():
    # Over many independent pairs of samples of one distribution the estimator averages to 0;
    # keeping the diagonal (the biased V-statistic) would average clearly above 0.
    rng = np.random.default_rng(8)
    unbiased, biased = [], []
    for _ in range(300):
        x, y = rng.standard_normal((30, 4)), rng.standard_normal((30, 4))
        unbiased.append(mmd2_unbiased(x, y))
        kxx, kyy, kxy = ((a @ b.T / 4 + 1.0) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        biased.append(kxx.mean() + kyy.mean() - 2 * kxy.mean())
    standard_error = np.std(unbiased) / np.sqrt(len(unbiased))
    assert abs(np.mean(unbiased)) < 3 * standard_error
    assert np.mean(biased) > 10 * standard_error


def test_kid_is_zero_on_average_for_one_distribution():
    # Many more samples than one subset holds, so the subsets are close to independent and
    # std / sqrt(n_subsets) is an honest standard error of the mean.
    rng = np.random.default_rng(9)
    real, fake = rng.standard_normal((20000, 16)), rng.standard_normal((20000, 16))
    mean, std = kernel_inception_distance(real, fake, n_subsets=100, subset_size=200, seed=0)
    assert std > 0
    assert abs(mean) < 3 * std / np.sqrt(100)


def test_kid_is_clearly_positive_for_shifted_distributions():
    rng = np.random.default_rng(10)
    real, fake = rng.standard_normal((3000, 16)), rng.standard_normal((3000, 16)) + 0.5
    mean, std = kernel_inception_distance(real, fake, n_subsets=20, subset_size=1000, seed=0)
    assert mean > 10 * std / np.sqrt(20)
    assert mean > 0


def test_kid_is_seeded_and_clips_the_subset_size():
    rng = np.random.default_rng(11)
    real, fake = rng.standard_normal((60, 8)), rng.standard_normal((80, 8))
    first = kernel_inception_distance(real, fake, n_subsets=5, seed=3)  # subset_size 1000 -> 60
    assert first == kernel_inception_distance(real, fake, n_subsets=5, seed=3)
    assert np.isfinite(first).all()


# ---------------------------------------------------------------- precision, recall, density, coverage

def prdc_brute_force(real, fake, k):
    """The four definitions, written out with full distance matrices."""
    d_rr = np.linalg.norm(real[:, None] - real[None], axis=2)
    d_ff = np.linalg.norm(fake[:, None] - fake[None], axis=2)
    d_rf = np.linalg.norm(real[:, None] - fake[None], axis=2)
    r_real = np.sort(d_rr, axis=1)[:, k]  # column 0 is the point itself
    r_fake = np.sort(d_ff, axis=1)[:, k]
    in_real_ball = d_rf <= r_real[:, None]
    return {
        "precision": in_real_ball.any(axis=0).mean(),
        "recall": (d_rf <= r_fake[None, :]).any(axis=1).mean(),
        "density": in_real_ball.sum() / (k * len(fake)),
        "coverage": (d_rf.min(axis=1) <= r_real).mean(),
    }


def test_prdc_matches_brute_force_across_chunks(monkeypatch):
    monkeypatch.setattr(prdc_module, "_BLOCK_ELEMENTS", 2000)  # force many small chunks
    rng = np.random.default_rng(12)
    real, fake = rng.standard_normal((300, 5)), rng.standard_normal((250, 5)) * 1.2 + 0.3
    got, expected = prdc(real, fake, k=5), prdc_brute_force(real, fake, 5)
    for name in expected:
        assert got[name] == pytest.approx(expected[name], abs=1e-12), name


def test_prdc_identical_sets():
    x = np.random.default_rng(13).standard_normal((500, 16))
    metrics = prdc(x, x, k=5)
    assert metrics["precision"] == metrics["recall"] == metrics["coverage"] == 1.0
    # Each ball holds its own centre and its k neighbours: density = (k + 1) / k.
    assert metrics["density"] == pytest.approx(6 / 5)


def test_prdc_published_gaussian_numbers():
    # Naeem et al. 2020 (README of their code): real and fake both 10,000 samples of a
    # standard Gaussian in 1,000-d, k = 5 give precision 0.4772, recall 0.4705, density
    # 1.0030, coverage 0.9735. Their draw is unseeded; across seeds this configuration
    # spreads by a few hundredths (over seeds 0-7 of default_rng: precision 0.456-0.497,
    # recall 0.459-0.493, density 0.91-1.08, coverage 0.956-0.975), so the tolerances
    # are that spread. Smaller sets do not reproduce it (2,000 per set
    # gives ~0.55), and in 64-d the values are ~0.68. About 10 s on 2 cores.
    rng = np.random.default_rng(1)
    real, fake = rng.standard_normal((10000, 1000)), rng.standard_normal((10000, 1000))
    metrics = prdc(real, fake, k=5)
    assert metrics["precision"] == pytest.approx(0.4772, abs=0.03)
    assert metrics["recall"] == pytest.approx(0.4705, abs=0.03)
    assert metrics["density"] == pytest.approx(1.0030, abs=0.1)
    assert metrics["coverage"] == pytest.approx(0.9735, abs=0.02)


# ---------------------------------------------------------------- class coverage

def test_class_coverage_uniform_and_single_class():
    uniform = class_coverage(np.repeat(np.arange(10), 100), 10)
    assert uniform["histogram"] == [100] * 10
    assert uniform["classes_covered"] == 10
    assert uniform["kl_to_uniform"] == pytest.approx(0.0, abs=1e-12)
    single = class_coverage(np.full(500, 7), 10)
    assert single["classes_covered"] == 1
    assert single["kl_to_uniform"] == pytest.approx(math.log(10))


def test_class_coverage_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        class_coverage(np.array([0, 10]), 10)


def test_stacked_modes():
    d = np.arange(1000)
    every_mode = np.stack([d // 100, d // 10 % 10, d % 10], axis=1)
    result = stacked_modes(every_mode)
    assert result["modes_covered"] == 1000
    assert result["kl_to_uniform"] == pytest.approx(0.0, abs=1e-12)
    one_mode = stacked_modes(np.tile([[3, 1, 4]], (200, 1)))
    assert one_mode["modes_covered"] == 1
    assert one_mode["kl_to_uniform"] == pytest.approx(math.log(1000))


# ---------------------------------------------------------------- 2D mixtures

def ring8():
    angles = 2 * np.pi * np.arange(8) / 8
    return 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1), 0.02


def grid25():
    ticks = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    return np.stack(np.meshgrid(ticks, ticks), axis=-1).reshape(-1, 2), 0.05


def mixture_samples(rng, centers, std, n=2500):
    return centers[rng.integers(len(centers), size=n)] + std * rng.standard_normal((n, 2))


@pytest.mark.parametrize("mixture", [ring8, grid25])
def test_mixture_metrics_on_the_true_mixture(mixture):
    centers, std = mixture()
    samples = mixture_samples(np.random.default_rng(14), centers, std)
    metrics = mixture_metrics(samples, centers, std)
    assert metrics["modes_covered"] == len(centers)
    # The distance of a 2D isotropic Gaussian sample to its centre is Rayleigh, so true
    # samples fall within 3 std with probability 1 - exp(-9/2) = 0.9889, not 1.
    expected = 1 - math.exp(-4.5)
    assert metrics["high_quality_fraction"] == pytest.approx(expected, abs=4 * math.sqrt(expected * (1 - expected) / 2500))
    assert metrics["high_quality_fraction"] > 0.98
    assert metrics["reverse_kl"] < 0.01
    assert sum(metrics["histogram"]) == round(metrics["high_quality_fraction"] * 2500)


@pytest.mark.parametrize("mixture", [ring8, grid25])
def test_mixture_metrics_on_a_collapsed_generator(mixture):
    centers, std = mixture()
    samples = centers[3] + std * 0.5 * np.random.default_rng(15).standard_normal((2500, 2))
    metrics = mixture_metrics(samples, centers, std)
    assert metrics["modes_covered"] == 1
    assert metrics["histogram"][3] == 2500
    assert metrics["reverse_kl"] == pytest.approx(math.log(len(centers)))


def test_mixture_metrics_without_high_quality_samples():
    centers, std = ring8()
    metrics = mixture_metrics(np.full((100, 2), 10.0), centers, std)
    assert metrics["modes_covered"] == 0
    assert metrics["high_quality_fraction"] == 0.0
    assert metrics["reverse_kl"] == math.inf
