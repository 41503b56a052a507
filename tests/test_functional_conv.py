"""Convolution, transposed convolution, pooling and nearest upsampling.

Values are compared with textbook loops in NumPy (and with F.conv2d_simple); gradients
with finite differences over small grids of stride, padding, dilation, output_padding,
odd and even sizes and non-square kernels. Every case is tiny, so the grid stays fast.
"""
import itertools

import numpy as np
import pytest

import tinygan
import tinygan.functional as F
from grad_inputs import away, distinct, leaf
from tinygan.functional.conv import ConvTranspose2dGrad, conv2d_weight
from tinygan.testing import gradcheck, gradgradcheck


def out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


# ---------------------------------------------------------------- references in NumPy

def conv2d_reference(x, w, b, stride, padding, dilation):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    oh = out_size(h, kh, stride[0], padding[0], dilation[0])
    ow = out_size(wd, kw, stride[1], padding[1], dilation[1])
    y = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            for p in range(kh):
                for q in range(kw):
                    r, s = i * stride[0] + p * dilation[0], j * stride[1] + q * dilation[1]
                    y[:, :, i, j] += xp[:, :, r, s] @ w[:, :, p, q].T
    return y if b is None else y + b[None, :, None, None]


def conv_transpose2d_reference(x, w, b, stride, padding, output_padding, dilation):
    """Scatter every input pixel times the kernel onto the output, then crop the padding."""
    n, c, h, wd = x.shape
    _, o, kh, kw = w.shape
    oh = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1
    ow = (wd - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1
    full = np.zeros((n, o, oh + 2 * padding[0], ow + 2 * padding[1]))
    for i in range(h):
        for j in range(wd):
            for p in range(kh):
                for q in range(kw):
                    r, s = i * stride[0] + p * dilation[0], j * stride[1] + q * dilation[1]
                    if r < full.shape[2] and s < full.shape[3]:
                        full[:, :, r, s] += x[:, :, i, j] @ w[:, :, p, q]
    y = full[:, :, padding[0]:padding[0] + oh, padding[1]:padding[1] + ow]
    return y if b is None else y + b[None, :, None, None]


def pool_reference(x, k, s, p, d, reduce, pad_value):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p[0],) * 2, (p[1],) * 2), constant_values=pad_value)
    oh, ow = out_size(h, k[0], s[0], p[0], d[0]), out_size(w, k[1], s[1], p[1], d[1])
    y = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            window = xp[:, :, i * s[0]:i * s[0] + d[0] * (k[0] - 1) + 1:d[0],
                        j * s[1]:j * s[1] + d[1] * (k[1] - 1) + 1:d[1]]
            y[:, :, i, j] = reduce(window, axis=(2, 3))
    return y


@pytest.fixture(params=["col2im", "tiles"])
def conv_path(request, monkeypatch):
    """On the CPU the convolutions run by tiles from 16 channels up (the image's for
    im2col, the output's for conv_transpose2d's adds) and by im2col and col2im below:
    the cases here, with a few channels, take each path in turn."""
    if request.param == "tiles":
        monkeypatch.setattr(F.conv, "_TILES_MIN_CHANNELS", 1)
    return request.param


# ---------------------------------------------------------------- conv2d

KERNELS = [(3, 3), (2, 3), (3, 1)]
SIZES = [(5, 6), (4, 4)]  # odd and even, square and not
CONV_GRID = [(k, s, p, d, hw)
             for k, s, p, d, hw in itertools.product(KERNELS[:2], (1, 2, 3), (0, 1, 2), (1, 2),
                                                     SIZES)
             if out_size(hw[0], k[0], s, p, d) >= 1 and out_size(hw[1], k[1], s, p, d) >= 1]


@pytest.mark.parametrize("kernel,stride,padding,dilation,hw", CONV_GRID)
def test_conv2d_grid(kernel, stride, padding, dilation, hw, conv_path):
    x, w, b = away(1, 2, *hw, seed=1), away(2, 2, *kernel, seed=2), away(2, seed=3)
    args = dict(stride=stride, padding=padding, dilation=dilation)
    y = F.conv2d(tinygan.tensor(x), tinygan.tensor(w), tinygan.tensor(b), **args)
    ref = conv2d_reference(x, w, b, (stride,) * 2, (padding,) * 2, (dilation,) * 2)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda x_, w_, b_: F.conv2d(x_, w_, b_, **args), [leaf(x), leaf(w), leaf(b)])


