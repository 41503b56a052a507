"""Conv2d and ConvTranspose2d, with PyTorch's weight layouts and default initialisation."""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from .._tensor import Tensor
from . import init
from .module import Module
from .parameter import Parameter


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


class _ConvNd(Module):
    """What both convolutions share: the settings, the parameters and their initialisation."""

    def __init__(self, weight_shape, in_channels, out_channels, kernel_size, stride, padding,
                 dilation, groups, bias):
        super().__init__()
        if groups != 1:
            raise NotImplementedError(f"{type(self).__name__}: groups={groups} is not "
                                      "supported (only groups=1)")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.dilation, self.groups = _pair(padding), _pair(dilation), groups
        self.weight = Parameter(np.empty(weight_shape + self.kernel_size, dtype=np.float32))
        self.register_parameter(
            "bias", Parameter(np.empty((out_channels,), dtype=np.float32)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """W ~ kaiming_uniform(a=sqrt 5) = U(+-1/sqrt(fan_in)); b ~ U(+-1/sqrt(fan_in)).

        fan_in = weight.shape[1] * kh * kw: in_channels*kh*kw for Conv2d, and, as PyTorch
        computes it from the (in, out, kh, kw) layout, out_channels*kh*kw for ConvTranspose2d.
        """
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if getattr(self, "output_padding", (0, 0)) != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv2d(_ConvNd):
    """y[n, o] = b[o] + sum_c W[o, c] * x[n, c] (cross-correlation); W (out, in, kh, kw)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True):
        super().__init__((out_channels, in_channels), in_channels, out_channels, kernel_size,
                         stride, padding, dilation, groups, bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)


class ConvTranspose2d(_ConvNd):
    """The adjoint of Conv2d in x (H_out = (H-1)s - 2p + d(k-1) + output_padding + 1);
    W (in, out, kh, kw)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1):
        super().__init__((in_channels, out_channels), in_channels, out_channels, kernel_size,
                         stride, padding, dilation, groups, bias)
        self.output_padding = _pair(output_padding)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.dilation)
