"""Softmax family, dropout, embedding, batch_norm, pad and the losses: values against
NumPy, gradients against finite differences (float64, random cotangents)."""
import numpy as np
import pytest

import tinygan
import tinygan.functional as F
from grad_inputs import away, leaf, transposed
from tinygan.functional.loss import BCEWithLogitsGrad
from tinygan.functional.norm import BatchNormGrad
from tinygan.testing import gradcheck, gradgradcheck


def np_softmax(a, axis):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# ---------------------------------------------------------------- softmax family

@pytest.mark.parametrize("shape,dim", [((5,), 0), ((3, 4), 1), ((3, 4), 0), ((2, 3, 4), -1),
                                       ((2, 3, 4), 1)])
def test_softmax_and_log_softmax(shape, dim):
    a = away(*shape) * 3
    np.testing.assert_allclose(F.softmax(tinygan.tensor(a), dim).numpy(), np_softmax(a, dim),
                               rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(tinygan.tensor(a), dim).numpy(),
                               np.log(np_softmax(a, dim)), rtol=1e-10)
    assert gradcheck(lambda x: F.softmax(x, dim), [leaf(a)])
    assert gradcheck(lambda x: F.log_softmax(x, dim), [leaf(a)])
    assert gradcheck(lambda x: F.logsumexp(x, dim), [leaf(a)])


def test_softmax_on_non_contiguous_input_and_second_derivative():
    assert gradcheck(lambda x: F.softmax(x, 1), [transposed(3, 4)])
    assert gradcheck(lambda x: x.log_softmax(0), [transposed(3, 4)])
    assert gradgradcheck(lambda x: F.softmax(x, 1), [leaf(away(2, 3))])
    assert gradgradcheck(lambda x: F.log_softmax(x, 1), [leaf(away(2, 3))])


@pytest.mark.parametrize("cached_floats", [1 << 16, 50])  # 50: runs of 2 slices of 21
def test_softmax_gradient_op_and_its_derivatives(monkeypatch, cached_floats):
    """SoftmaxGrad gives y (gy - sum(y gy)), slice by slice, and its own derivatives in y
    and gy are right: second derivatives reach x through softmax's output."""
    from tinygan.functional import activation
    monkeypatch.setattr(activation, "_CACHED_FLOATS", cached_floats)
    y, gy = away(10, 3, 7, seed=1), away(10, 3, 7, seed=2)
    for dim in (0, 1, 2):
        gx = activation.SoftmaxGrad(dim)(tinygan.tensor(y), tinygan.tensor(gy)).numpy()
        np.testing.assert_allclose(gx, y * (gy - (y * gy).sum(dim, keepdims=True)),
                                   rtol=1e-12, atol=1e-15)
    assert gradcheck(lambda a, b: activation.SoftmaxGrad(1)(a, b),
                     [leaf(y[:3]), leaf(gy[:3])])


