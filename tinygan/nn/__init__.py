"""Layers with PyTorch's names, arguments and weight layouts, built on tinygan.functional."""
from . import init, utils
from .activation import LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .attention import SelfAttention
from .container import ModuleList, Sequential
from .conv import Conv2d, ConvTranspose2d
from .linear import Embedding, Flatten, Identity, Linear, Reshape, Unflatten
from .misc import AvgPool2d, Dropout, MaxPool2d, Upsample
from .module import Module
from .norm import BatchNorm1d, BatchNorm2d
from .parallel import SyncBatchNorm
from .parameter import Parameter

__all__ = ["AvgPool2d", "BatchNorm1d", "BatchNorm2d", "Conv2d", "ConvTranspose2d", "Dropout",
           "Embedding", "Flatten", "Identity", "LeakyReLU", "Linear", "MaxPool2d", "Module",
           "ModuleList", "Parameter", "ReLU", "Reshape", "SelfAttention", "Sequential",
           "Sigmoid", "Softmax", "SyncBatchNorm", "Tanh", "Unflatten", "Upsample", "init",
           "parallel", "utils"]
