"""Worked solutions to the exercises of lesson 03, checking gradients with finite differences.

Run from anywhere: python lessons/solutions/03-gradcheck.py
"""
import numpy as np

import tinygan
from tinygan import Function, functional as F
from tinygan.testing import GradcheckError, gradcheck

rng = np.random.default_rng(0)

# Exercise 1. In float32 gradcheck refuses to run. That is the right answer: with float32
# the best central difference is only good to about 1e-6 (lesson 03's curve), at a step of
# 1e-2; at eps = 1e-6 the rounding error (1e-7 * |f| / 1e-6, about 0.1) would swamp any
# mistake, and a check that fails on correct code, or passes broken code, is worse than none.
x32 = tinygan.tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
w32 = tinygan.tensor(rng.standard_normal((2, 4)).astype(np.float32), requires_grad=True)
try:
    gradcheck(lambda x, w: F.tanh(F.linear(x, w)), [x32, w32])
except TypeError as e:
    print("exercise 1:", e)

# Exercise 2. Mul with its two gradients swapped: a gets gy * a, b gets gy * b. The check
# passes exactly when a == b elementwise (then the swap changes nothing), and fails
# otherwise.


class SwappedMul(Function):
    def forward(self, a, b):
        return a * b
    def backward(self, gy):
        a, b = self.inputs
        return gy * a, gy * b                      # should be gy * b, gy * a


a = tinygan.tensor(rng.standard_normal(5), requires_grad=True)
b = tinygan.tensor(rng.standard_normal(5), requires_grad=True)
try:
    gradcheck(lambda a, b: SwappedMul()(a, b), [a, b])
    caught = False
except GradcheckError:
    caught = True
twin = tinygan.tensor(a.detach().numpy().copy(), requires_grad=True)
passes_when_equal = gradcheck(lambda a, b: SwappedMul()(a, b), [a, twin])
print(f"exercise 2: caught for a != b: {caught}; passes for a == b: {passes_when_equal}")
assert caught and passes_when_equal

# Exercise 3. relu at exactly 0: the difference (relu(eps) - relu(-eps)) / 2 eps = 1/2, the
# analytic gradient is 0 (or 1): the check fails. Once |x| >= eps both nudges stay on one side
# of the kink and the check passes: the smallest distance is eps itself (a hair less, as the
# tolerance atol = 1e-5 forgives the last sliver of the kink).
zero = tinygan.tensor(np.zeros(1), requires_grad=True)
try:
    gradcheck(lambda x: F.relu(x), [zero])
except GradcheckError as e:
    print("exercise 3: at 0:", str(e).split(", |")[0])


def passes(d):
    return gradcheck(lambda x: F.relu(x), [tinygan.tensor(np.array([d]), requires_grad=True)],
                     raise_exception=False)


lo, hi = 0.0, 1e-3                                 # fails at lo, passes at hi: bisect
for _ in range(60):
    mid = (lo + hi) / 2
    lo, hi = (lo, mid) if passes(mid) else (mid, hi)
print(f"exercise 3: relu's check passes from x = {hi:.4g} on (eps = 1e-6)")
assert abs(hi - 1e-6) < 1e-8
