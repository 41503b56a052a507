"""Fused CuPy kernels against the generic code they replace.

On every machine: each kernel's generic twin (the code NumPy runs) agrees with the
textbook formula and with tinygan.functional (so the GPU comparison below compares
against the right thing). With CuPy and a GPU: each kernel agrees with its generic twin
in float32 (rtol 1e-4); elsewhere those tests are skipped with the reason.
"""
import itertools

import numpy as np
import pytest

import tinygan
import tinygan.functional as F
from tinygan import backend
from tinygan.functional.unfold import _col2im_array, _im2col_array
from tinygan.kernels import activation, batchnorm, im2col
from tinygan.kernels.reduce import sum_over

rng = np.random.default_rng(0)
gpu = pytest.mark.skipif(not backend.cuda_is_available(),
                         reason=f"needs CuPy and a CUDA GPU: {backend.cuda_unavailable_reason()}")


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


# ------------------------------------ generic twins == formulas and functional (CPU)

def test_leaky_relu_generic_matches_functional():
    x = randn(4, 5)
    gy = randn(4, 5)
    t = tinygan.tensor(x, requires_grad=True)
    y = F.leaky_relu(t, 0.2)
    y.backward(tinygan.tensor(gy))
    assert np.allclose(activation.leaky_relu_forward_generic(x, 0.2), y.detach().numpy())
    assert np.allclose(activation.leaky_relu_backward_generic(gy, x, 0.2), t.grad.numpy())
    # both branches of the forward (max(x, a x) needs 0 <= a <= 1), in the input's dtype
    for slope in (0.0, 0.2, 1.0, 1.5, -0.3):
        for a in (x, x.astype(np.float64)):
            y = activation.leaky_relu_forward_generic(a, slope)
            gx = activation.leaky_relu_backward_generic(gy.astype(a.dtype), a, slope)
            assert y.dtype == gx.dtype == a.dtype
            np.testing.assert_allclose(y, np.where(a > 0, a, slope * a), rtol=1e-6)
            np.testing.assert_allclose(gx, np.where(a > 0, gy, slope * gy), rtol=1e-6)


