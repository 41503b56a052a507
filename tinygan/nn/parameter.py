"""Parameter: a Tensor that a Module registers as learnable."""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor


class Parameter(Tensor):
    """A leaf tensor with requires_grad=True that Module.__setattr__ files under parameters()."""

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = np.empty((0,), dtype=np.float32)
        if isinstance(data, Tensor):
            data = data.data
        if data.dtype.kind != "f":
            raise TypeError(f"Parameter: expected floating-point data, got dtype {data.dtype}")
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