@pytest.mark.parametrize("stride,padding,dilation", [((1, 2), (0, 1), (2, 1)),
                                                     ((2, 1), (2, 0), (1, 2)),
                                                     ((3, 2), (1, 2), (1, 1))])
def test_conv2d_with_per_axis_arguments_and_a_tall_kernel(stride, padding, dilation):
    x, w = away(2, 3, 7, 6, seed=1), away(2, 3, 3, 1, seed=2)
    y = F.conv2d(tinygan.tensor(x), tinygan.tensor(w), None, stride, padding, dilation)
    np.testing.assert_allclose(y.numpy(), conv2d_reference(x, w, None, stride, padding, dilation),
                               rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda a, b: F.conv2d(a, b, None, stride, padding, dilation),
                     [leaf(x[:1, :2]), leaf(w[:, :2])])


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), (1, 2), (3, 1)])
def test_conv2d_agrees_with_the_naive_conv2d_simple(stride, padding):
    x = tinygan.randn(2, 3, 7, 8)
    w, b = tinygan.randn(4, 3, 3, 2), tinygan.randn(4)
    fast = F.conv2d(x, w, b, stride=stride, padding=padding)
    slow = F.conv2d_simple(x, w, b, stride=stride, padding=padding)
    assert fast.shape == slow.shape and fast.dtype == np.float32
    np.testing.assert_allclose(fast.numpy(), slow.numpy(), rtol=1e-4, atol=1e-5)


def test_conv2d_simple_gradients_agree_with_conv2d():
    x, w = leaf(away(1, 2, 5, 5, seed=1)), leaf(away(3, 2, 2, 3, seed=2))
    v = tinygan.tensor(away(1, 3, 3, 3, seed=3))
    fast = tinygan.grad(F.conv2d(x, w, stride=2, padding=1), [x, w], grad_outputs=v)
    slow = tinygan.grad(F.conv2d_simple(x, w, stride=2, padding=1), [x, w], grad_outputs=v)
    for f, s in zip(fast, slow):
        np.testing.assert_allclose(f.numpy(), s.numpy(), rtol=1e-10)


def test_conv2d_on_non_contiguous_input():
    base = away(6, 5, 2, 2, seed=1)  # (W, H, C, N)
    x = tinygan.Tensor(base.transpose(3, 2, 1, 0), requires_grad=True)
    assert x.shape == (2, 2, 5, 6) and not x.data.flags.c_contiguous
    w = leaf(away(3, 2, 2, 3, seed=2))
    ref = conv2d_reference(np.ascontiguousarray(x.data), w.data, None, (1, 1), (0, 0), (1, 1))
    np.testing.assert_allclose(F.conv2d(x, w).detach().numpy(), ref, rtol=1e-10)
    for padding in (0, 1):
        assert gradcheck(lambda a, b: F.conv2d(a, b, stride=2, padding=padding), [x, w])
    strided_x = tinygan.Tensor(away(1, 2, 5, 12, seed=3)[..., ::2], requires_grad=True)
    assert gradcheck(lambda a, b: F.conv2d(a, b, dilation=2), [strided_x, w])


@pytest.mark.parametrize("stride,padding,dilation", [(1, 0, 1), (2, 1, 1), (1, 1, 2)])
def test_conv2d_second_derivative(stride, padding, dilation, conv_path):
    args = dict(stride=stride, padding=padding, dilation=dilation)
    assert gradgradcheck(lambda x, w, b: F.conv2d(x, w, b, **args),
                         [leaf(away(1, 2, 5, 4, seed=1)), leaf(away(2, 2, 2, 2, seed=2)),
                          leaf(away(2, seed=3))])


def test_conv2d_output_shapes_like_pytorch():
    x = tinygan.randn(2, 3, 32, 32)
    assert F.conv2d(x, tinygan.randn(8, 3, 4, 4), stride=2, padding=1).shape == (2, 8, 16, 16)
    assert F.conv2d(x, tinygan.randn(8, 3, 3, 3), padding=1).shape == (2, 8, 32, 32)
    assert F.conv2d(x, tinygan.randn(8, 3, 3, 3), dilation=2).shape == (2, 8, 28, 28)
    assert F.conv2d(x, tinygan.randn(8, 3, 5, 3), stride=(2, 1)).shape == (2, 8, 14, 30)


# ---------------------------------------------------------------- conv_transpose2d

