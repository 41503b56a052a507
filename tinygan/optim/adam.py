"""Adam, and its AMSGrad variant."""
from __future__ import annotations

import math

import numpy as np

from .. import kernels, parallel
from ..backend import get_array_module
from .optimizer import Optimizer


class Adam(Optimizer):
    """m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr m_hat / (sqrt(v_hat) + eps).

    m_hat = m / (1 - b1^t) and v_hat = v / (1 - b2^t) undo the bias towards the zero start.

    Kingma & Ba 2015, Algorithm 1, in PyTorch's order: weight decay is added to the
    gradient (L2, not AdamW's decoupled decay), and eps is added after the square root.
    With `amsgrad` (Reddi et al. 2018) the denominator uses the running maximum of v.
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

    def _step_group(self, group) -> bool:
        fusable = None if group["amsgrad"] else self._fusable(group, "exp_avg", "exp_avg_sq")
        if fusable is None:
            return False
        datas, grads, states, (ms, vs) = fusable
        for state in states:
            state["step"] += 1
        t = states[0]["step"]
        (b1, b2), eps, wd = group["betas"], group["eps"], group["weight_decay"]
        from ..kernels import optim as fused  # every parameter in one launch on a GPU
        fused.adam_multi(datas, grads, ms, vs, group["lr"], b1, b2, eps, wd, 1 - b1 ** t,
                         1 - b2 ** t)
        return True

    def _update(self, param, grad, state, group):
        xp = get_array_module(param)
        (b1, b2), eps, wd = group["betas"], group["eps"], group["weight_decay"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        state["step"] += 1
        t = state["step"]
        if not group["amsgrad"] and grad.dtype == param.dtype and kernels.enabled(param, grad):
            from ..kernels import optim as fused  # one fused launch on a GPU
            fused.adam(param, grad, m, v, group["lr"], b1, b2, eps, wd, 1 - b1 ** t,
                       1 - b2 ** t)
            return
        if wd != 0:
            grad = grad + wd * param  # a new array: p.grad itself is left alone
        arrays = [param, grad, m, v]
        if group["amsgrad"]:
            arrays.append(state.setdefault("max_exp_avg_sq", xp.zeros_like(param)))
        hyper = (group["lr"], b1, b2, eps, 1 - b1 ** t, 1 - b2 ** t)
        if xp is np and all(a.flags.c_contiguous for a in arrays):
            # big arrays: a part per thread (the same bits as one thread)
            flat = [a.reshape(-1) for a in arrays]
            parallel.run(lambda part: _adam_arrays(*(a[part] for a in flat), hyper=hyper),
                         parallel.split(param.size))
        else:
            _adam_arrays(*arrays, hyper=hyper)


def _adam_arrays(param, grad, m, v, vmax=None, *, hyper) -> None:
    """The update on arrays of one shape, in place (param, m, v, vmax)."""
    lr, b1, b2, eps, bias1, bias2 = hyper
    xp = get_array_module(param)
    work = xp.empty_like(param)  # the one scratch array of this step
    xp.subtract(grad, m, out=work)  # m += (1-b1)(g - m), PyTorch's lerp
    work *= 1 - b1
    m += work
    v *= b2
    xp.multiply(grad, grad, out=work)
    work *= 1 - b2
    v += work
    if vmax is not None:  # AMSGrad: the denominator uses the running maximum of v
        xp.maximum(vmax, v, out=vmax)
        v = vmax
    xp.sqrt(v, out=work)  # denominator sqrt(v_hat) + eps
    work /= math.sqrt(bias2)
    work += eps
    xp.divide(m, work, out=work)
    work *= lr / bias1
    param -= work
