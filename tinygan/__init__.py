"""tinygan: a deep-learning engine on NumPy and CuPy, and every classic GAN written out."""
from . import backend
from .backend import cuda_is_available, fork_rng, get_rng_state, set_rng_state
from ._tensor import Tensor
from .autograd import (Function, enable_grad, grad, is_grad_enabled, no_grad,
                       set_grad_enabled)
from .creation import (arange, empty, from_numpy, full, manual_seed, ones, ones_like, rand,
                       rand_like, randint, randn, randn_like, tensor, zeros, zeros_like)
from . import functional
from .functional import cat, stack
from .threads import get_num_threads, set_num_threads

float32 = "float32"
float64 = "float64"
int64 = "int64"

__version__ = "0.1.0"


def _lazy(name):
    import importlib
    return importlib.import_module(f".{name}", __name__)


def __getattr__(name):
    # nn, optim, data, ... load on first use so `import tinygan` stays light
    if name in ("nn", "optim", "data", "gans", "metrics", "testing", "kernels"):
        return _lazy(name)
    if name in ("save", "load"):
        return getattr(_lazy("serialization"), name)
    raise AttributeError(f"module 'tinygan' has no attribute {name!r}")
