"""Optimisers: SGD, Adam, RMSprop, and the clipping helpers GANs use.

Every optimiser updates `p.data` in place from `p.grad.data`: arrays, not tensors, so a
step never records a graph. Names, arguments and defaults are PyTorch's.
"""
from .adam import Adam
from .clip import clip_, clip_grad_norm_
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "clip_", "clip_grad_norm_"]
