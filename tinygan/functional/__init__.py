"""Every differentiable op, forward and backward side by side (import as F).

Importing this package also gives Tensor its operators and methods (`a + b`, `x.sum()`,
`x.reshape(...)`): each is one line below, pointing at the function that does the work.
"""
from .._tensor import Tensor
from .activation import (leaky_relu, log_softmax, relu, sigmoid, softmax, softplus, tanh)
from .conv import conv2d, conv2d_simple, conv_transpose2d
from .unfold import col2im, im2col
from .stochastic import dropout
from .elementwise import (abs, add, astype, clamp, clip, div, exp, log, maximum, minimum, mul,
                          neg, pow, rdiv, rpow, rsqrt, rsub, sqrt, square, sub, where)
from .loss import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy,
                   l1_loss, mse_loss, nll_loss, one_hot)
from .matrix import linear, matmul
from .norm import batch_norm
from .pool import avg_pool2d, interpolate, max_pool2d
from .reduce import amax, amin, logsumexp, max, mean, min, std, sum, var
from .shape import (broadcast_to, cat, chunk, embedding, expand, flatten, getitem, pad,
                    permute, reshape, split, squeeze, stack, sum_to, transpose, unflatten,
                    unsqueeze, view, wrap_dim)


def _compare(op):
    def method(self, other):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor(op(self.data, other))
    return method


def _install_tensor_methods():
    T = Tensor
    T.__add__ = add
    T.__radd__ = add
    T.__sub__ = sub
    T.__rsub__ = rsub
    T.__mul__ = mul
    T.__rmul__ = mul
    T.__truediv__ = div
    T.__rtruediv__ = rdiv
    T.__neg__ = neg
    T.__pow__ = pow
    T.__rpow__ = rpow
    T.__matmul__ = matmul
    T.__rmatmul__ = lambda self, other: matmul(other, self)
    T.__abs__ = abs
    T.__getitem__ = getitem
    T.__lt__ = _compare(lambda a, b: a < b)
    T.__le__ = _compare(lambda a, b: a <= b)
    T.__gt__ = _compare(lambda a, b: a > b)
    T.__ge__ = _compare(lambda a, b: a >= b)
    T.__eq__ = _compare(lambda a, b: a == b)
    T.__ne__ = _compare(lambda a, b: a != b)
    T.__hash__ = object.__hash__
    T.add, T.sub, T.mul, T.div, T.neg, T.pow = add, sub, mul, div, neg, pow
    T.exp, T.log, T.sqrt, T.rsqrt, T.abs, T.square = exp, log, sqrt, rsqrt, abs, square
    T.clamp = T.clip = clamp
    T.tanh, T.sigmoid, T.relu, T.softmax, T.log_softmax = tanh, sigmoid, relu, softmax, \
        log_softmax
    T.matmul = matmul
    T.sum, T.mean, T.var, T.std, T.amax, T.amin, T.max, T.min = sum, mean, var, std, amax, \
        amin, max, min
    T.logsumexp = logsumexp
    T.reshape = reshape
    T.view = view
    T.permute = permute
    T.transpose = transpose
    T.flatten = flatten
    T.unflatten = unflatten
    T.squeeze = squeeze
    T.unsqueeze = unsqueeze
    T.expand = expand
    T.broadcast_to = broadcast_to
    T.chunk = chunk
    T.split = split
    T.T = property(lambda self: permute(self, tuple(reversed(range(self.ndim)))))
    T.argmax = lambda self, dim=None, keepdim=False: Tensor(
        self.data.argmax() if dim is None else
        self.data.argmax(axis=wrap_dim(dim, self.ndim), keepdims=keepdim))
    T.argmin = lambda self, dim=None, keepdim=False: Tensor(
        self.data.argmin() if dim is None else
        self.data.argmin(axis=wrap_dim(dim, self.ndim), keepdims=keepdim))


_install_tensor_methods()
