"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""
from __future__ import annotations

from .optimizer import Optimizer


class SGD(Optimizer):
    """g = grad + wd p; b = mu b + (1 - dampening) g; p -= lr (g + mu b if nesterov else b).

    The buffer starts as b = g on the first step.

    The momentum form is PyTorch's (Sutskever et al. 2013), which scales by lr outside the
    buffer, unlike the "v = mu v - lr g" of some papers.
    """

    def __init__(self, params, lr: float, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False):
        if lr < 0:
            raise ValueError(f"SGD: invalid learning rate {lr} (must be >= 0)")
        if momentum < 0:
            raise ValueError(f"SGD: invalid momentum {momentum} (must be >= 0)")
        if weight_decay < 0:
            raise ValueError(f"SGD: invalid weight_decay {weight_decay} (must be >= 0)")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=float(lr), momentum=float(momentum),
                                      dampening=float(dampening),
                                      weight_decay=float(weight_decay), nesterov=bool(nesterov)))

    def _update(self, params, states, group):
        lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
        for p, state in zip(params, states):
            param, grad = p.data, p.grad.data
            if wd != 0:
                grad = grad + wd * param  # a new array: p.grad itself is left alone
            if mu != 0:
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = grad.copy()
                else:
                    buf *= mu
                    buf += (1 - group["dampening"]) * grad
                grad = grad + mu * buf if group["nesterov"] else buf
            param -= lr * grad