def test_softmax_is_stable_for_huge_logits():
    x = tinygan.tensor([[1000.0, 0.0, -1000.0]], requires_grad=True)
    np.testing.assert_allclose(F.softmax(x, 1).detach().numpy(), [[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(F.log_softmax(x, 1).detach().numpy(), [[0.0, -1000.0, -2000.0]])
    F.log_softmax(x, 1)[:, 1].sum().backward()
    assert np.isfinite(x.grad.numpy()).all()


# ---------------------------------------------------------------- dropout, embedding, pad

def test_dropout_with_a_fixed_mask():
    a = away(4, 5)
    mask = np.random.default_rng(1).random((4, 5)) > 0.3
    out = F.dropout(tinygan.tensor(a), 0.3, True, mask=mask)
    np.testing.assert_allclose(out.numpy(), a * mask / 0.7)
    assert gradcheck(lambda x: F.dropout(x, 0.3, True, mask=mask), [leaf(a)])
    assert gradcheck(lambda x: F.dropout(x, 0.5, True, mask=tinygan.tensor(mask)),
                     [transposed(4, 5)])


def test_dropout_second_derivative_and_modes():
    a = away(2, 3)
    mask = np.array([[1, 0, 1], [0, 1, 1]], bool)
    assert gradgradcheck(lambda x: F.dropout(x * x, 0.4, True, mask=mask), [leaf(a)])
    x = tinygan.randn(1000)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    assert (F.dropout(x, 1.0).numpy() == 0).all()
    kept = (F.dropout(x, 0.25).numpy() != 0).mean()
    assert 0.68 < kept < 0.82
    with pytest.raises(ValueError, match="p must be in"):
        F.dropout(x, 1.5)
    with pytest.raises(ValueError, match=r"mask has shape \(2, 3\), x has \(3, 2\)"):
        F.dropout(tinygan.tensor(a.T), 0.4, True, mask=mask)


def test_embedding_picks_rows_and_scatters_gradients():
    weight = away(5, 3)
    idx = tinygan.tensor(np.array([[0, 2, 2], [4, 0, 2]]))
    out = F.embedding(idx, tinygan.tensor(weight))
    np.testing.assert_array_equal(out.numpy(), weight[[[0, 2, 2], [4, 0, 2]]])
    assert gradcheck(lambda w: F.embedding(idx, w), [leaf(weight)])
    assert gradgradcheck(lambda w: F.embedding(idx, w * w), [leaf(weight)])
    w = leaf(weight)
    F.embedding(idx, w).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy()[:, 0], [2, 0, 3, 0, 1])
    with pytest.raises(TypeError, match="integers"):
        F.embedding(tinygan.tensor([0.0]), w)
    with pytest.raises(IndexError, match="outside"):
        F.embedding(tinygan.tensor([5]), w)


@pytest.mark.parametrize("pad,value", [((1, 2), 0.0), ((0, 1, 2, 0), 0.5), ((1, 1, 1, 1, 1, 0),
                                                                              -1.0)])
def test_pad(pad, value):
    a = away(2, 3, 4)
    widths = [(0, 0)] * 3
    for k in range(len(pad) // 2):
        widths[2 - k] = (pad[2 * k], pad[2 * k + 1])
    np.testing.assert_array_equal(F.pad(tinygan.tensor(a), pad, value).numpy(),
                                  np.pad(a, widths, constant_values=value))
    assert gradcheck(lambda x: F.pad(x, pad, value), [leaf(a)])
    assert gradgradcheck(lambda x: F.pad(x * x, pad, value), [leaf(a[:1, :2, :2])])
    with pytest.raises(ValueError, match="pad"):
        F.pad(tinygan.tensor(a), (1, 2, 3))


# ---------------------------------------------------------------- batch_norm

def np_batch_norm(a, mean, var, weight, bias, eps=1e-5):
    shape = (1, -1) + (1,) * (a.ndim - 2)
    y = (a - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    if weight is not None:
        y = y * weight.reshape(shape) + bias.reshape(shape)
    return y


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 2, 3)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training(shape, affine):
    a = away(*shape)
    axes = (0,) + tuple(range(2, len(shape)))
    c = shape[1]
    w, b = away(c, seed=1), away(c, seed=2)
    rm, rv = np.zeros(c), np.ones(c)
    params = [tinygan.tensor(w), tinygan.tensor(b)] if affine else []
    y = F.batch_norm(tinygan.tensor(a), rm, rv, *params, training=True, momentum=0.1)
    ref = np_batch_norm(a, a.mean(axes), a.var(axes), w if affine else None, b)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-8, atol=1e-10)
    n = a.size // c
    np.testing.assert_allclose(rm, 0.1 * a.mean(axes))
    np.testing.assert_allclose(rv, 0.9 + 0.1 * a.var(axes) * n / (n - 1))
    inputs = [leaf(a)] + ([leaf(w), leaf(b)] if affine else [])
    fn = lambda x, *p: F.batch_norm(x, None, None, *p, training=True)  # noqa: E731
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 2)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_eval(shape, affine):
    a = away(*shape)
    c = shape[1]
    rm, rv = away(c, seed=3), np.abs(away(c, seed=4))
    w, b = away(c, seed=1), away(c, seed=2)
    params = [tinygan.tensor(w), tinygan.tensor(b)] if affine else []
    y = F.batch_norm(tinygan.tensor(a), rm.copy(), rv.copy(), *params, training=False)
    np.testing.assert_allclose(y.numpy(), np_batch_norm(a, rm, rv, w if affine else None, b),
                               rtol=1e-10)
    inputs = [leaf(a)] + ([leaf(w), leaf(b)] if affine else [])
    fn = lambda x, *p: F.batch_norm(x, rm, rv, *p, training=False)  # noqa: E731
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


def test_batch_norm_on_non_contiguous_input_and_errors():
    x = tinygan.Tensor(away(3, 2, 4).transpose(2, 1, 0), requires_grad=True)  # (4, 2, 3)
    assert gradcheck(lambda t: F.batch_norm(t, None, None, training=True), [x])
    with pytest.raises(ValueError, match="more than one value per channel"):
        F.batch_norm(tinygan.randn(1, 3), None, None, training=True)
    with pytest.raises(ValueError, match="running_mean and running_var"):
        F.batch_norm(tinygan.randn(4, 3), None, None, training=False)


def test_batch_norm_checks_its_arguments_before_moving_the_running_statistics():
    rm, rv = np.zeros(3), np.ones(3)
    for args, message in [((None, tinygan.ones(3)), "bias without a weight"),
                          ((), "more than one value per channel")]:
        x = tinygan.randn(1 if "value" in message else 4, 3)
        with pytest.raises(ValueError, match=message):
            F.batch_norm(x, rm, rv, *args, training=True)
        np.testing.assert_array_equal(rm, np.zeros(3))
        np.testing.assert_array_equal(rv, np.ones(3))


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 2, 2)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_grad_op(shape, affine):
    # BatchNormGrad, what training-mode BatchNorm.backward returns: (dx, dw, db) from
    # (x, gy, w), against the formula, and to the first and second order (BatchNorm's
    # second and third derivatives: its backward rebuilds the statistics from x)
    axes, c = (0,) + tuple(range(2, len(shape))), shape[1]
    per_channel = (1, c) + (1,) * (len(shape) - 2)

    def op(x, gy, *w):
        a = x.data
        mu, inv_std = a.mean(axes), 1 / np.sqrt(a.var(axes) + 1e-5)
        return BatchNormGrad(mu.reshape(per_channel), inv_std.reshape(per_channel), None,
                             1e-5)(x, gy, *w)

    x, gy, w = away(*shape), away(*shape, seed=1), away(c, seed=2)
    gx, gw, gb = op(tinygan.tensor(x), tinygan.tensor(gy), *[tinygan.tensor(w)][:affine])
    xhat = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + 1e-5)
    scale = w.reshape(per_channel) if affine else 1.0
    expected = scale * (gy - gy.mean(axes, keepdims=True)
                        - xhat * (gy * xhat).mean(axes, keepdims=True)) \
        / np.sqrt(x.var(axes, keepdims=True) + 1e-5)
    np.testing.assert_allclose(gx.numpy(), expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gw.numpy(), (gy * xhat).sum(axes), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gb.numpy(), gy.sum(axes), rtol=1e-9, atol=1e-12)
    inputs = [leaf(x), leaf(gy)] + [leaf(w)][:affine]
    assert gradcheck(op, inputs)
    assert gradgradcheck(op, inputs)