def test_bce_generic_matches_functional():
    x, target = randn(6, 1) * 5, rng.random((6, 1)).astype(np.float32)
    gy = randn(6, 1)
    t = tinygan.tensor(x, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(t, tinygan.tensor(target), reduction="none")
    loss.backward(tinygan.tensor(gy))
    assert np.allclose(activation.bce_with_logits_forward_generic(x, target),
                       loss.detach().numpy(), atol=1e-6)
    assert np.allclose(activation.bce_with_logits_backward_generic(gy, x, target),
                       t.grad.numpy(), atol=1e-6)
    # the textbook formulas, in float64 where they do not overflow
    x, target, gy = (a.astype(np.float64) for a in (x, target, gy))
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(activation.bce_with_logits_forward_generic(x, target),
                               -target * np.log(s) - (1 - target) * np.log(1 - s), rtol=1e-9)
    np.testing.assert_allclose(activation.bce_with_logits_backward_generic(gy, x, target),
                               gy * (s - target), rtol=1e-9)


def test_batchnorm_generic_matches_functional():
    x, gy = randn(8, 3, 4, 4), randn(8, 3, 4, 4)
    w, b = randn(3), randn(3)
    xt, wt, bt = (tinygan.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.batch_norm(xt, None, None, wt, bt, training=True)
    y.backward(tinygan.tensor(gy))
    axes, shape = (0, 2, 3), (1, 3, 1, 1)
    mean = x.mean(axes).reshape(shape)
    inv_std = 1 / np.sqrt(x.var(axes).reshape(shape) + 1e-5)
    xhat = (x - mean) * inv_std
    out = batchnorm.normalize_generic(x, mean, inv_std, w.reshape(shape), b.reshape(shape))
    assert np.allclose(out, y.detach().numpy(), atol=1e-5)
    assert np.allclose(out, xhat * w.reshape(shape) + b.reshape(shape), atol=1e-5)
    assert np.allclose(batchnorm.normalize_generic(x, mean, inv_std), xhat, atol=1e-5)
    mg, mgx = gy.mean(axes).reshape(shape), (gy * xhat).mean(axes).reshape(shape)
    gx = batchnorm.input_grad_generic(gy, xhat, inv_std, w.reshape(shape), mg, mgx)
    assert np.allclose(gx, xt.grad.numpy(), atol=1e-4)
    assert np.allclose(gx, w.reshape(shape) * inv_std * (gy - mg - xhat * mgx), atol=1e-4)


# -------------------------------------------------------- kernels == generic (GPU)

def _cp():
    return backend.cupy_module()


@gpu
@pytest.mark.gpu
def test_leaky_relu_kernel():
    cp = _cp()
    x, gy = cp.asarray(randn(64, 128)), cp.asarray(randn(64, 128))
    cp.testing.assert_allclose(activation.leaky_relu_forward(x, 0.2),
                               activation.leaky_relu_forward_generic(x, 0.2), rtol=1e-4)
    cp.testing.assert_allclose(activation.leaky_relu_backward(gy, x, 0.2),
                               activation.leaky_relu_backward_generic(gy, x, 0.2), rtol=1e-4)


@gpu
@pytest.mark.gpu
def test_bce_kernel():
    cp = _cp()
    x = cp.asarray(randn(64, 1) * 30)
    t, gy = cp.asarray(rng.random((64, 1)).astype(np.float32)), cp.asarray(randn(64, 1))
    cp.testing.assert_allclose(activation.bce_with_logits_forward(x, t),
                               activation.bce_with_logits_forward_generic(x, t), rtol=1e-4,
                               atol=1e-6)
    cp.testing.assert_allclose(activation.bce_with_logits_backward(gy, x, t),
                               activation.bce_with_logits_backward_generic(gy, x, t),
                               rtol=1e-4, atol=1e-6)


@gpu
@pytest.mark.gpu
def test_batchnorm_kernels():
    cp = _cp()
    x, gy = cp.asarray(randn(16, 8, 5, 5)), cp.asarray(randn(16, 8, 5, 5))
    shape = (1, 8, 1, 1)
    mean, inv_std = x.mean((0, 2, 3)).reshape(shape), 1 / cp.sqrt(x.var((0, 2, 3)) + 1e-5)
    inv_std = inv_std.reshape(shape)
    w, b = cp.asarray(randn(8)).reshape(shape), cp.asarray(randn(8)).reshape(shape)
    xhat, y = batchnorm.normalize(x, mean, inv_std, w, b)
    cp.testing.assert_allclose(y, batchnorm.normalize_generic(x, mean, inv_std, w, b),
                               rtol=1e-4, atol=1e-6)
    cp.testing.assert_allclose(xhat, (x - mean) * inv_std, rtol=1e-4, atol=1e-6)
    mg, mgx = gy.mean((0, 2, 3)).reshape(shape), (gy * xhat).mean((0, 2, 3)).reshape(shape)
    cp.testing.assert_allclose(batchnorm.input_grad(gy, xhat, inv_std, w, mg, mgx),
                               batchnorm.input_grad_generic(gy, xhat, inv_std, w, mg, mgx),
                               rtol=1e-4, atol=1e-6)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(64, 3, 32, 32), (4, 5, 3, 2), (3, 700), (1, 1, 4)])
def test_sum_kernel_in_every_layout(shape):
    # out[k] = sum over (r1, r2) of x seen as (R1, K, R2), for every memory order and axes
    cp = _cp()
    base = randn(*shape)
    for perm in itertools.permutations(range(len(shape))):
        a = cp.ascontiguousarray(cp.asarray(base).transpose(perm)).transpose(
            [perm.index(d) for d in range(len(shape))])
        for k in range(1, len(shape) + 1):
            for axes in itertools.combinations(range(len(shape)), k):
                want = base.astype(np.float64).sum(axis=axes)
                np.testing.assert_allclose(cp.asnumpy(sum_over(a, axes)), want,
                                           rtol=1e-4, atol=1e-3)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("k,s,p,d", [(3, 1, 1, 1), (4, 2, 1, 1), (5, 2, 2, 1), (3, 2, 0, 2)])
def test_im2col_kernels(k, s, p, d):
    cp = _cp()
    x = cp.asarray(randn(2, 3, 9, 8))
    args = ((k, k), (s, s), (p, p), (d, d))
    want, out_hw = _im2col_array(x, *args)
    got = im2col.im2col(x, *args, out_hw)
    cp.testing.assert_allclose(got, want, rtol=1e-5)
    cols = cp.asarray(randn(*want.shape))
    cp.testing.assert_allclose(im2col.col2im(cols, x.shape, *args, out_hw),
                               _col2im_array(cols, x.shape, *args), rtol=1e-4, atol=1e-5)
