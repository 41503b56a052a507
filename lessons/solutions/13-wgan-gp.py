"""Worked solutions to the exercises of lesson 13, WGAN-GP.

Run from anywhere: python lessons/solutions/13-wgan-gp.py
"""
import numpy as np

import tinygan
from tinygan import nn, functional as F
from tinygan.gans.wgan_gp import gradient_penalty

rng = np.random.default_rng(0)
real = tinygan.tensor(rng.standard_normal((4, 1, 3, 3)))
fake = tinygan.tensor(rng.standard_normal((4, 1, 3, 3)))

# Exercise 1. For f(x) = <w, x> every gradient is w, every norm |w|, so L_GP = (|w| - 1)^2
# and dL_GP/dw = 2 (|w| - 1) w / |w| (the derivative of |w| is w / |w|).
w = tinygan.tensor(rng.standard_normal((1, 9)) * 0.5, requires_grad=True)
gradient_penalty(lambda x: F.linear(x.reshape(x.shape[0], -1), w), real, fake).backward()
wn = w.detach().numpy()
by_hand = 2 * (np.linalg.norm(wn) - 1) * wn / np.linalg.norm(wn)
print("exercise 1: autograd", w.grad.numpy()[0, :3].round(4), "by hand", by_hand[0, :3].round(4))
assert np.allclose(w.grad.numpy(), by_hand)

# Exercise 2. With BatchNorm in training mode after the Flatten, every score depends on the
# whole batch (through its mean and variance). Two things break. The lesson's trick,
# differentiating scores.sum(), now gives exactly 0: the head is linear, and a BatchNorm
# output summed over the batch is the same whatever the input (lessons 03 and 08), so the
# penalty is (0 - 1)^2 = 1 for any critic and teaches it nothing. And sample 0's own
# gradient, d f(x_hat)_0 / d x_hat_0, changes when only x_hat_1 changes.
tinygan.manual_seed(0)
critic = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.LeakyReLU(0.2), nn.Flatten(),
                       nn.BatchNorm1d(18), nn.Linear(18, 1)).double()


def gradients(x):
    """(d sum of scores / d x_hat_0, d score_0 / d x_hat_0)."""
    x = tinygan.tensor(x, requires_grad=True)
    (of_sum,) = tinygan.grad(critic(x).sum(), x)
    (of_own,) = tinygan.grad(critic(x)[0].sum(), x)
    return of_sum.numpy()[0], of_own.numpy()[0]


x_hat = rng.standard_normal((4, 1, 3, 3))
changed = x_hat.copy()
changed[1] += 1.0                                   # only sample 1 moves
(sum_before, own_before), (_, own_after) = gradients(x_hat), gradients(changed)
moved = np.abs(own_before - own_after).max()
print(f"exercise 2: the gradient of the summed scores at sample 0 is "
      f"{np.abs(sum_before).max():.1g} at most; sample 0's own gradient moved by "
      f"{moved:.3g} when only sample 1 changed")
assert np.abs(sum_before).max() < 1e-12 and moved > 1e-3
critic.eval()                                        # running statistics: per sample again
assert np.allclose(gradients(x_hat)[1], gradients(changed)[1])

# Exercise 3. f(x) = |x|^2 / 2 has gradient x. A batch of N samples each at distance 1 from
# 0 has every per-sample norm 1: penalty 0, the critic is exactly what WGAN-GP asks for. One
# norm over the whole batch is sqrt(N): penalty (sqrt(N) - 1)^2, which punishes a perfect
# critic, and by more the larger the batch.
n = 64
x = rng.standard_normal((n, 1, 3, 3))
x /= np.linalg.norm(x.reshape(n, -1), axis=1).reshape(n, 1, 1, 1)
xt = tinygan.tensor(x, requires_grad=True)
(g,) = tinygan.grad((xt * xt).sum() / 2, xt)
per_sample = ((np.linalg.norm(g.numpy().reshape(n, -1), axis=1) - 1) ** 2).mean()
whole_batch = (np.linalg.norm(g.numpy()) - 1) ** 2
print(f"exercise 3: per-sample penalty {per_sample:.3g}, one norm over the batch "
      f"{whole_batch:.3g} = (sqrt({n}) - 1)^2 = {(np.sqrt(n) - 1) ** 2:.3g}")
assert per_sample < 1e-20 and np.isclose(whole_batch, (np.sqrt(n) - 1) ** 2)
