"""CPU (NumPy) against GPU (CuPy): every op forward and backward, float32, rtol 1e-4.

Each case draws float32 inputs on the CPU, copies them to the GPU, runs the op and a
backward pass with the same random cotangent on both devices, and compares the outputs
and every input's gradient. Without CuPy or a GPU the whole file is skipped, with the
reason (it never fails for want of a GPU).
"""
import numpy as np
import pytest

import tinygan
import tinygan.functional as F
from tinygan import backend

from conftest import requires_gpu

pytestmark = [pytest.mark.gpu, requires_gpu]

RTOL, ATOL = 1e-4, 1e-5


def away(*shape, seed=0, margin=0.1):
    r = np.random.default_rng(seed).standard_normal(shape)
    return np.asarray(np.where(r >= 0, 1.0, -1.0) * (margin + np.abs(r)), np.float32)


def distinct(*shape, seed=0):
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n) * 0.05 - n * 0.025).astype(
        np.float32).reshape(shape)


MASK = np.random.default_rng(7).random((3, 4)) > 0.4
INDEX = np.array([[0, 2, 2], [4, 0, 1]])
TARGET = np.array([0, 3, 1])

# name -> (function of tensors, input arrays); every array is differentiated
CASES = {
    "add": (lambda a, b: a + b, [away(3, 4), away(4, seed=1)]),
    "sub": (lambda a, b: a - b, [away(3, 1), away(1, 4, seed=1)]),
    "mul": (lambda a, b: a * b, [away(2, 3, 4), away(3, 1, seed=1)]),
    "div": (lambda a, b: a / b, [away(3, 4), away(3, 4, seed=1)]),
    "neg": (lambda a: -a, [away(3, 4)]),
    "pow": (lambda a: a ** 3, [away(3, 4)]),
    "exp": (F.exp, [away(3, 4)]),
    "log": (lambda a: F.log(F.abs(a)), [away(3, 4)]),
    "sqrt": (lambda a: F.sqrt(F.abs(a)), [away(3, 4)]),
    "abs": (F.abs, [away(3, 4)]),
    "clamp": (lambda a: F.clamp(a, -0.45, 0.55), [away(3, 4)]),
    "tanh": (F.tanh, [away(3, 4)]),
    "sigmoid": (F.sigmoid, [away(3, 4)]),
    "relu": (F.relu, [away(3, 4)]),
    "leaky_relu": (lambda a: F.leaky_relu(a, 0.2), [away(3, 4)]),
    "softplus": (F.softplus, [away(3, 4)]),
    "matmul": (F.matmul, [away(2, 3, 4), away(4, 5, seed=1)]),
    "matmul_batched": (F.matmul, [away(2, 1, 3, 4), away(3, 4, 2, seed=1)]),
    "linear": (F.linear, [away(3, 4), away(5, 4, seed=1), away(5, seed=2)]),
    "sum": (lambda a: a.sum((0, 2), keepdim=True), [away(2, 3, 4)]),
    "mean": (lambda a: a.mean(1), [away(2, 3, 4)]),
    "amax": (lambda a: F.amax(a, 1), [distinct(2, 3, 4)]),
    "var": (lambda a: a.var(0), [away(4, 3)]),
    "reshape": (lambda a: a.reshape(4, 6), [away(2, 3, 4)]),
    "permute": (lambda a: a.permute(2, 0, 1), [away(2, 3, 4)]),
    "transpose": (lambda a: a.transpose(0, 1), [away(2, 3, 4)]),
    "flatten": (lambda a: a.flatten(1), [away(2, 3, 4)]),
    "getitem_slice": (lambda a: a[:, 1:, ::2], [away(2, 3, 4)]),
    "getitem_repeats": (lambda a: a[[0, 2, 2, 1]], [away(3, 4)]),
    "cat": (lambda a, b: tinygan.cat([a, b], 1), [away(2, 3), away(2, 2, seed=1)]),
    "stack": (lambda a, b: tinygan.stack([a, b], 0), [away(2, 3), away(2, 3, seed=1)]),
    "broadcast_to": (lambda a: F.broadcast_to(a, (2, 3, 4)), [away(3, 1)]),
    "softmax": (lambda a: F.softmax(a, 1), [away(3, 4)]),
    "log_softmax": (lambda a: F.log_softmax(a, 1), [away(3, 4)]),
    "logsumexp": (lambda a: F.logsumexp(a, 1), [away(3, 4)]),
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, dilation=1),
               [away(2, 3, 7, 6), away(4, 3, 3, 2, seed=1), away(4, seed=2)]),
    "conv2d_dilated": (lambda x, w: F.conv2d(x, w, padding=2, dilation=2),
                       [away(1, 2, 6, 6), away(3, 2, 3, 3, seed=1)]),
    "conv_transpose2d": (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1,
                                                            output_padding=1),
                         [away(2, 3, 4, 3), away(3, 2, 3, 3, seed=1), away(2, seed=2)]),
    "avg_pool2d": (lambda a: F.avg_pool2d(a, 3, 2, 1), [away(2, 2, 7, 6)]),
    "max_pool2d": (lambda a: F.max_pool2d(a, 2), [distinct(2, 2, 6, 6)]),
    "interpolate": (lambda a: F.interpolate(a, scale_factor=2), [away(2, 2, 3, 3)]),
    "dropout": (lambda a: F.dropout(a, 0.4, True, mask=MASK), [away(3, 4)]),
    "embedding": (lambda w: F.embedding(tinygan.tensor(INDEX, device=w.device), w),
                  [away(5, 3)]),
    "batch_norm_train": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                         [away(4, 3, 2, 2), away(3, seed=1), away(3, seed=2)]),
    "batch_norm_eval": (lambda x: F.batch_norm(  # running statistics on x's device
        x, x.xp.full(3, 0.1, np.float32), x.xp.full(3, 2.0, np.float32), training=False),
        [away(4, 3)]),
    "bce_with_logits": (lambda x, t: F.binary_cross_entropy_with_logits(x, t),
                        [away(3, 4) * 3, np.random.default_rng(3).random((3, 4)).astype(
                            np.float32)]),
    "mse_loss": (F.mse_loss, [away(3, 4), away(3, 4, seed=1)]),
    "cross_entropy": (lambda x: F.cross_entropy(x, tinygan.tensor(TARGET, device=x.device)),
                      [away(3, 4)]),
    "pad": (lambda a: F.pad(a, (1, 2, 0, 1)), [away(2, 3, 4)]),
}


