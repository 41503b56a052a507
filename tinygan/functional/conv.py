"""Convolution as im2col plus one matrix product, and its transpose.

im2col turns every receptive field of x into a row: a strided *view* of the padded
input, copied once into a matrix of shape (N*OH*OW, KH*KW*C). conv2d is then one GEMM
with the weight matrix (O, KH*KW*C). col2im is im2col's adjoint: it adds every row back
onto the pixels it came from (a loop over the KH*KW kernel offsets, never over pixels).

Why channels-last inside: the copy that turns the strided view into rows, and col2im's
additions, walk memory fastest along the last index of a row. If a row is ordered
(C, KH, KW), that last index is kw, which hops `stride` pixels at a time through an NCHW
image, and the copy crawls. Ordered (KH, KW, C) over an image stored as (N, H, W, C), the
last index is the channel, one float after the next, and both loops run at memory speed.
So the padded input is laid out (N, H, W, C), the weight is reordered to (O, KH, KW, C)
(a small copy), and outputs stay (N, H, W, C) in memory while their shape is NCHW: the
public API and PyTorch's weight layouts do not change. NumPy's elementwise ops keep the
memory order of their inputs, so the next BatchNorm or activation stays channels-last too.

Conv2d, ConvTranspose2d and Conv2dWeight (the weight's gradient) are Functions of their
own, each one im2col/col2im plus one GEMM. They save only their inputs, never the
im2col matrix (KH*KW/stride^2 times bigger than x, 6x for a 5x5 stride-2 conv): the
backward builds it again. Their backwards are the other two ops, which are
differentiable, so gradients of gradients (the gradient penalty) go through them:

    conv2d(x, W)            d/dx: conv_transpose2d(gy, W)    d/dW: conv2d_weight(x, gy)
    conv_transpose2d(x, W)  d/dx: conv2d(gy, W)              d/dW: conv2d_weight(gy, x)
    conv2d_weight(x, gy)    d/dx: conv_transpose2d(gy, ggW)  d/dgy: conv2d(x, ggW)

conv_transpose2d's two gradients both start from im2col(gy), so when both are wanted one
Function, ConvTranspose2dGrad, builds it once and computes both; its own backward is the
sum of the table's rows for conv2d and conv2d_weight.

`conv2d_simple` is the textbook loop, kept beside the fast one as its reference.
"""
from __future__ import annotations

import numpy as np

from .. import backend, kernels, parallel
from ..kernels import im2col as im2col_kernels
from .._tensor import Tensor
from ..autograd import Function
from .elementwise import mul
from .reduce import sum as sum_
from .shape import getitem, pad, reshape, stack


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return (int(v), int(v))
    return (int(v[0]), int(v[1]))


