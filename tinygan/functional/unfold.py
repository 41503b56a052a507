"""im2col and col2im (PyTorch's unfold and fold): every receptive field of an image as
a row, and its adjoint.

im2col turns every receptive field of x into a row: a strided *view* of the padded
input, copied once into a matrix of shape (N*OH*OW, KH*KW*C). A convolution is then one
GEMM with the weight matrix (O, KH*KW*C). col2im is im2col's adjoint: it adds every row
back onto the pixels it came from (a loop over the KH*KW kernel offsets, never over
pixels). Pooling uses them as they are; the convolutions (conv.py) use them on the GPU,
where one CUDA kernel builds the matrix (kernels/im2col.py), and on the CPU cut the
output into tiles first (conv_tiles.py).

Why channels-last inside: the copy that turns the strided view into rows, and col2im's
additions, walk memory fastest along the last index of a row. If a row is ordered
(C, KH, KW), that last index is kw, which hops `stride` pixels at a time through an NCHW
image, and the copy crawls. Ordered (KH, KW, C) over an image stored as (N, H, W, C), the
last index is the channel, one float after the next, and both loops run at memory speed.
So the padded input is laid out (N, H, W, C), the weight is reordered to (O, KH, KW, C)
(a small copy), and outputs stay (N, H, W, C) in memory while their shape is NCHW: the
public API and PyTorch's weight layouts do not change. NumPy's elementwise ops keep the
memory order of their inputs, so the next BatchNorm or activation stays channels-last too.
"""
from __future__ import annotations

import numpy as np

from .. import backend, kernels, parallel
from .._tensor import Tensor
from ..autograd import Function
from ..kernels import im2col as im2col_kernels


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
    same order. With 2 to 7 channels (RGB) NumPy adds each channel on its own: its
    innermost loop is then along a row of the image, not across a pixel's few channels;
    on one core here 64 32x32 RGB images under a 3x3 kernel took 3.5 ms against 7.7, a
    4x4 kernel at stride 2 1.7 against 3.6 (1 channel and 8 or more did not gain).
    """
    xp = backend.get_array_module(cols)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    n, c, h, w = x_shape
    oh, ow = _output_hw(x_shape, kernel, stride, padding, dilation, "col2im")
    cols = cols.reshape(n, oh, ow, kh, kw, c)
    img = xp.empty((n, h + 2 * ph, w + 2 * pw, c), dtype=cols.dtype)

    by_channel = xp is np and 1 < c < 8  # a GPU add is one launch: no loop is slow there
    channels = [slice(k, k + 1) for k in range(c)] if by_channel else [slice(None)]

    def add(p):
        part = img[p]
        part[...] = 0
        for i in range(kh):  # a loop over kernel offsets; each is one strided add
            top = i * dh
            for j in range(kw):
                left = j * dw
                for k in channels:
                    part[:, top:top + sh * oh:sh, left:left + sw * ow:sw, k] += \
                        cols[p, :, :, i, j, k]
    parallel.for_each(add, img, work=cols.size + img.size)
    return img[:, ph:ph + h, pw:pw + w].transpose(0, 3, 1, 2)


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
