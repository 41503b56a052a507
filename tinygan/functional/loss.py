"""Losses: binary cross-entropy (with logits, stable), cross-entropy, mse, l1."""
from __future__ import annotations

from .. import backend, kernels
from ..kernels import activation as activation_kernels
from .._tensor import Tensor, as_tensor
from ..autograd import Function
from .activation import log_softmax, sigmoid
from .elementwise import abs as abs_, clamp, log
from .reduce import mean, sum


def _reduce(loss: Tensor, reduction: str, name: str) -> Tensor:
    if reduction == "mean":
        return mean(loss)
    if reduction == "sum":
        return sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_same_shape(name, x, t):
    if tuple(x.shape) != tuple(t.shape):
        raise ValueError(f"{name}: input of shape {tuple(x.shape)} and target of shape "
                         f"{tuple(t.shape)} differ")


class BCEWithLogits(Function):
    """l = max(x,0) - x t + log(1 + e^-|x|), the stable form of -t log s(x) - (1-t) log(1-s(x)).

    dl/dx = sigmoid(x) - t, dl/dt = -x.
    """

    def forward(self, x, t):
        return _bce_with_logits(x, t)

    def backward(self, gy):
        x, t = self.inputs
        gx = BCEWithLogitsGrad()(gy, x, t) if self.needs_input_grad[0] else None
        gt = -gy * x if self.needs_input_grad[1] else None
        return gx, gt


class BCEWithLogitsGrad(Function):
    """gx = gy (s - t) with s = sigmoid(x) (one fused pass on the GPU).

    Its derivatives: d/dgy = s - t, d/dx = gy s (1 - s), d/dt = -gy.
    """

    def forward(self, gy, x, t):
        return _bce_with_logits_grad(gy, x, t)

    def backward(self, ggx):
        gy, x, t = self.inputs
        needs = self.needs_input_grad
        s = sigmoid(x)
        return (ggx * (s - t) if needs[0] else None,
                ggx * gy * s * (1.0 - s) if needs[1] else None,
                -ggx * gy if needs[2] else None)


def _bce_with_logits(x, t):
    """The loss on arrays: one fused kernel on the GPU, its NumPy twin elsewhere."""
    if kernels.enabled(x, t) and x.dtype == t.dtype:
        return activation_kernels.bce_with_logits_forward(x, t)
    return activation_kernels.bce_with_logits_forward_generic(x, t)


def _bce_with_logits_grad(gy, x, t):
    if kernels.enabled(gy, x, t) and gy.dtype == x.dtype == t.dtype:
        return activation_kernels.bce_with_logits_backward(gy, x, t)
    return activation_kernels.bce_with_logits_backward_generic(gy, x, t)


def binary_cross_entropy_with_logits(input: Tensor, target, weight=None,
                                     reduction: str = "mean") -> Tensor:
    """Binary cross-entropy on logits, stable for large |logits|."""
    target = as_tensor(target, like=input)
    _check_same_shape("binary_cross_entropy_with_logits", input, target)
    loss = BCEWithLogits()(input, target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def binary_cross_entropy(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """-t log p - (1-t) log(1-p) on probabilities; logs clamped at -100 as PyTorch."""
    target = as_tensor(target, like=input)
    _check_same_shape("binary_cross_entropy", input, target)
    loss = -(target * clamp(log(input), min=-100.0)
             + (1.0 - target) * clamp(log(1.0 - input), min=-100.0))
    return _reduce(loss, reduction, "binary_cross_entropy")


def _one_hot_array(target: Tensor, num_classes: int, dtype):
    t = target.data
    xp = backend.get_array_module(t)
    if t.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: target must hold class indices, got dtype {t.dtype}")
    if t.size and (t.min() < 0 or t.max() >= num_classes):
        raise ValueError(f"cross_entropy: target holds a class outside [0, {num_classes})")
    return (t[..., None] == xp.arange(num_classes)).astype(dtype)


def one_hot(target: Tensor, num_classes: int) -> Tensor:
    return Tensor(_one_hot_array(as_tensor(target), num_classes, "int64"))


def nll_loss(log_probs: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """-log p[target], picked with a one-hot mask (no scatter in the backward)."""
    if log_probs.ndim != 2 or target.shape != log_probs.shape[:1]:
        raise ValueError(f"nll_loss: expected input (N, C) and target (N,), got "
                         f"{tuple(log_probs.shape)} and {tuple(target.shape)}")
    mask = Tensor(_one_hot_array(target, log_probs.shape[1], log_probs.dtype))
    return _reduce(-sum(log_probs * mask, 1), reduction, "nll_loss")


def cross_entropy(input: Tensor, target: Tensor, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy from logits (N, C) and class indices (N,)."""
    logp = log_softmax(input, 1)
    loss = nll_loss(logp, target, reduction="none")
    if label_smoothing:
        loss = (1 - label_smoothing) * loss - label_smoothing * mean(logp, 1)
    return _reduce(loss, reduction, "cross_entropy")


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """mean (x - t)^2."""
    target = as_tensor(target, like=input)
    _check_same_shape("mse_loss", input, target)
    d = input - target
    return _reduce(d * d, reduction, "mse_loss")


def l1_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    target = as_tensor(target, like=input)
    _check_same_shape("l1_loss", input, target)
    return _reduce(abs_(input - target), reduction, "l1_loss")
