"""Worked solutions to the exercises of lesson 01, a number that knows its gradient.

Run from anywhere: python lessons/solutions/01-scalar-autograd.py
It builds on the lesson's own `Value` (run_lessons.lesson_namespace runs the lesson's code).
"""
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from run_lessons import lesson_namespace  # noqa: E402

Value = lesson_namespace("01")["Value"]

# Exercise 1. __pow__ for a constant exponent and exp, then d/da (a^3 e^a) at a = 1.
# d(a^k)/da = k a^(k-1) and d(e^a)/da = e^a: each backward sits beside its forward.


def __pow__(self, k):
    out = Value(self.data ** k, (self,))
    def _backward():
        self.grad += k * self.data ** (k - 1) * out.grad
    out._backward = _backward
    return out


def exp(self):
    out = Value(math.exp(self.data), (self,))
    def _backward():
        self.grad += out.data * out.grad          # d e^a / da = e^a, which is out itself
    out._backward = _backward
    return out


Value.__pow__, Value.exp = __pow__, exp
a = Value(1.0)
y = a ** 3 * a.exp()
y.backward()
# d/da a^3 e^a = 3a^2 e^a + a^3 e^a = (3 + 1) e at a = 1
print(f"exercise 1: dy/da = {a.grad:.6f}, 4e = {4 * math.e:.6f}")
assert abs(a.grad - 4 * math.e) < 1e-12

# Exercise 2. The topological order with an explicit stack. Each entry is (value, done):
# a value is appended once all of its parents have been (done=True on its second visit).


def backward(self):
    order, seen, stack = [], set(), [(self, False)]
    while stack:
        v, done = stack.pop()
        if done:
            order.append(v)
        elif id(v) not in seen:
            seen.add(id(v))
            stack.append((v, True))
            stack.extend((p, False) for p in v._parents)
    self.grad = 1.0
    for v in reversed(order):
        v._backward()


chain = x = Value(0.5)
for _ in range(10_000):
    chain = chain + x
try:
    chain.backward()                               # the lesson's recursive visit
    recursive = "fine"
except RecursionError:
    recursive = "RecursionError"
x.grad = 0.0
Value.backward = backward
chain.backward()
print(f"exercise 2: recursive backward on 10,000 additions: {recursive}; "
      f"with a stack: d chain / dx = {x.grad:.0f}")
assert recursive == "RecursionError" and x.grad == 10_001

# Exercise 3. sigmoid as one op (derivative s (1 - s)) and composed of exp, + and a
# reciprocal (x ** -1). Same gradient; the composed graph has more nodes.


def sigmoid(self):
    out = Value(1 / (1 + math.exp(-self.data)), (self,))
    def _backward():
        self.grad += out.data * (1 - out.data) * out.grad
    out._backward = _backward
    return out


def count_nodes(v):
    seen, stack = set(), [v]
    while stack:
        u = stack.pop()
        if id(u) not in seen:
            seen.add(id(u))
            stack.extend(u._parents)
    return len(seen)


Value.sigmoid = sigmoid
a1, a2 = Value(0.3), Value(0.3)
one_op = a1.sigmoid()
composed = (1 + (-a2).exp()) ** -1
one_op.backward()
composed.backward()
print(f"exercise 3: gradients {a1.grad:.6f} and {a2.grad:.6f}; nodes in the graph: "
      f"{count_nodes(one_op)} (one op) and {count_nodes(composed)} (composed)")
assert abs(a1.grad - a2.grad) < 1e-12
# one op: a and s. Composed: a, -1, -a, e^-a, 1, 1 + e^-a, its reciprocal.
assert (count_nodes(one_op), count_nodes(composed)) == (2, 7)