def conv_output_size(size, kernel, stride, padding, dilation):
    """floor((size + 2p - d(k-1) - 1) / s) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _output_hw(x_shape, kernel, stride, padding, dilation, name="im2col"):
    h, w = x_shape[2:]
    oh = conv_output_size(h, kernel[0], stride[0], padding[0], dilation[0])
    ow = conv_output_size(w, kernel[1], stride[1], padding[1], dilation[1])
    if oh < 1 or ow < 1:
        raise ValueError(f"{name}: input of spatial size {(h, w)} is too small for kernel "
                         f"{kernel}, stride {stride}, padding {padding}, dilation {dilation}")
    return oh, ow


def _channels_last_padded(x, padding, pad_value):
    """x (N,C,H,W) as an (N, H+2ph, W+2pw, C) array, the border filled with pad_value.

    A view when there is no padding and x is already channels-last in memory; otherwise
    one copy (cheap next to im2col's, which is KH*KW/stride^2 times bigger).
    """
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    ph, pw = padding
    x_last = x.transpose(0, 2, 3, 1)
    if not ph and not pw and x_last.flags.c_contiguous:
        return x_last
    out = xp.empty((n, h + 2 * ph, w + 2 * pw, c), dtype=x.dtype)

    def fill(p):  # the border gets pad_value, the inside x: each element written once
        if ph or pw:
            out[p, :ph] = pad_value
            out[p, ph + h:] = pad_value
            out[p, ph:ph + h, :pw] = pad_value
            out[p, ph:ph + h, pw + w:] = pad_value
        out[p, ph:ph + h, pw:pw + w] = x_last[p]
    parallel.for_each(fill, out)
    return out


def _im2col_array(x, kernel, stride, padding, dilation, pad_value=0.0):
    """x (N,C,H,W) -> rows (N*OH*OW, KH*KW*C), one row per receptive field.

    The rows are a strided view of the padded image, copied once (split over threads by
    images); a 1x1 kernel at stride 1 needs no copy: its rows are the pixels.
    """
    xp = backend.get_array_module(x)
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    oh, ow = _output_hw(x.shape, kernel, stride, padding, dilation)
    n, c = x.shape[:2]
    x = _channels_last_padded(x, padding, pad_value)
    if (kh, kw, sh, sw) == (1, 1, 1, 1):
        return x.reshape(n * oh * ow, c), (oh, ow)
    s0, s1, s2, s3 = x.strides  # (N, H, W, C)
    view = xp.lib.stride_tricks.as_strided(
        x, shape=(n, oh, ow, kh, kw, c),
        strides=(s0, s1 * sh, s2 * sw, s1 * dh, s2 * dw, s3))
    return parallel.ascontiguousarray(view).reshape(n * oh * ow, kh * kw * c), (oh, ow)


def _col2im_array(cols, x_shape, kernel, stride, padding, dilation):
    """The adjoint of im2col: add rows (N*OH*OW, KH*KW*C) back into an (N,C,H,W) image.

    The image is accumulated channels-last and returned as an NCHW-shaped view of it.
    Images are independent, so threads take ranges of them, each pixel's sum in the
    same order.
    """
    xp = backend.get_array_module(cols)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    n, c, h, w = x_shape
    oh, ow = _output_hw(x_shape, kernel, stride, padding, dilation, "col2im")
    cols = cols.reshape(n, oh, ow, kh, kw, c)
    img = xp.empty((n, h + 2 * ph, w + 2 * pw, c), dtype=cols.dtype)

    def add(p):
        part = img[p]
        part[...] = 0
        for i in range(kh):  # a loop over kernel offsets; each is one strided add
            top = i * dh
            for j in range(kw):
                left = j * dw
                part[:, top:top + sh * oh:sh, left:left + sw * ow:sw] += cols[p, :, :, i, j]
    parallel.for_each(add, img, work=cols.size + img.size)
    return img[:, ph:ph + h, pw:pw + w].transpose(0, 3, 1, 2)


def _conv2d_from_cols(cols, out_hw, n, weight, bias=None):
    """y = cols W^T (+ b), one GEMM, returned NCHW-shaped over channels-last memory."""
    y = parallel.matmul(cols, _weight_matrix(weight).T)         # (N*OH*OW, O)
    if bias is not None:
        y += bias
    return y.reshape(n, *out_hw, weight.shape[0]).transpose(0, 3, 1, 2)


def _conv2d_weight_from_cols(cols, gy, kernel, in_c):
    """dW = rows(gy)^T cols, one GEMM, reordered from (O, KH, KW, C) to (O, C, KH, KW)."""
    out_c = gy.shape[1]
    gw = parallel.matmul(_rows(gy).T, cols)                      # (O, KH*KW*C)
    gw = gw.reshape(out_c, *kernel, in_c).transpose(0, 3, 1, 2)
    return parallel.ascontiguousarray(gw)


def _im2col(x, kernel, stride, padding, dilation, pad_value=0.0):
    """im2col on arrays: one CUDA kernel on the GPU (see kernels/im2col.py), else the view."""
    if kernels.enabled(x):
        out_hw = _output_hw(x.shape, kernel, stride, padding, dilation)
        return im2col_kernels.im2col(x, kernel, stride, padding, dilation, out_hw,
                                     pad_value), out_hw
    return _im2col_array(x, kernel, stride, padding, dilation, pad_value)


def _col2im(cols, x_shape, kernel, stride, padding, dilation):
    if kernels.enabled(cols):
        out_hw = _output_hw(x_shape, kernel, stride, padding, dilation, "col2im")
        return im2col_kernels.col2im(cols, x_shape, kernel, stride, padding, dilation, out_hw)
    return _col2im_array(cols, x_shape, kernel, stride, padding, dilation)


def _rows(y):
    """(N,C,H,W) -> (N*H*W, C): free when y is channels-last in memory, a copy otherwise."""
    n, c, h, w = y.shape
    return parallel.ascontiguousarray(y.transpose(0, 2, 3, 1)).reshape(n * h * w, c)


def _weight_matrix(weight):
    """(A, B, KH, KW) -> (A, KH*KW*B): the kernel taps in im2col's (KH, KW, C) order."""
    return weight.transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)


