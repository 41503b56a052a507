"""Worked solutions to the exercises of lesson 05, optimisers.

Run from anywhere: python lessons/solutions/05-optimisers.py
"""
import numpy as np

import tinygan
from tinygan import optim


def adam(p, g, state, lr, betas=(0.9, 0.999), eps=1e-8, correct=True):
    """The lesson's Adam step, with the bias correction optional."""
    b1, b2 = betas
    t = state["t"] = state.get("t", 0) + 1
    m = state["m"] = b1 * state.get("m", 0) + (1 - b1) * g
    v = state["v"] = b2 * state.get("v", 0) + (1 - b2) * g * g
    if correct:
        m, v = m / (1 - b1 ** t), v / (1 - b2 ** t)
    p -= lr * m / (np.sqrt(v) + eps)


# Exercise 1. beta1 = 0, constant g: m_1 = g and v_1 = (1 - b2) g^2, corrected to g and g^2,
# so the step is -lr g / (|g| + eps) = -lr sign(g), for any size of g. Good: the step size
# is lr whatever the gradient's scale (no tuning per layer). Bad: a gradient of 1e-6 that
# is mostly noise moves the weight as far as a gradient of 1e3.
for g in (1e-6, 1.0, 1e3):
    p = np.array([0.0])
    adam(p, np.array([g]), {}, lr=0.01, betas=(0.0, 0.999))
    print(f"exercise 1: gradient {g:g}: first step {p[0]:+.6f}")
    assert abs(p[0] + 0.01) < 1e-4

# Exercise 2. Without the correction the step is lr m_t / sqrt(v_t) = lr (1 - b1^t) /
# sqrt(1 - b2^t) times the corrected one (for a constant gradient): 3.2 times too long at
# the first step, 6.5 times at step 10, and still 1.3 times too long at step 1000:
# sqrt(1 - 0.999^t) climbs towards 1 far more slowly than 1 - 0.9^t does.
ratios = {}
for t in (1, 2, 10, 30, 100, 1000):
    corrected, raw = np.array([0.0]), np.array([0.0])
    s1, s2 = {}, {}
    for _ in range(t):
        before_c, before_r = corrected.copy(), raw.copy()
        adam(corrected, np.array([1.0]), s1, lr=1e-3)
        adam(raw, np.array([1.0]), s2, lr=1e-3, correct=False)
    ratios[t] = (raw - before_r)[0] / (corrected - before_c)[0]
print("exercise 2: step without / with the bias correction, at step t:",
      ", ".join(f"t={t}: {r:.2f}" for t, r in ratios.items()))
assert abs(ratios[1] - 0.1 / np.sqrt(0.001)) < 1e-3 and max(ratios.values()) > 6

# Exercise 3. On f = (0.05 x^2 + 2 y^2) / 2 plain SGD multiplies y by (1 - 2 lr) each step
# (and x by 1 - 0.05 lr): it converges when |1 - 2 lr| < 1, i.e. lr < 2 / 2 = 1, two over
# the largest curvature. At lr = 1 y flips sign forever; above, it grows.


def f(p):
    return 0.5 * (0.05 * p[0] ** 2 + 2 * p[1] ** 2)


def final_value(lr, steps=200):
    p = tinygan.tensor([-4.0, 1.5], requires_grad=True)
    opt = optim.SGD([p], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        f(p).backward()
        opt.step()
    return float(f(p.detach()).item())


values = {lr: final_value(lr) for lr in (0.9, 0.99, 1.0, 1.01)}
print("exercise 3: f after 200 steps:", ", ".join(f"lr {lr}: {v:.3g}" for lr, v in values.items()))
assert values[0.99] < 0.1 and values[1.0] > 2.2 and values[1.01] > values[1.0]
