"""Worked solutions to the exercises of lesson 14, conditional GANs.

Run from anywhere: python lessons/solutions/14-conditional-gan.py
(Exercises 1 and 2 train a cGAN for 300 steps, tens of minutes on two CPU cores, and check
what they find; LESSON_QUICK=1, as the tests set it, trains 3 steps to check that the code
runs, and checks nothing that needs a trained D.)
"""
import os

import numpy as np

import tinygan
from tinygan import data, gans
from tinygan.plots import save_grid

QUICK = os.environ.get("LESSON_QUICK") == "1"
FIGURES = os.environ.get("LESSON_FIGURES", "my-figures")
os.makedirs(FIGURES, exist_ok=True)
mnist = data.load("mnist-10k")
info = gans.DataInfo.of(mnist)
config = gans.defaults("cgan", info)
config.update(variant="cgan", dataset="mnist-10k", device="cpu", seed=0)

tinygan.manual_seed(0)
cgan = gans.build("cgan", config, info)
batches = iter(data.DataLoader(mnist, batch_size=16, shuffle=True, seed=0))
for _ in range(3 if QUICK else 300):
    cgan.step(lambda: next(batches))

# Exercise 1. Eight z, each with every label 0-9: a grid whose rows are digits and whose
# columns share a z. Along a column what z encodes stays: the stroke's thickness, slant
# and width, the "handwriting"; the label decides only which digit is written.
z = np.random.default_rng(1).standard_normal((8, config["z_dim"])).astype(np.float32)
rows = [cgan.generate(tinygan.tensor(z), tinygan.tensor(np.full(8, k))).numpy()
        for k in range(10)]
save_grid(np.concatenate(rows), os.path.join(FIGURES, "14-style-columns.png"), nrow=8)
ink = np.stack([r.reshape(8, -1).mean(1) for r in rows])      # (label, z): mean brightness
print(f"exercise 1: grid of 10 labels x 8 z in {FIGURES}/14-style-columns.png; mean "
      f"brightness varies {ink.std(1).mean():.3f} across z, {ink.std(0).mean():.3f} across labels")

# Exercise 2. D's score for real images with their own labels, and with shuffled labels.
# A trained conditional D scores the mismatched pairs lower: it has learnt what each digit
# looks like, not only what a digit looks like, which an unconditional D cannot express.
x = tinygan.tensor(mnist.images[:256].astype(np.float32) / 127.5 - 1)
y = mnist.labels[:256]
shuffled = np.roll(y, 1)
shuffled[shuffled == y] = (shuffled[shuffled == y] + 1) % 10  # every label now wrong
cgan.D.eval()
with tinygan.no_grad():
    matched = cgan.D(x, tinygan.tensor(y)).numpy().mean()
    mismatched = cgan.D(x, tinygan.tensor(shuffled)).numpy().mean()
print(f"exercise 2: D's mean logit on real digits, right labels {matched:.3f}, wrong labels "
      f"{mismatched:.3f}")
if not QUICK:
    assert mismatched < matched

# Exercise 3. The projection D scores head(h) + <E_D[y], h>. If every row of E_D is the same
# vector e, the second term is <e, h> whatever the label: D is an unconditional D whose head
# weight is w + e. If the rows are zero, it is head(h) alone: the label is ignored.
proj = gans.build("cgan", {**config, "projection": True}, info)
proj.D.eval()
xs, ys = x[:4], tinygan.tensor(y[:4])
e = np.random.default_rng(2).standard_normal(proj.D.embed.weight.shape[1]).astype(np.float32)
with tinygan.no_grad():
    proj.D.embed.weight.data[...] = e
    h = proj.D.features(xs, ys)
    same = [proj.D(xs, tinygan.tensor(np.full(4, k))).numpy() for k in range(10)]
    as_head = (h.numpy() @ (proj.D.body.head.weight.detach().numpy()[0] + e)
               + proj.D.body.head.bias.detach().numpy())[:, None]
    proj.D.embed.weight.data[...] = 0
    zero = proj.D(xs, ys).numpy()
    head_only = proj.D.body.head(h).numpy()
print("exercise 3: equal rows, every label scores the same:",
      all(np.allclose(s, same[0], atol=1e-4) for s in same),
      "and equals a head with weight w + e:", np.allclose(same[0], as_head, atol=1e-4),
      "| zero rows: D is its head:", np.allclose(zero, head_only, atol=1e-5))
assert all(np.allclose(s, same[0], atol=1e-4) for s in same)
assert np.allclose(same[0], as_head, atol=1e-4) and np.allclose(zero, head_only, atol=1e-5)
