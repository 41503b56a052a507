"""Initialisers and each layer's default initialisation follow PyTorch's formulas."""
import math

import numpy as np
import pytest

import tinygan
from tinygan import nn
from tinygan.nn import init


def weights(*shape):
    return nn.Parameter(np.empty(shape, dtype=np.float32))


def test_calculate_gain():
    assert init.calculate_gain("linear") == 1.0 and init.calculate_gain("sigmoid") == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    with pytest.raises(ValueError, match="unsupported"):
        init.calculate_gain("swish")


def test_uniform_normal_constant_in_place():
    w = weights(200, 300)
    data = w.data
    assert init.uniform_(w, -2.0, 3.0) is w and w.data is data
    assert w.data.min() >= -2.0 and w.data.max() < 3.0
    assert abs(w.data.mean() - 0.5) < 0.05
    init.normal_(w, 1.0, 0.02)
    assert abs(w.data.mean() - 1.0) < 1e-3 and abs(w.data.std() - 0.02) < 1e-3
    assert w.dtype == np.float32
    init.zeros_(w)
    assert not w.data.any()
    init.ones_(w)
    assert (w.data == 1).all()
    init.constant_(w, 0.3)
    assert np.allclose(w.data, 0.3)


def test_seeded_by_manual_seed():
    tinygan.manual_seed(3)
    a = init.normal_(weights(10)).data.copy()
    tinygan.manual_seed(3)
    np.testing.assert_array_equal(init.normal_(weights(10)).data, a)


def test_xavier_and_kaiming_statistics():
    w = weights(256, 128, 3, 3)
    fan_in, fan_out = 128 * 9, 256 * 9
    init.xavier_uniform_(w, gain=2.0)
    bound = 2.0 * math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(w.data).max() <= bound
    assert abs(w.data.std() - bound / math.sqrt(3)) < 0.01 * bound
    init.xavier_normal_(w)
    assert abs(w.data.std() - math.sqrt(2 / (fan_in + fan_out))) < 0.01 * w.data.std()
    init.kaiming_uniform_(w, a=0, nonlinearity="relu")
    bound = math.sqrt(2) * math.sqrt(3 / fan_in)
    assert np.abs(w.data).max() <= bound
    assert abs(w.data.std() - bound / math.sqrt(3)) < 0.01 * bound
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(w.data.std() - math.sqrt(2 / fan_out)) < 0.01 * math.sqrt(2 / fan_out)
    with pytest.raises(ValueError, match="at least 2 dims"):
        init.xavier_uniform_(weights(5))


@pytest.mark.parametrize("shape", [(40, 100), (100, 40), (16, 3, 4, 4)])
def test_orthogonal(shape):
    w = init.orthogonal_(weights(*shape), gain=1.5)
    m = w.data.reshape(shape[0], -1).astype(np.float64)
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    np.testing.assert_allclose(gram, 1.5 ** 2 * np.eye(len(gram)), atol=1e-5)


def test_linear_default_init():
    lin = nn.Linear(256, 128)
    bound = 1 / math.sqrt(256)  # kaiming_uniform(a=sqrt 5): gain sqrt(1/3), so sqrt(3/256)/sqrt(3)
    w, b = lin.weight.data, lin.bias.data
    assert w.shape == (128, 256) and w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound / math.sqrt(3)
    assert abs(w.mean()) < 0.01 * bound


def test_conv_default_init():
    conv = nn.Conv2d(64, 128, 3)
    bound = 1 / math.sqrt(64 * 9)
    assert conv.weight.shape == (128, 64, 3, 3)
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.bias.data).max() <= bound
    assert abs(conv.weight.data.std() - bound / math.sqrt(3)) < 0.02 * bound / math.sqrt(3)


def test_conv_transpose_default_init_uses_weight_dim_1():
    conv_t = nn.ConvTranspose2d(128, 32, 4)
    bound = 1 / math.sqrt(32 * 16)  # fan_in from (in, OUT, kh, kw)'s dim 1, as PyTorch
    assert conv_t.weight.shape == (128, 32, 4, 4)
    assert np.abs(conv_t.weight.data).max() <= bound
    assert np.abs(conv_t.bias.data).max() <= bound
    assert abs(conv_t.weight.data.std() - bound / math.sqrt(3)) < 0.02 * bound / math.sqrt(3)
    assert np.abs(conv_t.bias.data).max() > 0.8 * bound


def test_embedding_and_batchnorm_default_init():
    emb = nn.Embedding(1000, 64)
    assert abs(emb.weight.data.std() - 1.0) < 0.02 and abs(emb.weight.data.mean()) < 0.02
    bn = nn.BatchNorm2d(8)
    assert (bn.weight.data == 1).all() and (bn.bias.data == 0).all()


def test_bounds_match_torch():
    torch = pytest.importorskip("torch", exc_type=ImportError)
    for ours, theirs in [(nn.Linear(30, 7), torch.nn.Linear(30, 7)),
                         (nn.ConvTranspose2d(9, 5, 3), torch.nn.ConvTranspose2d(9, 5, 3))]:
        for (name, p), (tname, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
            assert name == tname and p.shape == tuple(tp.shape)
            # both are uniform on the same interval: the extremes come close to each other
            assert np.abs(p.data).max() == pytest.approx(tp.detach().abs().max().item(),
                                                         rel=0.35)