class Im2col(Function):
    def __init__(self, kernel, stride, padding, dilation, pad_value=0.0):
        self.args = (kernel, stride, padding, dilation)
        self.pad_value = pad_value

    def forward(self, x):
        self.x_shape = x.shape
        cols, self.out_hw = _im2col(x, *self.args, pad_value=self.pad_value)
        return cols

    def backward(self, gcols):
        return col2im(gcols, self.x_shape, *self.args)


class Col2im(Function):
    def __init__(self, x_shape, kernel, stride, padding, dilation):
        self.x_shape = x_shape
        self.args = (kernel, stride, padding, dilation)

    def forward(self, cols):
        return _col2im(cols, self.x_shape, *self.args)

    def backward(self, gx):
        return im2col(gx, *self.args)


def im2col(x: Tensor, kernel_size, stride=1, padding=0, dilation=1, pad_value=0.0) -> Tensor:
    """Receptive fields of x (N,C,H,W) as rows: (N*OH*OW, KH*KW*C)."""
    if x.ndim != 4:
        raise ValueError(f"im2col: expected an NCHW input, got shape {tuple(x.shape)}")
    return Im2col(_pair(kernel_size), _pair(stride), _pair(padding), _pair(dilation),
                  pad_value)(x)


def col2im(cols: Tensor, x_shape, kernel_size, stride=1, padding=0, dilation=1) -> Tensor:
    """Sum rows (N*OH*OW, KH*KW*C) back onto an image of shape x_shape."""
    return Col2im(tuple(x_shape), _pair(kernel_size), _pair(stride), _pair(padding),
                  _pair(dilation))(cols)


def _output_padding_to_fit(x_shape, kernel, stride, padding, dilation):
    """The output_padding with which conv_transpose2d gives back a conv2d input of shape
    x_shape (N, C, H, W): the rows and columns that conv2d's floor division dropped.

    Several sizes map to one conv2d output size when stride > 1; this picks x_shape's.
    """
    return tuple((x_shape[2 + a] + 2 * padding[a] - dilation[a] * (kernel[a] - 1) - 1)
                 % stride[a] for a in (0, 1))


class Conv2d(Function):
    """y = im2col(x) W^T (+ b); dx = conv_transpose2d(gy, W), dW = conv2d_weight(x, gy)."""

    def __init__(self, stride, padding, dilation):
        self.stride, self.padding, self.dilation = stride, padding, dilation

    def forward(self, x, weight, bias=None):
        cols, out_hw = _im2col(x, weight.shape[2:], self.stride, self.padding, self.dilation)
        return _conv2d_from_cols(cols, out_hw, x.shape[0], weight, bias)

    def backward(self, gy):
        x, weight = self.inputs[:2]
        needs = self.needs_input_grad
        gx = gw = gb = None
        if needs[0]:
            fit = _output_padding_to_fit(x.shape, weight.shape[2:], self.stride,
                                         self.padding, self.dilation)
            gx = conv_transpose2d(gy, weight, None, self.stride, self.padding, fit,
                                  self.dilation)
        if needs[1]:
            gw = conv2d_weight(x, gy, weight.shape[2:], self.stride, self.padding,
                               self.dilation)
        if len(self.inputs) == 3 and needs[2]:
            gb = sum_(gy, (0, 2, 3))
        return (gx, gw) if len(self.inputs) == 2 else (gx, gw, gb)