def test_batch_norm_float32_running_stats_stay_float32():
    rm, rv = tinygan.zeros(3), tinygan.ones(3)
    y = F.batch_norm(tinygan.randn(8, 3) * 2.0 + 1.0, rm, rv, training=True)
    assert y.dtype == rm.dtype == rv.dtype == np.float32
    assert np.all(rm.numpy() != 0)


# ---------------------------------------------------------------- losses

def np_bce_logits(x, t):
    return np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_with_logits(reduction):
    x, t = away(3, 4), np.random.default_rng(1).random((3, 4))
    ref = np_bce_logits(x, t)
    ref = {"mean": ref.mean(), "sum": ref.sum(), "none": ref}[reduction]
    out = F.binary_cross_entropy_with_logits(tinygan.tensor(x), tinygan.tensor(t),
                                             reduction=reduction)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12)
    fn = lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction)  # noqa
    assert gradcheck(fn, [leaf(x), leaf(t)])
    assert gradgradcheck(fn, [leaf(x), leaf(t)])
    assert gradcheck(lambda a: F.binary_cross_entropy_with_logits(a, 1.0 - t), [transposed(4, 3).T])


def test_binary_cross_entropy_with_logits_grad_op():
    # BCEWithLogitsGrad, what BCEWithLogits.backward returns for the logits:
    # gx = gy (sigmoid(x) - t), to the first and second order in gy, x and t
    x, t, gy = away(3, 4) * 3, np.random.default_rng(1).random((3, 4)), away(3, 4, seed=2)
    op = lambda g, a, b: BCEWithLogitsGrad()(g, a, b)  # noqa: E731
    np.testing.assert_allclose(op(*map(tinygan.tensor, (gy, x, t))).numpy(),
                               gy * (1 / (1 + np.exp(-x)) - t), rtol=1e-12)
    assert gradcheck(op, [leaf(gy), leaf(x), leaf(t)])
    assert gradgradcheck(op, [leaf(gy), leaf(x), leaf(t)])


