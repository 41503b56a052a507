"""Pooling and resampling: avg_pool2d, max_pool2d, interpolate (nearest).

Pooling reuses im2col: each channel's receptive fields become rows, and the pool is a
mean or a max over a row. Their gradients come from im2col's adjoint, col2im.
"""
from __future__ import annotations

from .._tensor import Tensor
from .unfold import _pair, conv_output_size, im2col
from .reduce import amax, mean
from .shape import broadcast_to, reshape


def _pool(x: Tensor, kernel_size, stride, padding, dilation, reduce, pad_value):
    if x.ndim != 4:
        raise ValueError(f"pool2d: expected an NCHW input, got shape {tuple(x.shape)}")
    kernel = _pair(kernel_size)
    stride = kernel if stride is None else _pair(stride)
    padding, dilation = _pair(padding), _pair(dilation)
    if padding[0] * 2 > kernel[0] or padding[1] * 2 > kernel[1]:
        raise ValueError(f"pool2d: padding {padding} must be at most half the kernel {kernel}")
    n, c, h, w = x.shape
    oh = conv_output_size(h, kernel[0], stride[0], padding[0], dilation[0])
    ow = conv_output_size(w, kernel[1], stride[1], padding[1], dilation[1])
    rows = im2col(reshape(x, (n * c, 1, h, w)), kernel, stride, padding, dilation,
                  pad_value=pad_value)                                  # (N*C*OH*OW, KH*KW)
    return reshape(reduce(rows, 1), (n, c, oh, ow))


def avg_pool2d(x: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    """Mean over each window (zero padding counted, as PyTorch's count_include_pad)."""
    return _pool(x, kernel_size, stride, padding, 1, mean, 0.0)


def max_pool2d(x: Tensor, kernel_size, stride=None, padding=0, dilation=1) -> Tensor:
    """Max over each window; padding never wins (it is -inf)."""
    return _pool(x, kernel_size, stride, padding, dilation, amax, float("-inf"))


def interpolate(x: Tensor, size=None, scale_factor=None, mode: str = "nearest") -> Tensor:
    """Nearest-neighbour upsampling of NCHW by an integer factor (each pixel repeated)."""
    if mode != "nearest":
        raise ValueError(f"interpolate: mode {mode!r} is not supported; use 'nearest'")
    n, c, h, w = x.shape
    if size is not None:
        oh, ow = _pair(size)
        if oh % h or ow % w:
            raise ValueError(f"interpolate: size {(oh, ow)} must be a multiple of {(h, w)}")
        fh, fw = oh // h, ow // w
    else:
        fh, fw = _pair(scale_factor)
    y = broadcast_to(reshape(x, (n, c, h, 1, w, 1)), (n, c, h, fh, w, fw))
    return reshape(y, (n, c, h * fh, w * fw))

