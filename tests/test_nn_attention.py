"""SAGAN self-attention: starts as the identity, follows its documented indexing."""
import numpy as np

import tinygan
from tinygan import nn
from tinygan.testing import gradcheck


def conv1x1(conv, x):
    """A 1x1 convolution by hand: (B, C, N) -> (B, O, N)."""
    return np.einsum("oc,bcn->bon", conv.weight.data[:, :, 0, 0], x) + conv.bias.data[:, None]


def test_gamma_starts_at_zero_so_the_block_is_the_identity():
    att = nn.SelfAttention(16)
    assert att.gamma.shape == (1,) and float(att.gamma.data[0]) == 0.0
    assert [n for n, _ in att.named_parameters()] == [  # own parameters first, as PyTorch
        "gamma", "f.weight", "f.bias", "g.weight", "g.bias", "h.weight", "h.bias"]
    assert att.f.weight.shape == (2, 16, 1, 1) and att.h.weight.shape == (16, 16, 1, 1)
    x = tinygan.randn(2, 16, 4, 4)
    np.testing.assert_array_equal(att(x).detach().numpy(), x.numpy())


def test_matches_the_documented_indexing():
    att = nn.SelfAttention(8).double()
    att.gamma.data[...] = 0.5
    x = np.random.default_rng(0).standard_normal((2, 8, 3, 4))
    xs = x.reshape(2, 8, 12)
    f, g, h = conv1x1(att.f, xs), conv1x1(att.g, xs), conv1x1(att.h, xs)
    s = np.einsum("bki,bkj->bij", f, g)                      # s[b, i, j] = f_i . g_j
    beta = np.exp(s - s.max(1, keepdims=True))
    beta /= beta.sum(1, keepdims=True)                      # softmax over i
    o = np.einsum("bci,bij->bcj", h, beta)                  # o_j = sum_i beta[i, j] h_i
    expected = x + 0.5 * o.reshape(x.shape)
    got_beta = att.attention(tinygan.tensor(x)).detach().numpy()
    np.testing.assert_allclose(got_beta, beta, rtol=1e-10)
    np.testing.assert_allclose(got_beta.sum(1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(att(tinygan.tensor(x)).detach().numpy(), expected, rtol=1e-10)


def test_gradcheck():
    att = nn.SelfAttention(8).double()
    att.gamma.data[...] = 0.7  # nonzero, so f, g, h get gradients too
    x = tinygan.tensor(np.random.default_rng(1).standard_normal((2, 8, 2, 3)),
                       requires_grad=True)
    for training in (True, False):
        att.train(training)
        assert gradcheck(lambda x, *ps: att(x), [x] + list(att.parameters()))
