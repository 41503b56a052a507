"""Optimisers: SGD, Adam, RMSprop, the clipping helpers GANs use, and lr schedules.

Every optimiser updates `p.data` in place from `p.grad.data`: arrays, not tensors, so a
step never records a graph. Names, arguments and defaults are PyTorch's.
"""
from . import lr_scheduler
from .adam import Adam
from .clip import clip_, clip_grad_norm_
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "clip_", "clip_grad_norm_", "lr_scheduler"]