def test_binary_cross_entropy_with_logits_is_stable_for_huge_logits():
    x = tinygan.tensor([1000.0, -1000.0, 1000.0, -1000.0], requires_grad=True)
    t = tinygan.tensor([1.0, 0.0, 0.0, 1.0])
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    np.testing.assert_allclose(loss.detach().numpy(), [0.0, 0.0, 1000.0, 1000.0])
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0, 1.0, -1.0])
    x64 = tinygan.tensor(np.array([1000.0, -1000.0]), requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(x64, tinygan.tensor(np.array([0.0, 0.0])))
    np.testing.assert_allclose(loss.item(), 500.0)
    loss.backward()
    np.testing.assert_allclose(x64.grad.numpy(), [0.5, 0.0])


def test_binary_cross_entropy_with_weight_and_bad_reduction():
    x, t, w = away(2, 3), np.ones((2, 3)), np.abs(away(2, 3, seed=2))
    out = F.binary_cross_entropy_with_logits(tinygan.tensor(x), tinygan.tensor(t),
                                             weight=tinygan.tensor(w))
    np.testing.assert_allclose(out.numpy(), (np_bce_logits(x, t) * w).mean())
    with pytest.raises(ValueError, match="reduction"):
        F.binary_cross_entropy_with_logits(tinygan.tensor(x), t, reduction="avg")
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: input of shape "
                                         r"\(2, 3\) and target of shape \(3,\)"):
        F.binary_cross_entropy_with_logits(tinygan.tensor(x), tinygan.tensor(np.ones(3)))


@pytest.mark.filterwarnings("ignore:divide by zero")  # log(0) before the clamp, as intended
def test_binary_cross_entropy_on_probabilities():
    p = 1 / (1 + np.exp(-away(3, 4)))
    t = np.random.default_rng(1).random((3, 4))
    ref = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean()
    np.testing.assert_allclose(F.binary_cross_entropy(tinygan.tensor(p), tinygan.tensor(t))
                               .numpy(), ref, rtol=1e-12)
    assert gradcheck(lambda a: F.binary_cross_entropy(a, t), [leaf(p)])
    sure = F.binary_cross_entropy(tinygan.tensor([0.0, 1.0]), tinygan.tensor([1.0, 0.0]))
    np.testing.assert_allclose(sure.numpy(), 100.0)  # logs clamped at -100, as PyTorch


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_and_l1_loss(reduction):
    x, t = away(3, 4, seed=1), away(3, 4, seed=2)
    reduce = {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction]
    np.testing.assert_allclose(F.mse_loss(tinygan.tensor(x), tinygan.tensor(t),
                                          reduction=reduction).numpy(), reduce((x - t) ** 2))
    np.testing.assert_allclose(F.l1_loss(tinygan.tensor(x), tinygan.tensor(t),
                                         reduction=reduction).numpy(), reduce(np.abs(x - t)))
    assert gradcheck(lambda a, b: F.mse_loss(a, b, reduction=reduction), [leaf(x), leaf(t)])
    assert gradgradcheck(lambda a, b: F.mse_loss(a, b, reduction=reduction), [leaf(x), leaf(t)])
    assert gradcheck(lambda a: F.l1_loss(a, t, reduction=reduction), [leaf(x)])


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy(label_smoothing, reduction):
    logits, target = away(5, 4) * 2, np.array([0, 3, 1, 3, 2])
    logp = np.log(np_softmax(logits, 1))
    ref = -logp[np.arange(5), target]
    ref = (1 - label_smoothing) * ref - label_smoothing * logp.mean(1)
    ref = {"mean": ref.mean(), "sum": ref.sum(), "none": ref}[reduction]
    t = tinygan.tensor(target)
    out = F.cross_entropy(tinygan.tensor(logits), t, reduction=reduction,
                          label_smoothing=label_smoothing)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10)
    fn = lambda x: F.cross_entropy(x, t, reduction=reduction,  # noqa: E731
                                   label_smoothing=label_smoothing)
    assert gradcheck(fn, [leaf(logits)])
    assert gradcheck(fn, [transposed(5, 4)])
    assert gradgradcheck(fn, [leaf(logits)])


def test_cross_entropy_and_nll_errors():
    logits = tinygan.randn(3, 4)
    with pytest.raises(TypeError, match="class indices"):
        F.cross_entropy(logits, tinygan.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="outside"):
        F.cross_entropy(logits, tinygan.tensor([0, 1, 4]))
    with pytest.raises(ValueError, match=r"nll_loss: expected input \(N, C\) and target \(N,\)"):
        F.nll_loss(logits, tinygan.tensor([0, 1]))
    np.testing.assert_array_equal(F.one_hot(tinygan.tensor([2, 0]), 3).numpy(),
                                  [[0, 0, 1], [1, 0, 0]])
