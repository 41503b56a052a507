"""Convolution as im2col plus one matrix product, and its transpose.

im2col turns every receptive field of x into a row: a strided *view* of the padded
input, copied once into a matrix of shape (N*OH*OW, C*KH*KW). conv2d is then one GEMM
with the weight matrix (O, C*KH*KW). col2im is im2col's adjoint: it adds every row back
onto the pixels it came from (a loop over the KH*KW kernel offsets, never over pixels).

The two are each other's backward, so conv2d = matmul(im2col(x), W^T) and
conv_transpose2d = col2im(x W) get their gradients, and their gradients' gradients (the
gradient penalty goes through them), from the chain rule alone.
`conv2d_simple` is the textbook loop, kept beside the fast one as its reference.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from ..tensor import Function, Tensor
from .matmul import matmul
from .shape import permute, reshape


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def conv_output_size(size, kernel, stride, padding, dilation):
    """floor((size + 2p - d(k-1) - 1) / s) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _im2col_array(x, kernel, stride, padding, dilation, pad_value=0.0):
    """x (N,C,H,W) -> rows (N*OH*OW, C*KH*KW), one row per receptive field."""
    xp = backend.get_array_module(x)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    n, c, h, w = x.shape
    oh = conv_output_size(h, kh, sh, ph, dh)
    ow = conv_output_size(w, kw, sw, pw, dw)
    if oh < 1 or ow < 1:
        raise ValueError(f"im2col: input of spatial size {(h, w)} is too small for kernel "
                         f"{kernel}, stride {stride}, padding {padding}, dilation {dilation}")
    if ph or pw:
        x = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    s0, s1, s2, s3 = x.strides
    view = xp.lib.stride_tricks.as_strided(
        x, shape=(n, oh, ow, c, kh, kw),
        strides=(s0, s2 * sh, s3 * sw, s1, s2 * dh, s3 * dw))
    return view.reshape(n * oh * ow, c * kh * kw), (oh, ow)


def _col2im_array(cols, x_shape, kernel, stride, padding, dilation):
    """The adjoint of im2col: add rows (N*OH*OW, C*KH*KW) back into an (N,C,H,W) image."""
    xp = backend.get_array_module(cols)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    n, c, h, w = x_shape
    oh = conv_output_size(h, kh, sh, ph, dh)
    ow = conv_output_size(w, kw, sw, pw, dw)
    cols = cols.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)  # N,C,KH,KW,OH,OW
    hp, wp = h + 2 * ph, w + 2 * pw
    img = xp.zeros((n, c, hp, wp), dtype=cols.dtype)
    for i in range(kh):  # a loop over kernel offsets; each is one strided add
        top = i * dh
        for j in range(kw):
            left = j * dw
            img[:, :, top:top + sh * oh:sh, left:left + sw * ow:sw] += cols[:, :, i, j]
    return img[:, :, ph:ph + h, pw:pw + w]


class Im2col(Function):
    def __init__(self, kernel, stride, padding, dilation, pad_value=0.0):
        self.args = (kernel, stride, padding, dilation)
        self.pad_value = pad_value

    def forward(self, x):
        self.x_shape = x.shape
        cols, self.out_hw = _im2col_array(x, *self.args, pad_value=self.pad_value)
        return cols

    def backward(self, gcols):
        return col2im(gcols, self.x_shape, *self.args)


class Col2im(Function):
    def __init__(self, x_shape, kernel, stride, padding, dilation):
        self.x_shape = x_shape
        self.args = (kernel, stride, padding, dilation)

    def forward(self, cols):
        return _col2im_array(cols, self.x_shape, *self.args)

    def backward(self, gx):
        return im2col(gx, *self.args)


def im2col(x: Tensor, kernel_size, stride=1, padding=0, dilation=1, pad_value=0.0) -> Tensor:
    """Receptive fields of x (N,C,H,W) as rows: (N*OH*OW, C*KH*KW)."""
    if x.ndim != 4:
        raise ValueError(f"im2col: expected an NCHW input, got shape {tuple(x.shape)}")
    return Im2col(_pair(kernel_size), _pair(stride), _pair(padding), _pair(dilation),
                  pad_value)(x)


def col2im(cols: Tensor, x_shape, kernel_size, stride=1, padding=0, dilation=1) -> Tensor:
    """Sum rows (N*OH*OW, C*KH*KW) back onto an image of shape x_shape."""
    return Col2im(tuple(x_shape), _pair(kernel_size), _pair(stride), _pair(padding),
                  _pair(dilation))(cols)


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1) -> Tensor:
    """2-D cross-correlation; weight (out, in, kh, kw) as PyTorch; x (N, in, H, W)."""
    if x.ndim != 4 or weight.ndim != 4 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"conv2d: input of shape {tuple(x.shape)} does not fit weight of "
                         f"shape {tuple(weight.shape)} (expected input (N, {weight.shape[1]}, "
                         "H, W))")
    out_c, in_c, kh, kw = weight.shape
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    n, _, h, w = x.shape
    oh = conv_output_size(h, kh, stride[0], padding[0], dilation[0])
    ow = conv_output_size(w, kw, stride[1], padding[1], dilation[1])
    cols = im2col(x, (kh, kw), stride, padding, dilation)               # (N*OH*OW, C*KH*KW)
    y = matmul(cols, permute(reshape(weight, (out_c, -1)), (1, 0)))      # (N*OH*OW, O)
    if bias is not None:
        y = y + bias
    return permute(reshape(y, (n, oh, ow, out_c)), (0, 3, 1, 2))


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
    in_c, out_c, kh, kw = weight.shape
    stride, padding = _pair(stride), _pair(padding)
    output_padding, dilation = _pair(output_padding), _pair(dilation)
    if output_padding[0] >= stride[0] or output_padding[1] >= stride[1]:
        raise ValueError(f"conv_transpose2d: output_padding {output_padding} must be "
                         f"smaller than stride {stride}")
    n, _, h, w = x.shape
    oh = conv_transpose_output_size(h, kh, stride[0], padding[0], output_padding[0],
                                    dilation[0])
    ow = conv_transpose_output_size(w, kw, stride[1], padding[1], output_padding[1],
                                    dilation[1])
    rows = reshape(permute(x, (0, 2, 3, 1)), (n * h * w, in_c))          # (N*H*W, in)
    cols = matmul(rows, reshape(weight, (in_c, -1)))                     # (N*H*W, out*KH*KW)
    y = col2im(cols, (n, out_c, oh, ow), (kh, kw), stride, padding, dilation)
    if bias is not None:
        y = y + reshape(bias, (1, -1, 1, 1))
    return y


def conv2d_simple(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                  padding=0) -> Tensor:
    """Textbook convolution, one output pixel at a time (slow; a reference for tests)."""
    from .elementwise import mul
    from .reduce import sum as sum_
    from .shape import getitem, stack
    from .pad import pad
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