class ConvTranspose2d(Function):
    """y = col2im(rows(x) W) (+ b); dx = conv2d(gy, W), dW = conv2d_weight(gy, x)."""

    def __init__(self, stride, padding, dilation, out_hw):
        self.stride, self.padding, self.dilation, self.out_hw = stride, padding, dilation, out_hw

    def forward(self, x, weight, bias=None):
        n, in_c = x.shape[:2]
        out_c = weight.shape[1]
        kernel = weight.shape[2:]
        full = tuple(self.dilation[a] * (kernel[a] - 1) - self.padding[a] for a in (0, 1))
        if self.stride == (1, 1) and in_c < out_c and min(full) >= 0:
            # At stride 1 the transposed conv is also a plain conv of x with the kernel
            # flipped and its in/out swapped, padded by d(k-1) - p. Its im2col matrix has
            # KH*KW*in columns against col2im's KH*KW*out: the smaller when in < out (a
            # conv's input gradient when the conv narrows the channels, as G's last layer)
            flipped = weight.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]
            cols, out_hw = _im2col(x, kernel, (1, 1), full, self.dilation)
            y = _conv2d_from_cols(cols, out_hw, n, flipped)
        else:
            cols = parallel.matmul(_rows(x), _weight_matrix(weight))  # (N*H*W, KH*KW*out)
            y = _col2im(cols, (n, out_c) + self.out_hw, kernel, self.stride, self.padding,
                        self.dilation)
        if bias is not None:
            y += bias.reshape(1, -1, 1, 1)
        return y

    def backward(self, gy):
        x, weight = self.inputs[:2]
        needs = self.needs_input_grad
        gx = gw = gb = None
        if needs[0] and needs[1]:  # both start from im2col(gy): one op builds it once
            gx, gw = ConvTranspose2dGrad(self.stride, self.padding, self.dilation)(
                gy, x, weight)
        elif needs[0]:
            gx = conv2d(gy, weight, None, self.stride, self.padding, self.dilation)
        elif needs[1]:
            gw = conv2d_weight(gy, x, weight.shape[2:], self.stride, self.padding,
                               self.dilation)
        if len(self.inputs) == 3 and needs[2]:
            gb = sum_(gy, (0, 2, 3))
        return (gx, gw) if len(self.inputs) == 2 else (gx, gw, gb)


class ConvTranspose2dGrad(Function):
    """(dx, dW) of conv_transpose2d, (conv2d(gy, W), conv2d_weight(gy, x)), from one im2col(gy).

    Its derivatives are those of the two ops (the table above), given (ggx, ggW):
    d/dgy = conv_transpose2d(ggx, W) + conv_transpose2d(x, ggW), d/dx = conv2d(gy, ggW),
    d/dW = conv2d_weight(gy, ggx).
    """

    def __init__(self, stride, padding, dilation):
        self.stride, self.padding, self.dilation = stride, padding, dilation

    def forward(self, gy, x, weight):
        kernel = weight.shape[2:]
        cols, out_hw = _im2col(gy, kernel, self.stride, self.padding, self.dilation)
        gx = _conv2d_from_cols(cols, out_hw, gy.shape[0], weight)
        gw = _conv2d_weight_from_cols(cols, x, kernel, gy.shape[1])
        return gx, gw

    def backward(self, ggx, ggw):
        gy, x, weight = self.inputs
        s, p, d = self.stride, self.padding, self.dilation
        needs = self.needs_input_grad
        g_gy = g_x = g_w = None
        if needs[0]:
            fit = _output_padding_to_fit(gy.shape, weight.shape[2:], s, p, d)
            g_gy = (conv_transpose2d(ggx, weight, None, s, p, fit, d)
                    + conv_transpose2d(x, ggw, None, s, p, fit, d))
        if needs[1]:
            g_x = conv2d(gy, ggw, None, s, p, d)
        if needs[2]:
            g_w = conv2d_weight(gy, ggx, weight.shape[2:], s, p, d)
        return g_gy, g_x, g_w


