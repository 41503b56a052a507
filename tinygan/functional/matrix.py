"""Matrix products: matmul (batched, broadcasting) and linear (x W^T + b)."""
from __future__ import annotations

from .. import parallel
from .._tensor import Tensor
from ..autograd import Function, is_grad_enabled
from .shape import reshape, sum_to, transpose


class MatMul(Function):
    """y = a @ b; da = gy @ b^T, db = a^T @ gy (summed over broadcast batch dims)."""

    def forward(self, a, b):
        if a.ndim < 1 or b.ndim < 1 or a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not "
                             "match (the last dim of the first must equal the second-to-last "
                             "of the second)")
        try:
            return parallel.matmul(a, b)  # split over threads in blocks of rows or columns
        except ValueError:  # batch dims that do not broadcast
            raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not "
                             "match (their batch dims cannot be broadcast together)") from None

    def backward(self, gy):
        a, b = self.inputs
        need_a, need_b = self.needs_input_grad
        ga = gb = None
        if need_a:
            ga = sum_to(matmul(gy, transpose(b, -1, -2)), a.shape)
        if need_b:
            gb = sum_to(matmul(transpose(a, -1, -2), gy), b.shape)
        return ga, gb


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """a @ b for tensors of two or more dims (1-d operands are promoted, as NumPy does)."""
    if a.ndim == 1:  # a row vector, whose added dim is then dropped (a scalar for 1-d @ 1-d)
        shape = b.shape[:-2] + b.shape[-1:] if b.ndim > 1 else ()
        return reshape(matmul(reshape(a, (1, -1)), b), shape)
    if b.ndim == 1:
        return reshape(matmul(a, reshape(b, (-1, 1))), a.shape[:-1])
    return MatMul()(a, b)


def matmuls(*pairs) -> list:
    """[a @ b for a, b in pairs], independent products of matrices (a linear layer's dx
    and dW). With no graph to record (a backward without create_graph) they go to the
    threads side by side, one hand-off for all (parallel.matmuls); while one is
    recorded, each is its own MatMul, so that a product nobody uses stays out of the
    graph (and no gradient reaches through it)."""
    if is_grad_enabled():
        return [matmul(a, b) for a, b in pairs]
    return [Tensor(y) for y in parallel.matmuls(*((a.data, b.data) for a, b in pairs))]


class Linear(Function):
    """y = x W^T + b over the last dim of x; dx = gy W, dW = gy^T x, db = sum gy."""

    def forward(self, x, weight, bias=None):
        if x.shape[-1] != weight.shape[1]:
            raise ValueError(f"linear: input of shape {tuple(x.shape)} does not fit weight of "
                             f"shape {tuple(weight.shape)} (in_features {weight.shape[1]})")
        y = parallel.matmul(x, weight.T)
        if bias is not None:
            y += bias
        return y

    def backward(self, gy):
        x, weight = self.inputs[:2]
        needs = self.needs_input_grad
        gx = gw = gb = None
        gy2, x2 = reshape(gy, (-1, gy.shape[-1])), reshape(x, (-1, x.shape[-1]))
        if needs[0] and needs[1]:  # independent products: side by side on the threads
            gx, gw = matmuls((gy2, weight), (transpose(gy2, 0, 1), x2))
        elif needs[0]:
            gx = matmul(gy2, weight)
        elif needs[1]:
            gw = matmul(transpose(gy2, 0, 1), x2)
        if gx is not None:
            gx = reshape(gx, x.shape)
        if len(self.inputs) == 3 and needs[2]:
            gb = sum_to(gy, self.inputs[2].shape)
        return (gx, gw) if len(self.inputs) == 2 else (gx, gw, gb)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x W^T + b, with W of shape (out_features, in_features) as in PyTorch."""
    return Linear()(x, weight) if bias is None else Linear()(x, weight, bias)

