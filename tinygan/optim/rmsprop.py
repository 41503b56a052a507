"""RMSprop, plain, with momentum, and centered."""
from __future__ import annotations

from .. import kernels
from ..backend import get_array_module
from .optimizer import Optimizer


class RMSprop(Optimizer):
    """s = a s + (1-a) g^2; p -= lr g / (sqrt(s) + eps); momentum: b = mu b + g/(...), p -= lr b.

    Tieleman & Hinton 2012 (Lecture 6.5), as PyTorch writes it: gbar = a gbar + (1-a) g
    is the running mean of the gradient, and centered RMSprop (Graves 2013) uses
    d = sqrt(s - gbar^2) + eps, a variance. Weight decay is added to the gradient first.
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

    def _step_group(self, group) -> bool:
        plain = group["momentum"] == 0 and not group["centered"]
        fusable = self._fusable(group, "square_avg") if plain else None
        if fusable is None:
            return False
        datas, grads, states, (square_avgs,) = fusable
        for state in states:
            state["step"] += 1
        from ..kernels import optim as fused  # every parameter in one launch on a GPU
        fused.rmsprop_multi(datas, grads, square_avgs, group["lr"], group["alpha"],
                            group["eps"], group["weight_decay"])
        return True

    def _update(self, param, grad, state, group):
        xp = get_array_module(param)
        alpha, eps, wd, mu = group["alpha"], group["eps"], group["weight_decay"], group["momentum"]
        state["step"] += 1
        square_avg = state["square_avg"]
        if (mu == 0 and not group["centered"] and grad.dtype == param.dtype
                and kernels.enabled(param, grad)):
            from ..kernels import optim as fused  # one fused launch on a GPU
            fused.rmsprop(param, grad, square_avg, group["lr"], alpha, eps, wd)
            return
        if wd != 0:
            grad = grad + wd * param  # a new array: p.grad itself is left alone
        work = xp.multiply(grad, grad)  # the one scratch array of this step
        work *= 1 - alpha
        square_avg *= alpha
        square_avg += work
        if group["centered"]:
            grad_avg = state.setdefault("grad_avg", xp.zeros_like(param))
            xp.subtract(grad, grad_avg, out=work)  # gbar += (1-a)(g - gbar), PyTorch's lerp
            work *= 1 - alpha
            grad_avg += work
            xp.multiply(grad_avg, grad_avg, out=work)
            xp.subtract(square_avg, work, out=work)
            xp.sqrt(work, out=work)
        else:
            xp.sqrt(square_avg, out=work)
        work += eps
        xp.divide(grad, work, out=work)
        if mu > 0:
            buf = state.setdefault("momentum_buffer", xp.zeros_like(param))
            buf *= mu
            buf += work
            xp.multiply(buf, group["lr"], out=work)
        else:
            work *= group["lr"]
        param -= work