TRANSPOSE_GRID = [(k, s, p, op, d, hw)
                  for k, s, p, d, hw in itertools.product(KERNELS[:2], (1, 2, 3), (0, 1, 2),
                                                          (1, 2), [(3, 2), (2, 2)])
                  for op in range(s)
                  if (hw[0] - 1) * s - 2 * p + d * (k[0] - 1) + op + 1 >= 1
                  and (hw[1] - 1) * s - 2 * p + d * (k[1] - 1) + op + 1 >= 1]


@pytest.mark.parametrize("kernel,stride,padding,output_padding,dilation,hw", TRANSPOSE_GRID)
def test_conv_transpose2d_grid(kernel, stride, padding, output_padding, dilation, hw,
                               conv_path):
    x, w, b = away(1, 2, *hw, seed=1), away(2, 2, *kernel, seed=2), away(2, seed=3)
    args = dict(stride=stride, padding=padding, output_padding=output_padding,
                dilation=dilation)
    y = F.conv_transpose2d(tinygan.tensor(x), tinygan.tensor(w), tinygan.tensor(b), **args)
    ref = conv_transpose2d_reference(x, w, b, (stride,) * 2, (padding,) * 2,
                                     (output_padding,) * 2, (dilation,) * 2)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda x_, w_, b_: F.conv_transpose2d(x_, w_, b_, **args),
                     [leaf(x), leaf(w), leaf(b)])


@pytest.mark.parametrize("stride,padding,output_padding", [(2, 1, 1), (3, 0, 2), (1, 1, 0)])
def test_conv_transpose2d_is_the_adjoint_of_conv2d(stride, padding, output_padding,
                                                  conv_path):
    # <conv2d(z, w), x> = <z, conv_transpose2d(x, w)> with the same weight array
    x = tinygan.tensor(away(2, 4, 3, 4, seed=1))
    w = tinygan.tensor(away(4, 3, 3, 3, seed=2))
    y = F.conv_transpose2d(x, w, stride=stride, padding=padding, output_padding=output_padding)
    z = tinygan.tensor(away(*y.shape, seed=3))
    lhs = (F.conv2d(z, w, stride=stride, padding=padding) * x).sum().item()
    rhs = (z * y).sum().item()
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10)


def test_conv_transpose2d_on_non_contiguous_input(conv_path):
    x = tinygan.Tensor(away(3, 2, 2, 1, seed=1).transpose(3, 2, 1, 0), requires_grad=True)
    assert not x.data.flags.c_contiguous
    w = leaf(away(2, 3, 3, 2, seed=2))
    assert gradcheck(lambda a, b: F.conv_transpose2d(a, b, stride=2, padding=1,
                                                     output_padding=1), [x, w])


@pytest.mark.parametrize("stride,padding,output_padding", [(1, 0, 0), (2, 1, 1)])
def test_conv_transpose2d_second_derivative(stride, padding, output_padding, conv_path):
    args = dict(stride=stride, padding=padding, output_padding=output_padding)
    assert gradgradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, **args),
                         [leaf(away(1, 2, 2, 3, seed=1)), leaf(away(2, 2, 3, 2, seed=2)),
                          leaf(away(2, seed=3))])


@pytest.mark.parametrize("stride,padding,output_padding,dilation", [(2, 1, 1, 1), (1, 0, 0, 2),
                                                                    (3, (2, 1), (1, 2), 1)])
def test_conv_transpose2d_grad_op(stride, padding, output_padding, dilation, conv_path):
    # ConvTranspose2dGrad, what ConvTranspose2d.backward returns when x and W both want a
    # gradient: (conv2d(gy, W), conv2d_weight(gy, x)) from one im2col(gy), against the
    # two ops, and to the first and second order in gy, x and W
    s, p, d = F.conv._pair(stride), F.conv._pair(padding), F.conv._pair(dilation)
    x, w = away(2, 3, 3, 4, seed=1), away(3, 2, 3, 2, seed=2)
    y = F.conv_transpose2d(tinygan.tensor(x), tinygan.tensor(w), None, stride, padding,
                           output_padding, dilation)
    gy = away(*y.shape, seed=3)
    op = lambda g, a, b: ConvTranspose2dGrad(s, p, d)(g, a, b)  # noqa: E731
    gx, gw = op(*map(tinygan.tensor, (gy, x, w)))
    np.testing.assert_allclose(gx.numpy(), F.conv2d(tinygan.tensor(gy), tinygan.tensor(w),
                                                    None, s, p, d).numpy(), rtol=1e-12)
    np.testing.assert_allclose(gw.numpy(), conv2d_weight(tinygan.tensor(gy), tinygan.tensor(x),
                                                         w.shape[2:], s, p, d).numpy(),
                               rtol=1e-12)
    assert gradcheck(op, [leaf(gy), leaf(x), leaf(w)])
    assert gradgradcheck(op, [leaf(gy), leaf(x), leaf(w)])


