"""Adam, and its AMSGrad variant: one update on arrays, and the optimiser that runs it."""
from __future__ import annotations

import math

from .. import parallel
from ..backend import get_array_module
from ..kernels.optim import adam_multi, fits_one_launch
from .inplace import addcdiv_, average_, lerp_
from .optimizer import Optimizer


def adam(p, g, m, v, vmax=None, *, lr: float, betas: tuple[float, float], eps: float,
         weight_decay: float, step: int) -> None:
    """One Adam step on one parameter's arrays (NumPy or CuPy), in place:

        m += (1 - b1) (g - m)                  that is, m = b1 m + (1 - b1) g
        v = b2 v + (1 - b2) g^2
        p -= lr m_hat / (sqrt(v_hat) + eps)    m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)

    Weight decay first adds wd p to the gradient (L2, as PyTorch's Adam; not AdamW's
    decoupled decay). With `vmax` (AMSGrad) v_hat is made of the running maximum of v.
    The moving averages are written as PyTorch's Adam writes them: m as a lerp, v as a
    scale and an add.
    """
    xp = get_array_module(p)
    b1, b2 = betas
    if weight_decay:
        g = g + weight_decay * p  # a new array: p.grad itself is left alone
    work = xp.empty_like(p)  # the one scratch array of the step
    lerp_(m, g, 1 - b1, work)                           # m += (1 - b1) (g - m)
    average_(v, xp.multiply(g, g, out=work), b2, work)  # v = b2 v + (1 - b2) g^2
    if vmax is not None:
        v = xp.maximum(vmax, v, out=vmax)
    c1, c2 = 1 - b1 ** step, 1 - b2 ** step
    denom = xp.sqrt(v, out=work)                        # sqrt(v_hat) + eps
    denom /= math.sqrt(c2)
    denom += eps
    addcdiv_(p, m, denom, -lr / c1, work)               # p -= lr m_hat / denom


class Adam(Optimizer):
    """Kingma & Ba 2015, Algorithm 1, in PyTorch's form: `adam` on every parameter.

    eps is added after the square root, and weight decay to the gradient; with `amsgrad`
    (Reddi et al. 2018) the denominator uses the running maximum of v. On a GPU a group's
    parameters are updated in one launch of `kernels.optim.adam_multi`, the same
    arithmetic over all of them.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False):
        if lr < 0:
            raise ValueError(f"Adam: invalid learning rate {lr} (must be >= 0)")
        if eps < 0:
            raise ValueError(f"Adam: invalid eps {eps} (must be >= 0)")
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"Adam: invalid betas {betas} (two numbers in [0, 1))")
        if weight_decay < 0:
            raise ValueError(f"Adam: invalid weight_decay {weight_decay} (must be >= 0)")
        super().__init__(params, dict(lr=float(lr), betas=(float(betas[0]), float(betas[1])),
                                      eps=float(eps), weight_decay=float(weight_decay),
                                      amsgrad=bool(amsgrad)))

    def _init_state(self, p, group):
        state = {"step": 0, "exp_avg": p.xp.zeros_like(p.data),
                 "exp_avg_sq": p.xp.zeros_like(p.data)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = p.xp.zeros_like(p.data)
        return state

    def _update(self, params, states, group):
        hyper = dict(lr=group["lr"], betas=group["betas"], eps=group["eps"],
                     weight_decay=group["weight_decay"])
        arrays = ([p.data for p in params], [p.grad.data for p in params],
                  [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states])
        steps = {s["step"] for s in states}
        if len(steps) == 1 and not group["amsgrad"] and fits_one_launch(*arrays):
            adam_multi(*arrays, step=steps.pop(), **hyper)
            return
        for p, g, m, v, state in zip(*arrays, states):
            vmax = state["max_exp_avg_sq"] if group["amsgrad"] else None
            parallel.apply(adam, p, g, m, v, vmax, step=state["step"], **hyper)
