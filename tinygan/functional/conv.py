"""Convolution and its transpose, as matrix products over the im2col matrix.

conv2d is a GEMM of the im2col matrix (every receptive field as a row, unfold.py) with
the weight matrix (O, KH*KW*C); conv_transpose2d, its adjoint in x, is x's pixels times
the weight matrix, added back onto the image by col2im. On the CPU, where a pixel carries
16 or more channels, both cut the output into tiles whose pixels read the image through
the same kernel taps, so that no product is spent on the padding's zeros (conv_tiles.py),
and a transposed conv to 16 channels or more runs as one conv2d per phase of its output,
with no adds (`_by_phases`);
on the GPU one CUDA kernel builds the whole matrix over the padded image.

Conv2d, ConvTranspose2d and Conv2dWeight (the weight's gradient) are Functions of their
own, each one im2col/col2im plus GEMMs. They save only their inputs, never the
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

from .. import parallel
from .._tensor import Tensor
from ..autograd import Function
from . import conv_tiles
from .elementwise import mul
from .unfold import _col2im, _im2col, _output_hw, _pair, _rows, _weight_matrix
from .unfold import col2im, conv_output_size, im2col  # noqa: F401 (their names here stay)
from .reduce import sum as sum_
from .shape import getitem, pad, reshape, stack

_TILES_MIN_CHANNELS = 16


def _tiled(a, channels: int) -> bool:
    """Whether an op on array `a` runs by tiles (conv_tiles.py): on NumPy arrays, where the
    tiles' rows carry at least _TILES_MIN_CHANNELS channels a pixel (the image's in
    im2col, the output's in the transposed conv's adds). With 1 or 3 channels a tile's
    copies and adds are too short to pay for what they skip: measured here, dcgan-mnist's
    first layer (1 channel) took 3.5 ms by im2col and 5.6 by tiles, and the transposed
    convolutions' 81-144 adds against col2im's 16-25 cost more than they saved with 1 or
    3 output channels."""
    return type(a) is np.ndarray and channels >= _TILES_MIN_CHANNELS


def _narrowing(weight_shape, stride, padding, dilation):
    """The padding d(k-1) - p with which a stride-1 conv2d that narrows the channels
    (out < in) is a conv_transpose2d with the kernel flipped, or None where it is not.

    That form moves the narrow side's data: its matrix has KH*KW*out columns against
    im2col's KH*KW*in (G's last layer, 64 channels to 3: 27 against 576; on one core
    here it took its forward from 32 to 12 ms and its weight gradient from 27 to 8).
    ConvTranspose2d makes the mirror choice when it widens."""
    out_c, in_c, kh, kw = weight_shape
    full = tuple(dilation[a] * ((kh, kw)[a] - 1) - padding[a] for a in (0, 1))
    if stride == (1, 1) and out_c < in_c and (kh, kw) != (1, 1) and min(full) >= 0:
        return full
    return None


def _by_phases(x, weight_shape, dilation) -> bool:
    """Whether conv_transpose2d runs as one stride-1 conv2d per phase of its output
    (conv_tiles.conv_transpose2d_by_phases; at stride 1, one conv2d with the kernel
    flipped) rather than as products added onto the output (the scatter).

    The scatter's products have K = x's channels and are thin where x has few; its adds
    grow with the image. The phases' products are out_c columns wide: they want y to
    have _TILES_MIN_CHANNELS channels or more. To 3 channels (a first layer's input
    gradient, G's last layer) phases took 22.9 ms against the scatter's 11.9 from
    64x32x32 at stride 1, 9.7 against 3.8 from 64x16x16 at stride 2; to 1 channel from
    64x14x14 (5x5) 7.6 against 1.8; to 8 channels at stride 2 10.3 against 8.9; to 16
    channels from 16x16 14.6 against 16.7 (one thread, Zen 3).

    Past that, phases on this machine (Zen 4, AVX-512, OpenBLAS's SkylakeX kernel), one
    thread and two: 64 to 64 channels from 16x16 35.4 and 23.4 ms against 54.0 and
    39.9; 128 to 64 from 16x16 74.7 and 45.2 against 89.4 and 60.3; 256 to 128 from 7x7
    (5x5, stride 1) 62.1 and 36.1 against 71.3 and 40.1; from 4x4, 512 to 256 53.1 and
    29.9 against 59.7 and 34.4, 256 to 256 25.8 and 18.5 against 29.7 and 16.7 (the
    scatter ahead on two threads in a few such small ones, by 1-2 ms). sagan-cifar10's
    step took 4% less on one thread and two than with phases only from 7x7 images or
    where x has no more channels than y (the Zen 3 rule), dcgan-cifar10's 5% less on
    two and the same on one."""
    in_c, out_c = weight_shape[:2]
    return _tiled(x, in_c) and dilation == (1, 1) and out_c >= _TILES_MIN_CHANNELS


def _flipped(weight):
    """W (A, B, KH, KW) as (B, A, KH, KW), each kernel turned by 180 degrees."""
    return weight.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]


def _conv2d_array(x, weight, stride, padding, dilation, bias=None):
    """conv2d on arrays, NCHW-shaped over channels-last memory: on NumPy arrays by tiles
    that skip the padding's zeros (conv_tiles.py), or as the flipped transposed conv
    when that is narrower (`_narrowing`); else im2col plus one GEMM."""
    full = _narrowing(weight.shape, stride, padding, dilation)
    if type(x) is np.ndarray and full is not None:
        out_hw = _output_hw(x.shape, weight.shape[2:], stride, padding, dilation, "conv2d")
        y = _conv_transpose2d_array(x, _flipped(weight), stride, full, dilation, out_hw)
        if bias is not None:
            y += bias.reshape(1, -1, 1, 1)
        return y
    if _tiled(x, x.shape[1]):
        out_hw = _output_hw(x.shape, weight.shape[2:], stride, padding, dilation, "conv2d")
        y = conv_tiles.conv2d(x, weight, out_hw, stride, padding, dilation)
        if bias is not None:
            y += bias
        return y.transpose(0, 3, 1, 2)
    cols, out_hw = _im2col(x, weight.shape[2:], stride, padding, dilation)
    return _conv2d_from_cols(cols, out_hw, x.shape[0], weight, bias)


def _conv2d_weight_array(x, gy, kernel, stride, padding, dilation):
    """conv2d's weight gradient on arrays, (O, C, KH, KW): by tiles on NumPy arrays, or
    that of the flipped transposed conv when it is narrower (`_narrowing`), turned."""
    full = _narrowing((gy.shape[1], x.shape[1], *kernel), stride, padding, dilation)
    if type(x) is np.ndarray and full is not None:
        flipped = _conv2d_weight_array(gy, x, kernel, stride, full, dilation)  # (C, O, ..)
        return np.ascontiguousarray(_flipped(flipped))
    if _tiled(x, x.shape[1]):
        gw = conv_tiles.conv2d_weight(x, gy, kernel, stride, padding, dilation)
        return parallel.ascontiguousarray(gw.transpose(0, 3, 1, 2))
    cols, _ = _im2col(x, kernel, stride, padding, dilation)
    return _conv2d_weight_from_cols(cols, gy, kernel, x.shape[1])


def _conv2d_and_weight_array(x, weight, g, stride, padding, dilation):
    """(conv2d(x, W), conv2d_weight(x, g)) on arrays from one im2col of x (per tile on
    NumPy arrays): conv_transpose2d's two gradients, with x its output's gradient."""
    if _tiled(x, x.shape[1]):
        return conv_tiles.conv2d_and_weight(x, weight, g, stride, padding, dilation)
    kernel = weight.shape[2:]
    cols, out_hw = _im2col(x, kernel, stride, padding, dilation)
    return (_conv2d_from_cols(cols, out_hw, x.shape[0], weight),
            _conv2d_weight_from_cols(cols, g, kernel, x.shape[1]))


def _conv_transpose2d_array(x, weight, stride, padding, dilation, out_hw):
    """conv_transpose2d on arrays, NCHW-shaped over channels-last memory: on NumPy
    arrays one conv2d per phase of the output where that pays (`_by_phases`), or by
    tiles with enough output channels (`_tiled`); else one GEMM and col2im."""
    out_c = weight.shape[1]
    if _by_phases(x, weight.shape, dilation):
        y = conv_tiles.conv_transpose2d_by_phases(x, weight, out_hw, stride, padding)
        return y.transpose(0, 3, 1, 2)
    if _tiled(x, out_c):
        y = conv_tiles.conv_transpose2d(x, weight, out_hw, stride, padding, dilation)
        return y.transpose(0, 3, 1, 2)
    cols = parallel.matmul(_rows(x), _weight_matrix(weight))  # (N*H*W, KH*KW*out)
    return _col2im(cols, (x.shape[0], out_c) + out_hw, weight.shape[2:], stride, padding,
                   dilation)


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
        return _conv2d_array(x, weight, self.stride, self.padding, self.dilation, bias)

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
        in_c, out_c = weight.shape[:2]
        kernel = weight.shape[2:]
        full = tuple(self.dilation[a] * (kernel[a] - 1) - self.padding[a] for a in (0, 1))
        if self.stride == (1, 1) and in_c < out_c and min(full) >= 0:
            # At stride 1 the transposed conv is also a plain conv of x with the kernel
            # flipped and its in/out swapped, padded by d(k-1) - p. Its im2col matrix has
            # KH*KW*in columns against col2im's KH*KW*out: the smaller when in < out (a
            # conv's input gradient when the conv narrows the channels, as G's last layer)
            y = _conv2d_array(x, _flipped(weight), (1, 1), full, self.dilation)
        else:
            y = _conv_transpose2d_array(x, weight, self.stride, self.padding, self.dilation,
                                        self.out_hw)
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
        return _conv2d_and_weight_array(gy, weight, x, self.stride, self.padding,
                                        self.dilation)

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
        return _conv2d_weight_array(x, gy, self.kernel, self.stride, self.padding,
                                    self.dilation)

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