def test_conv_transpose2d_gradient_of_one_input_only():
    # a generator's first layer: its input z wants no gradient, its weight does
    x, w, b = away(2, 3, 3, 4, seed=1), away(3, 2, 3, 2, seed=2), away(2, seed=3)
    fn = lambda a, b_, c: F.conv_transpose2d(a, b_, c, 2, 1, 1)  # noqa: E731
    for inputs in ([tinygan.tensor(x), leaf(w), leaf(b)], [leaf(x), tinygan.tensor(w), None]):
        assert gradcheck(fn, inputs)
        assert gradgradcheck(fn, inputs)


def test_conv_transpose2d_output_shapes_like_pytorch():
    x = tinygan.randn(2, 8, 4, 4)
    w = tinygan.randn(8, 3, 4, 4)
    assert F.conv_transpose2d(x, w, stride=2, padding=1).shape == (2, 3, 8, 8)
    assert F.conv_transpose2d(x, w).shape == (2, 3, 7, 7)
    assert F.conv_transpose2d(x, tinygan.randn(8, 3, 3, 3), stride=2, padding=1,
                              output_padding=1).shape == (2, 3, 8, 8)


# ---------------------------------------------------------------- pooling

POOL_GRID = [(k, s, p, hw)
             for k, s, p, hw in itertools.product([(2, 2), (3, 3), (3, 2)], (None, 1, 2, 3),
                                                  (0, 1), [(5, 4), (4, 6)])
             if 2 * p <= min(k)
             and out_size(hw[0], k[0], s or k[0], p, 1) >= 1
             and out_size(hw[1], k[1], s or k[1], p, 1) >= 1]


@pytest.mark.parametrize("kernel,stride,padding,hw", POOL_GRID)
def test_avg_pool2d_grid(kernel, stride, padding, hw):
    x = away(2, 1, *hw, seed=1)
    y = F.avg_pool2d(tinygan.tensor(x), kernel, stride, padding)
    s = kernel if stride is None else (stride,) * 2
    ref = pool_reference(x, kernel, s, (padding,) * 2, (1, 1), np.mean, 0.0)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10)
    assert gradcheck(lambda a: F.avg_pool2d(a, kernel, stride, padding), [leaf(x)])


MAX_POOL_GRID = [(k, s, p, hw, d) for (k, s, p, hw), d in itertools.product(POOL_GRID, (1, 2))
                 if out_size(hw[0], k[0], s or k[0], p, d) >= 1
                 and out_size(hw[1], k[1], s or k[1], p, d) >= 1]


@pytest.mark.parametrize("kernel,stride,padding,hw,dilation", MAX_POOL_GRID)
def test_max_pool2d_grid(kernel, stride, padding, hw, dilation):
    s = kernel if stride is None else (stride,) * 2
    x = distinct(2, 1, *hw, seed=1)
    y = F.max_pool2d(tinygan.tensor(x), kernel, stride, padding, dilation)
    ref = pool_reference(x, kernel, s, (padding,) * 2, (dilation,) * 2, np.max, -np.inf)
    np.testing.assert_allclose(y.numpy(), ref)
    assert gradcheck(lambda a: F.max_pool2d(a, kernel, stride, padding, dilation), [leaf(x)])


def test_pooling_on_non_contiguous_input_and_bad_padding():
    x = tinygan.Tensor(distinct(6, 5, 2, 1, seed=2).transpose(3, 2, 1, 0), requires_grad=True)
    assert not x.data.flags.c_contiguous
    assert gradcheck(lambda a: F.max_pool2d(a, 2), [x])
    assert gradcheck(lambda a: F.avg_pool2d(a, 3, 2, 1), [x])
    with pytest.raises(ValueError, match="padding"):
        F.avg_pool2d(tinygan.randn(1, 1, 4, 4), 2, padding=2)


def test_avg_pool2d_second_derivative():
    assert gradgradcheck(lambda a: F.avg_pool2d(a * a, 2), [leaf(away(1, 2, 4, 4))])


# ---------------------------------------------------------------- nearest upsampling

@pytest.mark.parametrize("kwargs,factor", [(dict(scale_factor=2), (2, 2)),
                                           (dict(scale_factor=(1, 3)), (1, 3)),
                                           (dict(size=(6, 4)), (2, 2)),
                                           (dict(size=9), (3, 4.5))])
