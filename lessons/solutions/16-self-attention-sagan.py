"""Worked solutions to the exercises of lesson 16, self-attention and SAGAN.

Run from anywhere: python lessons/solutions/16-self-attention-sagan.py
(LESSON_QUICK=1, as the tests set it, trains exercise 2's stack 10 steps instead of 150.)
"""
import os

import numpy as np

import tinygan
from tinygan import data, nn, optim, functional as F

QUICK = os.environ.get("LESSON_QUICK") == "1"

# Exercise 1. attention() with C channels and N = H*W positions: f and g are 1x1
# convolutions C -> C/8 (N * C * C/8 multiply-adds each), and the scores s = f^T g take
# N * N * C/8. At 16x16 (N = 256) both parts are about a million; at 64x64 (N = 4,096) the
# scores alone are 268 million, and beta holds N^2 = 16.8 million numbers per image (64 MB
# in float32). Quadratic in the number of positions: the block goes where maps are small.
c = 128
for side in (16, 64):
    n = side * side
    convs, scores = 2 * n * c * (c // 8), n * n * (c // 8)
    print(f"exercise 1: {side}x{side}: f and g {convs:,}, scores {scores:,}, total "
          f"{convs + scores:,} multiply-adds; beta has {n * n:,} entries")
with tinygan.no_grad():
    assert nn.SelfAttention(c).attention(tinygan.randn(1, c, 16, 16)).shape == (1, 256, 256)

# Exercise 2. Train features + attention (gamma = 1) to map a digit to itself flipped
# left-right, then look at where a query attends. It does not learn to look at the mirror
# position, and cannot: the attention weights depend only on what the features at two
# positions are, never on where they are (f, g and h are 1x1 convolutions), so permuting
# the positions of the input only permutes the output. A flip needs to know where: with
# the positions given as extra input channels (as transformers add position encodings) it
# becomes possible.
tinygan.manual_seed(0)
digits = data.load("mnist-10k", split="test").images[:8].astype(np.float32) / 127.5 - 1
features = nn.Sequential(nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.LeakyReLU(0.1))
attn = nn.SelfAttention(16)
attn.gamma.data[...] = 1
head = nn.Conv2d(16, 1, 1)
params = [*features.parameters(), *attn.parameters(), *head.parameters()]
opt = optim.Adam(params, lr=3e-3)
x = tinygan.tensor(digits)
target = tinygan.tensor(np.ascontiguousarray(digits[:, :, ::2, ::2][:, :, :, ::-1]))  # 14x14
for step in range(10 if QUICK else 150):
    loss = F.mse_loss(head(attn(features(x))), target)
    opt.zero_grad()
    loss.backward()
    opt.step()
with tinygan.no_grad():
    h = features(x[:1])
    beta = attn.attention(h).numpy()[0]
query = 7 * 14 + 3                                   # output position (7, 3); mirror (7, 10)
looks = np.unravel_index(int(beta[:, query].argmax()), (14, 14))
print(f"exercise 2: loss {loss.item():.3f}; query (7, 3) looks hardest at {tuple(map(int, looks))} "
      f"with weight {beta[:, query].max():.4f} (uniform: {1 / 196:.4f})")
perm = np.random.default_rng(0).permutation(196)
with tinygan.no_grad():
    shuffled = tinygan.tensor(h.numpy().reshape(1, 16, 196)[:, :, perm].reshape(1, 16, 14, 14))
    out = attn(h).numpy().reshape(1, 16, 196)
    out_shuffled = attn(shuffled).numpy().reshape(1, 16, 196)
print("exercise 2: attention is permutation-equivariant:",
      np.allclose(out[:, :, perm], out_shuffled, atol=1e-5))
assert np.allclose(out[:, :, perm], out_shuffled, atol=1e-5)

# Exercise 3. D minimises E_r relu(1 - D(x)) + E_g relu(1 + D(x)); at each x it minimises
# p_r relu(1 - d) + p_g relu(1 + d). On [-1, 1] that is (p_r + p_g) + d (p_g - p_r), linear
# in d: smallest at d = 1 if p_r > p_g and d = -1 if p_g > p_r; outside [-1, 1] one term
# grows and the other stays 0. So D*(x) = sign(p_r(x) - p_g(x)) where one density dominates.
d = np.linspace(-3, 3, 6001)
for p_r, p_g in [(0.7, 0.2), (0.1, 0.4), (0.5, 0.45)]:
    cost = p_r * np.maximum(0, 1 - d) + p_g * np.maximum(0, 1 + d)
    best = d[np.argmin(cost)]
    print(f"exercise 3: p_r {p_r}, p_g {p_g}: the hinge is smallest at d = {best:+.2f}")
    assert best == np.sign(p_r - p_g)
