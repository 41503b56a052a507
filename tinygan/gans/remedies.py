"""Remedies for mode collapse, usable with any variant where they apply.

- feature matching (Salimans et al. 2016, sec. 3.1): G matches the mean of D's features
  on real data instead of fooling D's output.
- minibatch discrimination (Salimans et al. 2016, sec. 3.2): D sees how close each
  sample is to the others in its batch, so a collapsed batch is easy to spot.
- packing (PacGAN, Lin et al. 2018): D judges m samples at once, stacked as channels.
- one-sided label smoothing (Salimans et al. 2016, sec. 3.4): real targets 0.9, not 1.
"""
from __future__ import annotations

from .. import functional as F
from .. import nn
from .._tensor import Tensor
from ..creation import full, randn


class MinibatchDiscrimination(nn.Module):
    """o(x_i)_b = sum_j exp(-||M_i,b - M_j,b||_1), M = f(x) T reshaped to (B, C); out [f, o].

    Salimans et al. 2016, eq. in sec. 3.2: T is a learnt tensor of shape (A, B*C).
    """

    def __init__(self, in_features: int, out_features: int = 50, kernel_dims: int = 5):
        super().__init__()
        self.out_features, self.kernel_dims = out_features, kernel_dims
        self.T = nn.Parameter(randn(in_features, out_features * kernel_dims).data * 0.1)

    def forward(self, f: Tensor) -> Tensor:
        n = f.shape[0]
        m = (f @ self.T).reshape(n, 1, self.out_features, self.kernel_dims)     # (N,1,B,C)
        l1 = (m - m.reshape(1, n, self.out_features, self.kernel_dims)).abs().sum(3)  # (N,N,B)
        o = F.exp(-l1).sum(1) - 1.0  # the sum over j != i: exp(0) = 1 is each sample itself
        return F.cat([f, o], 1)


def pack(x: Tensor, m: int) -> Tensor:
    """PacGAN: (N, C, ...) -> (N/m, m*C, ...): m samples judged together."""
    if m == 1:
        return x
    if x.shape[0] % m:
        raise ValueError(f"pack {m}: the batch of {x.shape[0]} is not a multiple of {m}")
    return x.reshape((x.shape[0] // m, m * x.shape[1]) + tuple(x.shape[2:]))


def feature_matching_loss(real_features: Tensor, fake_features: Tensor) -> Tensor:
    """|| E f(x) - E f(G(z)) ||_2^2 over a batch (Salimans et al. 2016, sec. 3.1)."""
    diff = real_features.mean(0) - fake_features.mean(0)
    return (diff * diff).sum()


def real_target(like: Tensor, smoothing: float) -> Tensor:
    """Targets for real samples: 1, or 1 - smoothing for one-sided label smoothing."""
    return full(like.shape, 1.0 - smoothing, dtype=like.dtype, device=like.device)
