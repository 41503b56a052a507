"""Worked solutions to the exercises of lesson 08, BatchNorm.

Run from anywhere: python lessons/solutions/08-batchnorm.py
(LESSON_QUICK=1, as the tests set it, trains 100 steps instead of 300.)
"""
import os

import numpy as np

import tinygan
from tinygan import data, nn, functional as F

rng = np.random.default_rng(0)
x = rng.standard_normal((16, 3)) * 2 + 5
g = rng.standard_normal((16, 3))                 # dL/dxhat (gamma = 1, beta = 0)
eps = 1e-5
mu, var = x.mean(0), x.var(0)
sigma = np.sqrt(var + eps)
xhat = (x - mu) / sigma

# Exercise 1. xhat_k = (x_k - mu) / sigma. Through mu: d xhat_k / d mu = -1/sigma, and
# d mu / d x_j = 1/m, so the path adds sum_k g_k (-1/sigma) (1/m) = -mean(g) / sigma.
# Through sigma^2: d xhat_k / d sigma^2 = -(x_k - mu) / (2 sigma^3) = -xhat_k / (2 sigma^2),
# and d sigma^2 / d x_j = 2 (x_j - mu) / m (its own dependence on mu sums to zero), so the
# path adds sum_k g_k (-xhat_k / (2 sigma^2)) 2 (x_j - mu) / m = -xhat_j mean(g xhat) / sigma.
direct = g / sigma
through_mu = -g.mean(0) / sigma
through_sigma = -xhat * (g * xhat).mean(0) / sigma
xt = tinygan.tensor(x, requires_grad=True)
F.batch_norm(xt, None, None, training=True, eps=eps).backward(tinygan.tensor(g))
print("exercise 1: direct + through mu + through sigma = tinygan's dL/dx:",
      np.allclose(direct + through_mu + through_sigma, xt.grad.numpy()))
assert np.allclose(direct + through_mu + through_sigma, xt.grad.numpy())

# Exercise 2. sum_k dL/dx_k = (m/sigma) (mean(g) - mean(g) - mean(xhat) mean(g xhat)) = 0,
# because mean(xhat) = 0: shifting every x_k by the same amount changes no xhat, so the
# loss cannot change along that direction. A sum as the check's output has g = 1, whose
# whole gradient is then zero: lesson 03's trap.
print("exercise 2: column sums of dL/dx:", np.abs(xt.grad.numpy().sum(0)).max() < 1e-10)
assert np.abs(xt.grad.numpy().sum(0)).max() < 1e-10

# Exercise 3. Lesson 04's MLP with BatchNorm1d after the first Linear. On test batches of 4,
# training mode normalises each batch by its own 4 samples' statistics (noisy, and every
# prediction depends on the other three); eval mode uses the running averages of the
# training batches: better, and the same answer for a digit whatever its neighbours.
STEPS = 100 if os.environ.get("LESSON_QUICK") == "1" else 300
train, test = data.load("mnist-10k"), data.load("mnist-10k", split="test")
tinygan.manual_seed(0)
model = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.BatchNorm1d(64), nn.ReLU(),
                      nn.Linear(64, 10))
loader = data.DataLoader(train, batch_size=64, shuffle=True, seed=0)
batches = iter(loader)
for step in range(STEPS):
    try:
        images, labels = next(batches)
    except StopIteration:
        batches = iter(loader)
        images, labels = next(batches)
    loss = F.cross_entropy(model(images), labels)
    for p in model.parameters():
        p.grad = None
    loss.backward()
    for p in model.parameters():
        p.data -= 0.1 * p.grad.data
x_test = test.images.astype(np.float32) / 127.5 - 1
accuracy = {}
with tinygan.no_grad():
    for mode in ("train", "eval"):
        model.train(mode == "train")
        predicted = np.concatenate([model(tinygan.tensor(x_test[i:i + 4])).numpy().argmax(1)
                                    for i in range(0, len(x_test), 4)])
        accuracy[mode] = float((predicted == test.labels).mean())
print(f"exercise 3: accuracy on batches of 4, training mode {accuracy['train']:.1%}, "
      f"eval mode {accuracy['eval']:.1%}")
assert accuracy["eval"] > accuracy["train"]