def _run(fn, arrays, device, seed=0):
    """Outputs and input gradients (as NumPy) of fn on a device, for a fixed cotangent."""
    inputs = [tinygan.tensor(a, device=device, requires_grad=True) for a in arrays]
    out = fn(*inputs)
    v = np.random.default_rng(seed).standard_normal(out.shape).astype(np.float32)
    grads = tinygan.grad(out, inputs, grad_outputs=tinygan.tensor(v, device=device),
                         allow_unused=True)
    return (out.detach().to("cpu").numpy(),
            [None if g is None else g.to("cpu").numpy() for g in grads])


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_and_backward_agree_on_cpu_and_gpu(name):
    fn, arrays = CASES[name]
    out_cpu, grads_cpu = _run(fn, arrays, "cpu")
    out_gpu, grads_gpu = _run(fn, arrays, "cuda")
    assert out_gpu.dtype == np.float32
    np.testing.assert_allclose(out_gpu, out_cpu, rtol=RTOL, atol=ATOL, err_msg=f"{name} forward")
    for k, (gc, gg) in enumerate(zip(grads_cpu, grads_gpu)):
        assert (gc is None) == (gg is None)
        if gc is not None:
            assert gg.dtype == np.float32
            np.testing.assert_allclose(gg, gc, rtol=RTOL, atol=ATOL,
                                       err_msg=f"{name} gradient of input {k}")


