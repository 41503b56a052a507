"""Every layer's gradients against finite differences, for its input and each parameter.

Modules are converted to float64 (module.double()); gradcheck perturbs the module's own
Parameter objects in place, so the checked function just calls the module.
"""
import numpy as np
import pytest

import tinygan
from tinygan import nn
from tinygan.testing import gradcheck


def randn(*shape, seed=0, away_from_zero=False):
    x = np.random.default_rng(seed).standard_normal(shape)
    if away_from_zero:  # keep relu / leaky_relu / max-pool inputs away from their kinks
        x = np.sign(x) * (np.abs(x) + 0.1)
    return tinygan.tensor(x, requires_grad=True)


def check_module(module, x, training=True, before_call=None):
    """gradcheck of module(x) for x and every parameter, in float64."""
    module.double().train(training)
    params = list(module.parameters())
    assert all(p.dtype == np.float64 for p in params)

    def fn(x, *ps):
        if before_call is not None:
            before_call()
        return module(x)

    assert gradcheck(fn, [x] + params)


def test_linear():
    check_module(nn.Linear(4, 3), randn(5, 4))
    check_module(nn.Linear(4, 3, bias=False), randn(2, 6, 4))


def test_conv2d():
    check_module(nn.Conv2d(2, 3, 3, stride=2, padding=1), randn(2, 2, 5, 5))
    check_module(nn.Conv2d(2, 2, (3, 2), dilation=(1, 2), bias=False), randn(1, 2, 5, 6))


def test_conv_transpose2d():
    check_module(nn.ConvTranspose2d(2, 3, 4, stride=2, padding=1), randn(2, 2, 3, 3))
    check_module(nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1),
                 randn(1, 2, 3, 3))


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_2d(training):
    bn = nn.BatchNorm2d(3)
    bn.running_mean.data[...] = [0.1, -0.2, 0.3]
    bn.running_var.data[...] = [0.5, 1.5, 2.0]
    bn.weight.data[...] = [1.5, -0.5, 2.0]
    check_module(bn, randn(4, 3, 2, 2), training)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_1d(training):
    check_module(nn.BatchNorm1d(3), randn(6, 3), training)
    check_module(nn.BatchNorm1d(2, affine=False), randn(4, 2, 3), training)


def test_embedding():
    emb = nn.Embedding(5, 3).double()
    idx = tinygan.tensor(np.array([[0, 4], [4, 2]]))
    assert emb(idx).shape == (2, 2, 3)
    assert gradcheck(lambda w: emb(idx), [emb.weight])


@pytest.mark.parametrize("training", [True, False])
def test_dropout(training):
    drop = nn.Dropout(0.3)
    # reseeding before each call fixes the mask, so finite differences see one function
    check_module(drop, randn(4, 5), training, before_call=lambda: tinygan.manual_seed(7))
    tinygan.manual_seed(7)
    y = drop(tinygan.ones(1000, dtype="float64"))
    if training:
        zeros = float((y.data == 0).mean())
        assert 0.25 < zeros < 0.35 and np.allclose(y.data[y.data != 0], 1 / 0.7)
    else:
        assert np.all(y.data == 1.0)


@pytest.mark.parametrize("layer", [nn.ReLU(), nn.LeakyReLU(0.2), nn.Tanh(), nn.Sigmoid(),
                                   nn.Identity(), nn.Softmax(dim=1)])
def test_activations(layer):
    check_module(layer, randn(3, 4, away_from_zero=True))


def test_leaky_relu_default_slope():
    assert nn.LeakyReLU().negative_slope == 0.01
    y = nn.LeakyReLU()(tinygan.tensor([-2.0, 3.0]))
    np.testing.assert_allclose(y.numpy(), [-0.02, 3.0])


def test_shape_layers():
    x = randn(2, 3, 4, 5)
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    assert nn.Unflatten(1, (3, 20))(nn.Flatten()(x)).shape == (2, 3, 20)
    assert nn.Reshape(12, 5)(x).shape == (2, 12, 5)
    assert nn.Reshape((4, 15))(x).shape == (2, 4, 15)
    check_module(nn.Sequential(nn.Flatten(), nn.Unflatten(1, (6, 10)), nn.Reshape(60)), x)


def test_upsample_and_pools():
    x = randn(1, 2, 4, 4, away_from_zero=True)
    assert nn.Upsample(scale_factor=2)(x).shape == (1, 2, 8, 8)
    assert nn.Upsample(size=(8, 12))(x).shape == (1, 2, 8, 12)
    check_module(nn.Upsample(scale_factor=2), x)
    check_module(nn.MaxPool2d(2), x)
    check_module(nn.AvgPool2d(2), x)
    with pytest.raises(ValueError, match="exactly one"):
        nn.Upsample()


def test_dcgan_shapes():
    """DCGAN's 64x64 generator and discriminator layouts fit together."""
    g = nn.Sequential(
        nn.ConvTranspose2d(100, 64, 4, 1, 0, bias=False), nn.BatchNorm2d(64), nn.ReLU(True),
        nn.ConvTranspose2d(64, 32, 4, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(True),
        nn.ConvTranspose2d(32, 3, 4, 2, 1, bias=False), nn.Tanh())
    d = nn.Sequential(
        nn.Conv2d(3, 32, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(32, 1, 4, 2, 1, bias=False), nn.Flatten(), nn.Linear(16, 1))
    img = g(tinygan.randn(2, 100, 1, 1))
    assert img.shape == (2, 3, 16, 16)
    assert d(img).shape == (2, 1)


def test_errors_name_shapes():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\).*\(2, 4, 5, 5\)"):
        nn.BatchNorm2d(3)(tinygan.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match="4-D"):
        nn.BatchNorm2d(3)(tinygan.randn(2, 3))
    with pytest.raises(NotImplementedError, match="groups"):
        nn.Conv2d(4, 4, 3, groups=2)
