"""BatchNorm's running statistics follow PyTorch's update rule exactly."""
import numpy as np
import pytest

import tinygan
from tinygan import nn


def batches(shape, count, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) * 2.0 + 0.5 for _ in range(count)]


def test_running_statistics_by_hand():
    bn = nn.BatchNorm2d(3).double()
    mean, var = np.zeros(3), np.ones(3)
    for x in batches((4, 3, 5, 5), 3):
        y = bn(tinygan.tensor(x)).detach().numpy()
        axes = (0, 2, 3)
        mu, biased = x.mean(axes), x.var(axes)
        unbiased = x.var(axes, ddof=1)  # the running estimate uses n / (n - 1)
        mean = 0.9 * mean + 0.1 * mu
        var = 0.9 * var + 0.1 * unbiased
        expected = (x - mu[None, :, None, None]) / np.sqrt(biased[None, :, None, None] + 1e-5)
        np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(bn.running_mean.numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), var, rtol=1e-12)
    assert int(bn.num_batches_tracked.item()) == 3


def test_eval_uses_running_statistics_and_does_not_update_them():
    bn = nn.BatchNorm1d(2).double()
    bn.running_mean.data[...] = [1.0, -1.0]
    bn.running_var.data[...] = [4.0, 0.25]
    bn.weight.data[...] = [2.0, 3.0]
    bn.bias.data[...] = [0.5, -0.5]
    bn.eval()
    x = batches((5, 2), 1)[0]
    y = bn(tinygan.tensor(x)).detach().numpy()
    expected = (x - [1.0, -1.0]) / np.sqrt(np.array([4.0, 0.25]) + 1e-5) * [2.0, 3.0] \
        + [0.5, -0.5]
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    np.testing.assert_array_equal(bn.running_mean.numpy(), [1.0, -1.0])
    assert int(bn.num_batches_tracked.item()) == 0


def test_momentum_none_is_a_cumulative_average():
    bn = nn.BatchNorm1d(3, momentum=None).double()
    xs = batches((8, 3), 4)
    for x in xs:
        bn(tinygan.tensor(x))
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([x.mean(0) for x in xs], 0),
                               rtol=1e-12)


def test_without_running_stats_eval_uses_batch_statistics():
    bn = nn.BatchNorm1d(3, track_running_stats=False).eval()
    assert bn.running_mean is None and list(bn.state_dict()) == ["weight", "bias"]
    y = bn(tinygan.randn(16, 3)).detach().numpy()
    np.testing.assert_allclose(y.mean(0), 0.0, atol=1e-5)


def test_defaults_and_state_dict():
    bn = nn.BatchNorm2d(4)
    assert (bn.eps, bn.momentum, bn.affine, bn.track_running_stats) == (1e-5, 0.1, True, True)
    np.testing.assert_array_equal(bn.weight.data, np.ones(4))
    np.testing.assert_array_equal(bn.bias.data, np.zeros(4))
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                     "num_batches_tracked"]
    assert bn.num_batches_tracked.dtype == np.int64 and bn.num_batches_tracked.shape == ()


def test_against_torch():
    torch = pytest.importorskip("torch", exc_type=ImportError)
    ours = nn.BatchNorm2d(3).double()
    theirs = torch.nn.BatchNorm2d(3).double()
    for x in batches((4, 3, 2, 2), 3, seed=1):
        y = ours(tinygan.tensor(x)).detach().numpy()
        np.testing.assert_allclose(y, theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-9,
                                   atol=1e-9)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key].numpy(), value.numpy(), rtol=1e-12)