def test_second_derivatives_agree_on_cpu_and_gpu():
    def penalty(device):
        x = tinygan.tensor(away(2, 2, 6, 6), device=device, requires_grad=True)
        w = tinygan.tensor(away(3, 2, 3, 3, seed=1), device=device, requires_grad=True)
        v = tinygan.tensor(away(2, 27, seed=2), device=device, requires_grad=True)
        h = F.leaky_relu(F.conv2d(x, w, stride=2, padding=1), 0.2).reshape(2, -1)
        g, = tinygan.grad(F.linear(h, v[:1]).sum(), x, create_graph=True)
        p = ((g.reshape(2, -1) ** 2).sum(1).sqrt() - 1.0) ** 2
        p.mean().backward()
        return [t.grad.to("cpu").numpy() for t in (w, v)]

    for cpu, gpu in zip(penalty("cpu"), penalty("cuda")):
        np.testing.assert_allclose(gpu, cpu, rtol=RTOL, atol=ATOL)


def generator_penalty(device):
    """A generator-side gradient penalty: its second derivatives run the backward of every
    gradient op (ConvTranspose2dGrad, BatchNormGrad, LeakyReLUGrad, BCEWithLogitsGrad)."""
    z = tinygan.tensor(away(2, 3, 3, 3), device=device, requires_grad=True)
    params = [tinygan.tensor(a, device=device, requires_grad=True)
              for a in (away(3, 2, 4, 4, seed=1), away(2, seed=2), away(2, seed=3))]
    w, gamma, beta = params
    h = F.conv_transpose2d(z, w, stride=2, padding=1)                      # (2, 2, 6, 6)
    h = F.leaky_relu(F.batch_norm(h, None, None, gamma, beta, training=True), 0.2)
    target = tinygan.tensor(np.random.default_rng(4).random(h.shape).astype(np.float32),
                            device=device)
    loss = F.binary_cross_entropy_with_logits(h, target, reduction="sum")
    g, = tinygan.grad(loss, z, create_graph=True)
    (g ** 2).sum().backward()
    return [p.grad.to("cpu").numpy() for p in params]


def test_second_derivatives_through_the_gradient_ops_agree_on_cpu_and_gpu():
    for cpu, gpu in zip(generator_penalty("cpu"), generator_penalty("cuda")):
        np.testing.assert_allclose(gpu, cpu, rtol=RTOL, atol=ATOL)


def test_creation_on_gpu_is_float32_and_moves_back():
    for t in (tinygan.randn(2, 3, device="cuda"), tinygan.zeros(2, device="cuda"),
              tinygan.tensor([1.0, 2.0], device="cuda")):
        assert t.device == "cuda" and t.dtype == np.float32
    x = tinygan.randn(3, requires_grad=True)
    y = x.to("cuda")
    assert y.device == "cuda" and y.requires_grad
    (y * 2.0).sum().backward()
    assert x.grad.device == "cpu"
    np.testing.assert_allclose(x.grad.numpy(), 2.0)
    assert tinygan.tensor(np.zeros(2), device="cuda").dtype == np.float64


def test_mixing_cpu_and_gpu_tensors_is_a_clear_error():
    a, b = tinygan.randn(3), tinygan.randn(3, device="cuda")
    with pytest.raises(RuntimeError, match=r"different devices \['cpu', 'cuda'\].*\.to\(device\)"):
        a + b
    with pytest.raises(RuntimeError, match="different devices"):
        F.matmul(tinygan.randn(2, 3, device="cuda"), tinygan.randn(3, 2))
    with pytest.raises(RuntimeError, match="different devices"):
        F.conv2d(tinygan.randn(1, 1, 4, 4), tinygan.randn(1, 1, 3, 3, device="cuda"))


def test_seeding_makes_gpu_random_numbers_repeatable():
    tinygan.manual_seed(3)
    a = tinygan.randn(5, device="cuda").to("cpu").numpy()
    tinygan.manual_seed(3)
    b = tinygan.randn(5, device="cuda").to("cpu").numpy()
    np.testing.assert_array_equal(a, b)
    assert backend.cuda_is_available()
