"""Optional parity with PyTorch, where it happens to be installed (it is never required)."""
import numpy as np
import pytest

import tinygan
import tinygan.functional as F

torch = pytest.importorskip("torch", exc_type=ImportError)  # opt-in: see conftest.py
TF = torch.nn.functional


def pair(*shape, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape)
    return (tinygan.tensor(a, requires_grad=True),
            torch.tensor(a, dtype=torch.float64, requires_grad=True))


CASES = {
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, dilation=2),
               lambda x, w, b: TF.conv2d(x, w, b, stride=2, padding=1, dilation=2),
               [(2, 3, 9, 8), (4, 3, 3, 2), (4,)]),
    "conv_transpose2d": (
        lambda x, w, b: F.conv_transpose2d(x, w, b, stride=3, padding=1, output_padding=2),
        lambda x, w, b: TF.conv_transpose2d(x, w, b, stride=3, padding=1, output_padding=2),
        [(2, 3, 4, 5), (3, 2, 4, 3), (2,)]),
    "max_pool2d": (lambda x: F.max_pool2d(x, 3, 2, 1), lambda x: TF.max_pool2d(x, 3, 2, 1),
                   [(2, 2, 7, 6)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 3, 2, 1), lambda x: TF.avg_pool2d(x, 3, 2, 1),
                   [(2, 2, 7, 6)]),
    "batch_norm": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                   lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True),
                   [(4, 3, 2, 2), (3,), (3,)]),
    "log_softmax": (lambda x: F.log_softmax(x, 1), lambda x: TF.log_softmax(x, 1), [(3, 5)]),
    "bce_with_logits": (lambda x, t: F.binary_cross_entropy_with_logits(x, F.sigmoid(t)),
                        lambda x, t: TF.binary_cross_entropy_with_logits(x, torch.sigmoid(t)),
                        [(3, 4), (3, 4)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_pytorch_forward_and_backward(name):
    ours, theirs, shapes = CASES[name]
    pairs = [pair(*s, seed=k) for k, s in enumerate(shapes)]
    a, b = ours(*[p[0] for p in pairs]), theirs(*[p[1] for p in pairs])
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-8, atol=1e-10)
    v = np.random.default_rng(9).standard_normal(a.shape)
    a.backward(tinygan.tensor(v))
    b.backward(torch.tensor(v))
    for ta, tb in pairs:
        np.testing.assert_allclose(ta.grad.numpy(), tb.grad.numpy(), rtol=1e-7, atol=1e-10)
