"""Batch normalisation (Ioffe & Szegedy 2015), training and eval.

Per channel, over the m values of a channel in the batch (a bar is their mean):

    xhat = (x - mu) s,   s = 1 / sqrt(var + eps),   y = w xhat + b.

In training mu and var are the batch's, so the gradient of x has the batch's dependence
projected out:

    dx = w s P(gy),   P(g) = g - gbar - xhat bar(g xhat),   dw = sum gy xhat,   db = sum gy.

In eval mu and var are the running statistics, constants: y is a per-channel affine map,
made of differentiable ops.
"""
from __future__ import annotations

from .. import backend, kernels
from ..kernels import batchnorm as batchnorm_kernels
from ..kernels.reduce import sum_axes
from .._tensor import Tensor
from ..autograd import Function
from .reduce import mean, sum
from .shape import reshape


def _stat_axes(x):
    return (0,) + tuple(range(2, x.ndim))  # every dim but the channels (dim 1)


def _channel_shape(x):
    return (1, -1) + (1,) * (x.ndim - 2)


class BatchNorm(Function):
    """Training mode: y = w (x - mu) s + b with the batch's mu and var (given as arrays);
    dx, dw, db as in the module's docstring (BatchNormGrad)."""

    def __init__(self, mean, var, eps):
        self.mean, self.var, self.eps = mean, var, eps

    def forward(self, x, weight=None, bias=None):
        xp = backend.get_array_module(x)
        shape = _channel_shape(x)
        inv_std = 1.0 / xp.sqrt(self.var + x.dtype.type(self.eps))
        self.inv_std = inv_std.reshape(shape).astype(x.dtype, copy=False)
        self.centre = self.mean.reshape(shape).astype(x.dtype, copy=False)
        y, self.xhat = _normalize(x, self.centre, self.inv_std, _per_channel(weight, shape),
                                  _per_channel(bias, shape))
        return y

    def backward(self, gy):
        x, *affine = self.inputs  # affine: (), (w,) or (w, b)
        grads = BatchNormGrad(self.centre, self.inv_std, self.xhat, self.eps)(
            x, gy, *affine[:1])
        return grads[:len(self.inputs)]


class BatchNormGrad(Function):
    """(dx, dw, db) of training-mode BatchNorm from (x, gy, w), computed on arrays.

    dw and db are what a weight and a bias get (the means of gy and gy xhat are needed for
    dx anyway), so they come out even without an affine part. Their derivative, given
    cotangents (ggx, ggw, ggb), with P, s and the bars as above:

        d/dgy = w s P(ggx) + ggw xhat + ggb
        d/dw  = sum ggx s P(gy)
        d/dx  = s (ggw P(gy) - w s (bar(ggx P(gy)) xhat + bar(gy xhat) P(ggx)
                                    + bar(ggx xhat) P(gy)))
    """

    def __init__(self, centre, inv_std, xhat, eps):
        self.centre, self.inv_std, self.xhat, self.eps = centre, inv_std, xhat, eps

    def forward(self, x, gy, weight=None):
        axes = _stat_axes(x)
        xhat = self.xhat
        if xhat is None:  # the forward did not keep it (see _normalize): rebuild it from x
            xhat, gy_xhat = batchnorm_kernels.standardize_generic(x, self.centre,
                                                                  self.inv_std, gy)
        else:
            gy_xhat = gy * xhat
        gb = sum_axes(gy, axes, keepdims=True)
        gw = sum_axes(gy_xhat, axes, keepdims=True)
        m = x.size // x.shape[1]
        w = gy.dtype.type(1) if weight is None else weight.reshape(_channel_shape(x))
        gx = _input_grad(gy, xhat, self.inv_std, w, gb / m, gw / m)
        return gx, gw.reshape(-1), gb.reshape(-1)

    def backward(self, ggx, ggw, ggb):
        x, gy, *weight = self.inputs
        axes, shape = _stat_axes(x), _channel_shape(x)
        needs = self.needs_input_grad

        def bar(v):
            return mean(v, axes, keepdim=True)

        # the statistics again, from x inside the graph: then this derivative has one too
        xc = x - bar(x)
        s = (bar(xc * xc) + self.eps) ** -0.5
        xhat = xc * s

        def project(v):  # P: v without its mean and its component along xhat
            return v - bar(v) - xhat * bar(v * xhat)

        w = reshape(weight[0], shape) if weight else 1.0
        ggw, ggb = reshape(ggw, shape), reshape(ggb, shape)
        p_gy, p_ggx = project(gy), project(ggx)
        g_x = s * (ggw * p_gy - w * s * (bar(ggx * p_gy) * xhat + bar(gy * xhat) * p_ggx
                                         + bar(ggx * xhat) * p_gy)) if needs[0] else None
        g_gy = w * s * p_ggx + ggw * xhat + ggb if needs[1] else None
        if not weight:
            return g_x, g_gy
        return g_x, g_gy, sum(ggx * s * p_gy, axes) if needs[2] else None