def test_interpolate_nearest(kwargs, factor):
    x = away(2, 2, 3, 2, seed=1)
    if factor[1] != int(factor[1]):
        with pytest.raises(ValueError, match="multiple"):
            F.interpolate(tinygan.tensor(x), **kwargs)
        return
    y = F.interpolate(tinygan.tensor(x), **kwargs)
    ref = x.repeat(factor[0], axis=2).repeat(int(factor[1]), axis=3)
    np.testing.assert_array_equal(y.numpy(), ref)
    assert gradcheck(lambda a: F.interpolate(a, **kwargs), [leaf(x)])


def test_interpolate_rejects_other_modes_and_is_twice_differentiable():
    with pytest.raises(ValueError, match="bilinear"):
        F.interpolate(tinygan.randn(1, 1, 2, 2), scale_factor=2, mode="bilinear")
    assert gradgradcheck(lambda a: F.interpolate(a * a, scale_factor=2),
                         [leaf(away(1, 1, 2, 3))])


@pytest.mark.parametrize("in_c,out_c,kernel,padding,dilation", [(2, 3, (3, 3), 1, 1),
                                                                (1, 4, (2, 3), 0, 2),
                                                                (2, 5, (3, 2), (2, 1), (1, 2))])
def test_conv_transpose2d_stride_one_widening(in_c, out_c, kernel, padding, dilation):
    # stride 1 and in < out: computed as a conv with the flipped kernel (not col2im)
    x, w = away(2, in_c, 4, 5, seed=1), away(in_c, out_c, *kernel, seed=2)
    b = away(out_c, seed=3)
    y = F.conv_transpose2d(tinygan.tensor(x), tinygan.tensor(w), tinygan.tensor(b), 1, padding,
                           0, dilation)
    p, d = F.conv._pair(padding), F.conv._pair(dilation)
    ref = conv_transpose2d_reference(x, w, b, (1, 1), p, (0, 0), d)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10, atol=1e-12)
    args = (1, padding, 0, dilation)
    assert gradcheck(lambda a, b_, c: F.conv_transpose2d(a, b_, c, *args),
                     [leaf(x[:1]), leaf(w), leaf(b)])
    assert gradgradcheck(lambda a, b_: F.conv_transpose2d(a, b_, None, *args),
                         [leaf(x[:1]), leaf(w)])


@pytest.mark.parametrize("in_c,out_c,kernel,padding,dilation", [(3, 2, (3, 3), 1, 1),
                                                                (4, 1, (2, 3), 0, 2),
                                                                (5, 2, (3, 2), (2, 1), (1, 2)),
                                                                (4, 3, (3, 3), 3, 1)])
def test_conv2d_stride_one_narrowing(in_c, out_c, kernel, padding, dilation, conv_path):
    # stride 1 and out < in: computed as the flipped kernel's transposed conv, and its
    # weight gradient as that conv's (the last pads more than d(k-1): im2col's way)
    x, w, b = away(2, in_c, 6, 7, seed=1), away(out_c, in_c, *kernel, seed=2), away(out_c, seed=3)
    p, d = F.conv._pair(padding), F.conv._pair(dilation)
    assert (F.conv._narrowing(w.shape, (1, 1), p, d) is None) == (padding == 3)
    y = F.conv2d(tinygan.tensor(x), tinygan.tensor(w), tinygan.tensor(b), 1, padding, dilation)
    np.testing.assert_allclose(y.numpy(), conv2d_reference(x, w, b, (1, 1), p, d),
                               rtol=1e-10, atol=1e-12)
    gy = away(*y.shape, seed=4)
    gw = conv2d_weight(tinygan.tensor(x), tinygan.tensor(gy), kernel, 1, padding, dilation)
    ref = np.zeros_like(w)  # <gy, conv2d(x, e)> for each weight element e
    for index in np.ndindex(*w.shape):
        e = np.zeros_like(w)
        e[index] = 1
        ref[index] = (gy * conv2d_reference(x, e, None, (1, 1), p, d)).sum()
    np.testing.assert_allclose(gw.numpy(), ref, rtol=1e-10, atol=1e-12)
    args = (1, padding, dilation)
    assert gradcheck(lambda a, b_, c: F.conv2d(a, b_, c, *args), [leaf(x[:1]), leaf(w), leaf(b)])
    assert gradgradcheck(lambda a, b_: F.conv2d(a, b_, None, *args), [leaf(x[:1]), leaf(w)])
