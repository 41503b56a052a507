"""ring8 and grid25: exactly the documented centres and spreads."""
import numpy as np
import pytest

from tinygan.data import load
from tinygan.data.mixtures import grid_centers, ring_centers


def test_ring8_centres_are_eight_distinct_angles():
    ring = load("ring8")
    assert ring.centers.shape == (8, 2) and ring.std == 0.02 and ring.num_classes == 8
    np.testing.assert_allclose(np.linalg.norm(ring.centers, axis=1), 2.0, atol=1e-12)
    angles = np.mod(np.arctan2(ring.centers[:, 1], ring.centers[:, 0]), 2 * np.pi)
    np.testing.assert_allclose(angles, 2 * np.pi * np.arange(8) / 8, atol=1e-12)
    assert len(np.unique(np.round(angles, 6))) == 8


def test_linspace_would_have_repeated_a_mode():
    # The known bug this guards against: linspace(0, 2pi, 8) ends at 2pi == 0.
    bad = np.linspace(0, 2 * np.pi, 8)
    bad_centres = np.round(np.stack([np.cos(bad), np.sin(bad)], 1), 6)
    assert len(np.unique(bad_centres, axis=0)) == 7
    assert len(np.unique(np.round(ring_centers(8), 6), axis=0)) == 8


def test_grid25_centres():
    grid = load("grid25")
    assert grid.centers.shape == (25, 2) and grid.std == 0.05
    assert {tuple(c) for c in grid.centers} == {(x, y) for x in (-4, -2, 0, 2, 4)
                                               for y in (-4, -2, 0, 2, 4)}
    np.testing.assert_array_equal(grid.centers, grid_centers())


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_empirical_means_and_stds_per_mode(name):
    mixture = load(name)
    points, modes = mixture.sample(100_000, np.random.default_rng(0))
    assert points.dtype == np.float32 and points.shape == (100_000, 2)
    assert modes.dtype == np.int64
    k = mixture.num_classes
    counts = np.bincount(modes, minlength=k)
    assert counts.min() > 0.8 * 100_000 / k  # modes drawn uniformly
    for m in range(k):
        p = points[modes == m].astype(np.float64)
        # the mean of n draws wanders by std/sqrt(n): allow 5 of those
        np.testing.assert_allclose(p.mean(0), mixture.centers[m],
                                   atol=5 * mixture.std / np.sqrt(len(p)))
        np.testing.assert_allclose(p.std(0), mixture.std, rtol=0.05)
    # each point is nearest to the centre of the mode it was drawn from
    nearest = np.argmin(((points[:, None] - mixture.centers[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(nearest, modes)


def test_sample_is_reproducible_by_seed():
    ring = load("ring8")
    a, la = ring.sample(100, 7)
    b, lb = ring.sample(100, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)


def test_notional_epoch():
    assert len(load("ring8")) == 6400
    assert len(load("grid25", epoch_size=1000)) == 1000
