"""Worked solutions to the exercises of lesson 02, broadcasting in the backward pass.

Run from anywhere: python lessons/solutions/02-broadcasting-backward.py
"""
import numpy as np

import tinygan
from tinygan import Function, functional as F
from tinygan.testing import gradcheck

rng = np.random.default_rng(0)

# Exercise 1. (5, 4, 3) @ (3, 2): the weight is used by all five matrices of the batch, so
# its gradient is the sum of the five per-matrix gradients x_b^T g_b, shape (3, 2). With
# an all-ones cotangent every column of it is the sum of x over the batch and the rows.
x = tinygan.tensor(rng.standard_normal((5, 4, 3)))
w = tinygan.tensor(rng.standard_normal((3, 2)), requires_grad=True)
(x @ w).backward(tinygan.ones(5, 4, 2, dtype=x.dtype))
predicted = np.repeat(x.numpy().sum(axis=(0, 1))[:, None], 2, axis=1)
print("exercise 1: weight gradient", w.grad.shape, "as predicted:",
      np.allclose(w.grad.numpy(), predicted))
assert w.grad.shape == (3, 2) and np.allclose(w.grad.numpy(), predicted)

# Exercise 2. A shape can be summed to only if it broadcasts to g.shape: np.broadcast_shapes
# must give back g.shape. (4, 3) -> (2,) and (4, 3) -> (3, 4) both fail that test.


def sum_to_array(g, shape):
    shape = tuple(shape)
    try:
        fits = np.broadcast_shapes(shape, g.shape) == g.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"sum_to: shape {shape} does not broadcast to the gradient's "
                         f"shape {g.shape}")
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, s in enumerate(shape) if s == 1 and g.shape[i + lead] != 1)
    out = g.sum(axis=axes, keepdims=True) if axes else g
    return out.reshape(shape)


for bad in [(2,), (3, 4)]:
    try:
        sum_to_array(np.ones((4, 3)), bad)
    except ValueError as e:
        print("exercise 2:", e)
print("exercise 2: (4, 1) still works:", sum_to_array(np.ones((4, 3)), (4, 1)).ravel())

# Exercise 3. Maximum with broadcasting: the gradient goes to the larger input (ties to a),
# and each input's share is summed back to its shape.


class Maximum(Function):
    def forward(self, a, b):
        self.a_wins = a >= b                       # broadcast to the output's shape
        self.shapes = a.shape, b.shape
        return np.maximum(a, b)
    def backward(self, gy):
        to_a = tinygan.tensor(self.a_wins.astype(gy.dtype))
        return F.sum_to(gy * to_a, self.shapes[0]), F.sum_to(gy * (1 - to_a), self.shapes[1])


a = tinygan.tensor(rng.standard_normal((4, 3)), requires_grad=True)
b = tinygan.tensor(rng.standard_normal((3,)), requires_grad=True)   # broadcast along rows
ok = gradcheck(lambda a, b: Maximum()(a, b), [a, b])                # no ties: random inputs
print("exercise 3: gradcheck of Maximum with a broadcast input:", ok)
assert ok
