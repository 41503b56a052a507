"""Batch normalisation (Ioffe & Szegedy 2015), training and eval."""
from __future__ import annotations

from .. import backend, kernels
from ..kernels import batchnorm as batchnorm_kernels
from ..kernels.reduce import sum_axes
from .._tensor import Tensor
from ..autograd import Function, is_grad_enabled
from .reduce import mean, sum
from .shape import reshape


def _stat_axes(x):
    return (0,) + tuple(range(2, x.ndim))  # every dim but the channels (dim 1)


def _channel_shape(x):
    return (1, -1) + (1,) * (x.ndim - 2)


class BatchNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * w + b, per channel.

    Training: batch statistics; dx = (w/sigma) (gy - mean(gy) - xhat mean(gy xhat)).
    Eval: the running statistics are constants; dx = w gy / sigma.
    """

    def __init__(self, mean, var, training, eps):
        self.mean, self.var, self.training, self.eps = mean, var, training, eps

    def forward(self, x, weight=None, bias=None):
        xp = backend.get_array_module(x)
        shape = _channel_shape(x)
        inv_std = 1.0 / xp.sqrt(self.var + x.dtype.type(self.eps))
        self.inv_std = inv_std.reshape(shape).astype(x.dtype, copy=False)
        self.centre = self.mean.reshape(shape).astype(x.dtype)  # a copy: running stats move
        self.xhat = None
        if weight is not None and bias is not None and kernels.enabled(x, weight, bias):
            self.xhat, y = batchnorm_kernels.normalize(
                x, self.centre, self.inv_std, weight.reshape(shape), bias.reshape(shape))
            return y
        # y = x * scale + shift with per-channel scale = w / sigma, shift = b - mean scale:
        # two passes over x, and xhat is not kept (backward rebuilds it from x, which the
        # graph holds anyway): one activation-sized array less per BatchNorm
        scale = self.inv_std if weight is None else self.inv_std * weight.reshape(shape)
        shift = -self.centre * scale
        if bias is not None:
            shift = shift + bias.reshape(shape)
        y = x * scale
        y += shift
        return y

    def backward(self, gy):
        x = self.inputs[0]
        axes = _stat_axes(x)
        shape = _channel_shape(x)
        has_w = len(self.inputs) > 1 and self.inputs[1] is not None
        if not is_grad_enabled():
            return self._backward_arrays(gy.data, x.data, axes, shape, has_w)
        if self.training:
            # create_graph: rebuild the statistics from x inside the graph, so that the
            # second derivative sees how they depend on x
            mu = mean(x, axes, keepdim=True)
            xc = x - mu
            inv_std = (mean(xc * xc, axes, keepdim=True) + self.eps) ** -0.5
            xhat = xc * inv_std
        else:
            # eval, create_graph: the statistics are constants, but xhat (in dw) depends on x
            inv_std = Tensor(self.inv_std)
            xhat = (x - Tensor(self.centre)) * inv_std
        gxhat = gy * reshape(self.inputs[1], shape) if has_w else gy
        if self.training:
            gx = inv_std * (gxhat - mean(gxhat, axes, keepdim=True)
                            - xhat * mean(gxhat * xhat, axes, keepdim=True))
        else:
            gx = gxhat * inv_std
        grads = [gx]
        if has_w:
            grads.append(sum(gy * xhat, axes) if self.needs_input_grad[1] else None)
        if len(self.inputs) > 2:
            grads.append(sum(gy, axes) if self.needs_input_grad[2] else None)
        return tuple(grads)

    def _backward_arrays(self, gy, x, axes, shape, has_w):
        """The same formulas on arrays, when no graph is recorded: fewer passes, no graph."""
        xhat = self.xhat
        if xhat is None:
            xhat = x - self.centre
            xhat *= self.inv_std
        count = x.size // x.shape[1]
        sum_gy = sum_axes(gy, axes, keepdims=True)
        sum_gy_xhat = sum_axes(gy * xhat, axes, keepdims=True)
        w = self.inputs[1].data.reshape(shape) if has_w else self.inv_std.dtype.type(1)
        if self.training:
            mean_gy, mean_gy_xhat = sum_gy / count, sum_gy_xhat / count
            if kernels.enabled(gy, xhat) and has_w:
                gx = batchnorm_kernels.input_grad(gy, xhat, self.inv_std, w, mean_gy,
                                                  mean_gy_xhat)
            else:
                gx = batchnorm_kernels.input_grad_generic(gy, xhat, self.inv_std, w, mean_gy,
                                                          mean_gy_xhat)
        else:
            gx = gy * (self.inv_std * w)
        grads = [Tensor(gx)]
        if has_w:
            grads.append(Tensor(sum_gy_xhat.reshape(-1)) if self.needs_input_grad[1] else None)
        if len(self.inputs) > 2:
            grads.append(Tensor(sum_gy.reshape(-1)) if self.needs_input_grad[2] else None)
        return tuple(grads)


def _array(t):
    return t.data if isinstance(t, Tensor) else t


def batch_norm(x: Tensor, running_mean, running_var, weight=None, bias=None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """As torch.nn.functional.batch_norm; running statistics are updated in place.

    The running variance is updated with the unbiased batch variance (n / (n - 1)),
    as PyTorch does; normalisation uses the biased one.
    """
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected (N, C, ...) input, got shape {tuple(x.shape)}")
    rm, rv = _array(running_mean), _array(running_var)
    if training:
        axes = _stat_axes(x)
        n = x.data.size // x.shape[1]
        if n < 2:
            raise ValueError(f"batch_norm: training needs more than one value per channel, "
                             f"got input of shape {tuple(x.shape)}")
        mu = sum_axes(x.data, axes) / x.dtype.type(n)
        centred = x.data - mu.reshape(_channel_shape(x))
        centred *= centred
        var = sum_axes(centred, axes) / x.dtype.type(n)  # two passes, as var() does
        if rm is not None:
            rm *= 1 - momentum
            rm += momentum * mu.astype(rm.dtype, copy=False)
        if rv is not None:
            rv *= 1 - momentum
            rv += momentum * (var * (n / (n - 1))).astype(rv.dtype, copy=False)
    else:
        if rm is None or rv is None:
            raise ValueError("batch_norm: eval mode needs running_mean and running_var")
        mu, var = rm, rv
    inputs = [x] + ([weight] if weight is not None else []) + \
        ([bias] if bias is not None else [])
    if weight is None and bias is not None:
        raise ValueError("batch_norm: a bias without a weight is not supported")
    return BatchNorm(mu, var, training, eps)(*inputs)
