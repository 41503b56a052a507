"""SAGAN's self-attention block (Zhang et al. 2019, "Self-Attention GANs", section 3)."""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .._tensor import Tensor
from .conv import Conv2d
from .module import Module
from .parameter import Parameter


class SelfAttention(Module):
    """y = x + gamma * o, o_j = sum_i beta[i, j] h(x_i), beta[:, j] = softmax_i(f(x_i)^T g(x_j)).

    Indexing, with x of shape (B, C, H, W) and its N = H*W positions flattened row-major:
      f(x), g(x) = 1x1 convs C -> C//8, viewed as (B, C//8, N); h(x) = 1x1 conv C -> C,
      viewed as (B, C, N);
      s[b, i, j] = sum_k f(x)[b, k, i] g(x)[b, k, j], i.e. s = f(x)^T g(x), shape (B, N, N);
      beta = softmax of s over i (dim 1): beta[b, :, j] sums to 1 and says how much output
      position j attends to each input position i (the paper's beta_{j,i});
      o = h(x) beta, o[b, c, j] = sum_i h(x)[b, c, i] beta[b, i, j], reshaped to (B, C, H, W).
    gamma is a learnt scalar initialised to 0, so the block starts as the identity and
    learns to lean on non-local evidence (paper, eq. 3).
    """

    def __init__(self, in_channels: int):
        super().__init__()
        inner = max(in_channels // 8, 1)
        self.in_channels = in_channels
        self.f = Conv2d(in_channels, inner, 1)
        self.g = Conv2d(in_channels, inner, 1)
        self.h = Conv2d(in_channels, in_channels, 1)
        self.gamma = Parameter(np.zeros(1, dtype=np.float32))

    def attention(self, x: Tensor) -> Tensor:
        """beta (B, N, N): beta[b, i, j] = weight of input position i in output position j."""
        b, _, height, width = x.shape
        n = height * width
        f = F.reshape(self.f(x), (b, -1, n))
        g = F.reshape(self.g(x), (b, -1, n))
        s = F.matmul(F.transpose(f, 1, 2), g)          # (B, N, N), s[b, i, j] = f_i . g_j
        return F.softmax(s, dim=1)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"SelfAttention({self.in_channels}): expected input (B, "
                             f"{self.in_channels}, H, W), got shape {tuple(x.shape)}")
        b, c, height, width = x.shape
        beta = self.attention(x)
        h = F.reshape(self.h(x), (b, c, height * width))
        o = F.reshape(F.matmul(h, beta), (b, c, height, width))
        return x + self.gamma * o

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}"