def _per_channel(a, shape):
    return None if a is None else a.reshape(shape)


def _normalize(x, mean, inv_std, weight, bias):
    """(y, xhat) on arrays. The GPU kernel writes xhat in the same pass, and it is kept for
    the backward; NumPy's y = x scale + shift takes two passes and makes no xhat (None):
    the backward rebuilds it from x, which the graph holds anyway, one activation-sized
    array less per BatchNorm."""
    if kernels.enabled(x, weight, bias):
        xhat, y = batchnorm_kernels.normalize(x, mean, inv_std, weight, bias)
        return y, xhat
    return batchnorm_kernels.normalize_generic(x, mean, inv_std, weight, bias), None


def _input_grad(gy, xhat, inv_std, weight, mean_gy, mean_gy_xhat):
    """dx = w s (gy - mean(gy) - xhat mean(gy xhat)) on arrays: one kernel on the GPU."""
    if kernels.enabled(gy, xhat, weight):
        return batchnorm_kernels.input_grad(gy, xhat, inv_std, weight, mean_gy, mean_gy_xhat)
    return batchnorm_kernels.input_grad_generic(gy, xhat, inv_std, weight, mean_gy,
                                                mean_gy_xhat)


def _batch_norm_eval(x, mean, var, weight, bias, eps):
    """y = x scale + shift per channel, scale = w s, shift = b - mu scale: the running
    statistics are constants, so plain differentiable ops give every derivative."""
    xp = backend.get_array_module(x.data)
    scale = Tensor((1.0 / xp.sqrt(var + x.dtype.type(eps))).astype(x.dtype, copy=False))
    if weight is not None:
        scale = scale * weight
    shift = Tensor(-mean.astype(x.dtype)) * scale
    if bias is not None:
        shift = shift + bias
    shape = _channel_shape(x)
    return x * reshape(scale, shape) + reshape(shift, shape)


def _array(t):
    return t.data if isinstance(t, Tensor) else t


def batch_norm(x: Tensor, running_mean, running_var, weight=None, bias=None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """As torch.nn.functional.batch_norm; running statistics are updated in place.

    The running variance is updated with the unbiased batch variance (m / (m - 1)),
    as PyTorch does; normalisation uses the biased one. The arguments are checked before
    any running statistic moves.
    """
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected (N, C, ...) input, got shape {tuple(x.shape)}")
    if weight is None and bias is not None:
        raise ValueError("batch_norm: a bias without a weight is not supported")
    rm, rv = _array(running_mean), _array(running_var)
    if not training:
        if rm is None or rv is None:
            raise ValueError("batch_norm: eval mode needs running_mean and running_var")
        return _batch_norm_eval(x, rm, rv, weight, bias, eps)
    axes = _stat_axes(x)
    m = x.data.size // x.shape[1]
    if m < 2:
        raise ValueError(f"batch_norm: training needs more than one value per channel, "
                         f"got input of shape {tuple(x.shape)}")
    mu = sum_axes(x.data, axes) / x.dtype.type(m)
    centred = x.data - mu.reshape(_channel_shape(x))
    centred *= centred
    var = sum_axes(centred, axes) / x.dtype.type(m)  # two passes, as var() does
    update_running_stats(rm, rv, mu, var, m, momentum)
    inputs = [x] + [a for a in (weight, bias) if a is not None]
    return BatchNorm(mu, var, eps)(*inputs)


def update_running_stats(rm, rv, mu, var, m: int, momentum: float) -> None:
    """running = (1 - momentum) running + momentum batch, in place; the running variance
    takes the unbiased batch variance, var m / (m - 1), as PyTorch's does."""
    if rm is not None:
        rm *= 1 - momentum
        rm += momentum * mu.astype(rm.dtype, copy=False)
    if rv is not None:
        rv *= 1 - momentum
        rv += momentum * (var * (m / (m - 1))).astype(rv.dtype, copy=False)