class Conv2dWeight(Function):
    """dW = rows(gy)^T im2col(x), the weight gradient of conv2d, shaped (O, C, KH, KW).

    It is linear in each input: d/dx <ggW, dW> = conv_transpose2d(gy, ggW) and
    d/dgy <ggW, dW> = conv2d(x, ggW).
    """

    def __init__(self, kernel, stride, padding, dilation):
        self.kernel, self.stride, self.padding, self.dilation = kernel, stride, padding, dilation

    def forward(self, x, gy):
        cols, _ = _im2col(x, self.kernel, self.stride, self.padding, self.dilation)
        return _conv2d_weight_from_cols(cols, gy, self.kernel, x.shape[1])

    def backward(self, ggw):
        x, gy = self.inputs
        needs = self.needs_input_grad
        gx = ggy = None
        if needs[0]:
            fit = _output_padding_to_fit(x.shape, self.kernel, self.stride, self.padding,
                                         self.dilation)
            gx = conv_transpose2d(gy, ggw, None, self.stride, self.padding, fit, self.dilation)
        if needs[1]:
            ggy = conv2d(x, ggw, None, self.stride, self.padding, self.dilation)
        return gx, ggy


def conv2d_weight(x: Tensor, grad_output: Tensor, kernel_size, stride=1, padding=0,
                  dilation=1) -> Tensor:
    """The gradient of conv2d(x, W) in W, given the gradient of its output."""
    return Conv2dWeight(_pair(kernel_size), _pair(stride), _pair(padding),
                        _pair(dilation))(x, grad_output)


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1) -> Tensor:
    """2-D cross-correlation; weight (out, in, kh, kw) as PyTorch; x (N, in, H, W)."""
    if x.ndim != 4 or weight.ndim != 4 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"conv2d: input of shape {tuple(x.shape)} does not fit weight of "
                         f"shape {tuple(weight.shape)} (expected input (N, {weight.shape[1]}, "
                         "H, W))")
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return Conv2d(stride, padding, dilation)(*inputs)


def conv_transpose_output_size(size, kernel, stride, padding, output_padding, dilation):
    """(size - 1) s - 2p + d(k-1) + output_padding + 1."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def conv_transpose2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, dilation=1) -> Tensor:
    """The adjoint of conv2d in x; weight (in, out, kh, kw) as PyTorch."""
    if x.ndim != 4 or weight.ndim != 4 or x.shape[1] != weight.shape[0]:
        raise ValueError(f"conv_transpose2d: input of shape {tuple(x.shape)} does not fit "
                         f"weight of shape {tuple(weight.shape)} (expected input "
                         f"(N, {weight.shape[0]}, H, W))")
    _, _, kh, kw = weight.shape
    stride, padding = _pair(stride), _pair(padding)
    output_padding, dilation = _pair(output_padding), _pair(dilation)
    if output_padding[0] >= stride[0] or output_padding[1] >= stride[1]:
        raise ValueError(f"conv_transpose2d: output_padding {output_padding} must be "
                         f"smaller than stride {stride}")
    _, _, h, w = x.shape
    oh = conv_transpose_output_size(h, kh, stride[0], padding[0], output_padding[0],
                                    dilation[0])
    ow = conv_transpose_output_size(w, kw, stride[1], padding[1], output_padding[1],
                                    dilation[1])
    if oh < 1 or ow < 1:
        raise ValueError(f"conv_transpose2d: output size {(oh, ow)} is empty for input "
                         f"{(h, w)}, kernel {(kh, kw)}, stride {stride}, padding {padding}")
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return ConvTranspose2d(stride, padding, dilation, (oh, ow))(*inputs)


def conv2d_simple(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                  padding=0) -> Tensor:
    """Textbook convolution, one output pixel at a time (slow; a reference for tests)."""
    out_c, in_c, kh, kw = weight.shape
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    x = pad(x, (pw, pw, ph, ph))
    n, _, h, w = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    w4 = reshape(weight, (1, out_c, in_c, kh, kw))
    rows = []
    for i in range(oh):
        cols = []
        for j in range(ow):
            patch = getitem(x, (slice(None), None, slice(None), slice(i * sh, i * sh + kh),
                                slice(j * sw, j * sw + kw)))            # (N,1,C,KH,KW)
            cols.append(sum_(mul(patch, w4), (2, 3, 4)))                # (N,O)
        rows.append(stack(cols, -1))
    y = stack(rows, -2)
    if bias is not None:
        y = y + reshape(bias, (1, -1, 1, 1))
    return y
