"""RMSprop, plain, with momentum, and centered: one update on arrays, and the optimiser."""
from __future__ import annotations

from .. import parallel
from ..backend import get_array_module
from ..kernels.optim import fits_one_launch, rmsprop_multi
from .inplace import addcdiv_, average_, lerp_
from .optimizer import Optimizer


def rmsprop(p, g, square_avg, grad_avg=None, momentum_buffer=None, *, lr: float,
            alpha: float, eps: float, weight_decay: float, momentum: float = 0) -> None:
    """One RMSprop step on one parameter's arrays (NumPy or CuPy), in place:

        s = a s + (1 - a) g^2
        p -= lr g / (sqrt(s) + eps)

    Weight decay first adds wd p to the gradient. Centered (Graves 2013, with `grad_avg`):
    gbar = a gbar + (1 - a) g, and the denominator is sqrt(s - gbar^2) + eps, a standard
    deviation. Momentum (with `momentum_buffer`): b = mu b + g / denominator; p -= lr b.
    """
    xp = get_array_module(p)
    if weight_decay:
        g = g + weight_decay * p  # a new array: p.grad itself is left alone
    work = g * g  # the one scratch array of the step, g^2 first
    average_(square_avg, work, alpha, work)              # s = a s + (1 - a) g^2
    if grad_avg is None:
        denom = xp.sqrt(square_avg, out=work)
    else:
        lerp_(grad_avg, g, 1 - alpha, work)              # gbar += (1 - a) (g - gbar)
        denom = xp.multiply(grad_avg, grad_avg, out=work)
        xp.subtract(square_avg, denom, out=denom)
        xp.sqrt(denom, out=denom)
    denom += eps
    if momentum_buffer is None:
        addcdiv_(p, g, denom, -lr, work)                 # p -= lr g / denom
    else:
        momentum_buffer *= momentum                      # b = mu b + g / denom
        addcdiv_(momentum_buffer, g, denom, 1, work)
        xp.multiply(momentum_buffer, lr, out=work)       # p -= lr b
        p -= work


class RMSprop(Optimizer):
    """Tieleman & Hinton 2012 (Lecture 6.5), as PyTorch writes it: `rmsprop` on every parameter.

    On a GPU a group's parameters (plain RMSprop, without momentum or centering) are updated
    in one launch of `kernels.optim.rmsprop_multi`, the same arithmetic over all of them.
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False):
        if lr < 0:
            raise ValueError(f"RMSprop: invalid learning rate {lr} (must be >= 0)")
        if not 0 <= alpha <= 1:
            raise ValueError(f"RMSprop: invalid alpha {alpha} (must be in [0, 1])")
        if eps < 0:
            raise ValueError(f"RMSprop: invalid eps {eps} (must be >= 0)")
        if momentum < 0:
            raise ValueError(f"RMSprop: invalid momentum {momentum} (must be >= 0)")
        if weight_decay < 0:
            raise ValueError(f"RMSprop: invalid weight_decay {weight_decay} (must be >= 0)")
        super().__init__(params, dict(lr=float(lr), alpha=float(alpha), eps=float(eps),
                                      weight_decay=float(weight_decay),
                                      momentum=float(momentum), centered=bool(centered)))

    def _init_state(self, p, group):
        state = {"step": 0, "square_avg": p.xp.zeros_like(p.data)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = p.xp.zeros_like(p.data)
        if group["centered"]:
            state["grad_avg"] = p.xp.zeros_like(p.data)
        return state

    def _update(self, params, states, group):
        hyper = dict(lr=group["lr"], alpha=group["alpha"], eps=group["eps"],
                     weight_decay=group["weight_decay"])
        arrays = ([p.data for p in params], [p.grad.data for p in params],
                  [s["square_avg"] for s in states])
        plain = group["momentum"] == 0 and not group["centered"]
        if plain and fits_one_launch(*arrays):
            rmsprop_multi(*arrays, **hyper)
            return
        for p, g, square_avg, state in zip(*arrays, states):
            grad_avg = state["grad_avg"] if group["centered"] else None
            buf = state["momentum_buffer"] if group["momentum"] > 0 else None
            parallel.apply(rmsprop, p, g, square_avg, grad_avg, buf,
                           momentum=group["momentum"], **hyper)
