"""Spectral normalisation: sigma by power iteration, gradients, state, PyTorch parity."""
import copy

import numpy as np
import pytest

import tinygan
from tinygan import nn
from tinygan.nn.utils import remove_spectral_norm, spectral_norm
from tinygan.testing import gradcheck


def sigma_estimate(module):
    """u^T W v from the stored vectors."""
    w = module.weight_orig.data
    return float(module.weight_u.data @ w.reshape(w.shape[0], -1) @ module.weight_v.data)


def test_state_dict_keys_as_pytorch():
    lin = spectral_norm(nn.Linear(5, 3))
    assert list(lin.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    assert [n for n, _ in lin.named_parameters()] == ["bias", "weight_orig"]
    assert lin.weight_u.shape == (3,) and lin.weight_v.shape == (5,)
    conv_t = spectral_norm(nn.ConvTranspose2d(4, 6, 3))  # weight (in, out, kh, kw): dim 1
    assert conv_t.weight_u.shape == (6,) and conv_t.weight_v.shape == (4 * 3 * 3,)


@pytest.mark.parametrize("make", [lambda: nn.Linear(20, 12), lambda: nn.Conv2d(3, 8, 3),
                                  lambda: nn.ConvTranspose2d(8, 4, 4)])
def test_sigma_converges_to_largest_singular_value(make):
    tinygan.manual_seed(1)
    layer = spectral_norm(make().double())
    dim = 1 if isinstance(layer, nn.ConvTranspose2d) else 0
    matrix = np.moveaxis(layer.weight_orig.data, dim, 0)
    matrix = matrix.reshape(matrix.shape[0], -1)
    x = tinygan.randn(1, *((20,) if isinstance(layer, nn.Linear) else
                           (layer.in_channels, 5, 5)), dtype="float64")
    for _ in range(200):  # one power-iteration step per training forward
        layer(x)
    largest = np.linalg.svd(matrix, compute_uv=False)[0]
    u, v = layer.weight_u.data, layer.weight_v.data
    assert abs(float(u @ matrix @ v) - largest) / largest < 1e-3
    # and the normalised weight has spectral norm 1
    w = np.moveaxis(layer.weight.data, dim, 0)
    assert abs(np.linalg.svd(w.reshape(w.shape[0], -1), compute_uv=False)[0] - 1.0) < 1e-3


def test_eval_keeps_the_stored_estimate():
    layer = spectral_norm(nn.Linear(6, 4)).eval()
    u = layer.weight_u.data.copy()
    layer(tinygan.randn(2, 6))
    np.testing.assert_array_equal(layer.weight_u.data, u)
    np.testing.assert_allclose(layer.weight.data, layer.weight_orig.data / sigma_estimate(layer),
                               rtol=1e-5)
    layer.train()
    layer(tinygan.randn(2, 6))
    assert not np.array_equal(layer.weight_u.data, u)


def test_gradcheck_eval():
    layer = spectral_norm(nn.Conv2d(2, 3, 3)).double().eval()
    x = tinygan.tensor(np.random.default_rng(0).standard_normal((1, 2, 4, 4)),
                       requires_grad=True)
    assert gradcheck(lambda x, *ps: layer(x), [x] + list(layer.parameters()))


def test_gradcheck_train_with_converged_vectors():
    """Training mode: u, v restored before each call so the function is deterministic.

    sigma = u^T W v treats u, v as constants; that equals d sigma / dW only once they are
    the singular vectors, so they are converged first (as they are after some training).
    """
    layer = spectral_norm(nn.Linear(4, 3), n_power_iterations=1).double().train()
    for _ in range(300):
        layer(tinygan.zeros(1, 4, dtype="float64"))
    u, v = layer.weight_u.data.copy(), layer.weight_v.data.copy()

    def fn(x, *ps):
        layer.weight_u.data[...] = u
        layer.weight_v.data[...] = v
        return layer(x)

    x = tinygan.tensor(np.random.default_rng(1).standard_normal((3, 4)), requires_grad=True)
    assert gradcheck(fn, [x] + list(layer.parameters()), rtol=1e-3, atol=1e-5)


def test_second_forward_before_backward_does_not_change_first_graph():
    # a discriminator sees the real batch, then the fake one, then one backward
    layer = spectral_norm(nn.Linear(4, 2)).double()
    x = tinygan.randn(3, 4, dtype="float64")
    u, v = layer.weight_u.data.copy(), layer.weight_v.data.copy()
    (expected,) = tinygan.grad(layer(x).sum(), [layer.weight_orig])
    layer.weight_u.data[...], layer.weight_v.data[...] = u, v
    first = layer(x).sum()
    layer(x)  # moves u and v on
    assert not np.allclose(layer.weight_u.data, u)
    (got,) = tinygan.grad(first, [layer.weight_orig])
    np.testing.assert_allclose(got.data, expected.data, rtol=1e-12)


def test_load_state_dict_and_deepcopy():
    a = spectral_norm(nn.Linear(3, 3))
    b = spectral_norm(nn.Linear(3, 3))
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(b.weight_u.data, a.weight_u.data)
    x = tinygan.randn(2, 3)
    a.eval(), b.eval()
    np.testing.assert_allclose(a(x).detach().numpy(), b(x).detach().numpy(), rtol=1e-6)
    c = copy.deepcopy(a)
    np.testing.assert_allclose(c(x).detach().numpy(), a(x).detach().numpy(), rtol=1e-6)


def test_remove_and_errors():
    layer = spectral_norm(nn.Linear(3, 2)).eval()
    layer(tinygan.randn(1, 3))
    w = layer.weight.data.copy()
    remove_spectral_norm(layer)
    assert list(layer.state_dict()) == ["bias", "weight"]
    assert isinstance(layer.weight, nn.Parameter)
    np.testing.assert_allclose(layer.weight.data, w, rtol=1e-6)
    with pytest.raises(ValueError, match="not spectrally normalised"):
        remove_spectral_norm(layer)
    with pytest.raises(ValueError, match="no parameter 'kernel'"):
        spectral_norm(nn.Linear(2, 2), name="kernel")
    with pytest.raises(RuntimeError, match="already"):
        spectral_norm(spectral_norm(nn.Linear(2, 2)))


@pytest.mark.parametrize("transpose", [False, True])
def test_against_torch(transpose):
    torch = pytest.importorskip("torch", exc_type=ImportError)
    ours = nn.ConvTranspose2d(3, 4, 3) if transpose else nn.Conv2d(3, 4, 3)
    ours = spectral_norm(ours.double(), n_power_iterations=2)
    theirs = (torch.nn.ConvTranspose2d(3, 4, 3) if transpose else torch.nn.Conv2d(3, 4, 3))
    theirs = torch.nn.utils.spectral_norm(theirs.double(), n_power_iterations=2)
    assert list(theirs.state_dict()) == list(ours.state_dict())
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                            for k, v in ours.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5))
    for _ in range(2):
        y = ours(tinygan.tensor(x)).detach().numpy()
        np.testing.assert_allclose(y, theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-9,
                                   atol=1e-12)
    np.testing.assert_allclose(ours.weight_u.data, theirs.weight_u.numpy(), rtol=1e-9)
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(ours(tinygan.tensor(x)).detach().numpy(),
                               theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-9,
                               atol=1e-12)
