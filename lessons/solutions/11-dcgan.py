"""Worked solutions to the exercises of lesson 11, DCGAN.

Run from anywhere: python lessons/solutions/11-dcgan.py
(Exercise 3 trains two DCGANs for 300 steps, about half an hour on two CPU cores;
LESSON_QUICK=1, as the tests set it, trains 3 steps of each to check that the code runs.)
"""
import os

import numpy as np

import tinygan
from tinygan import data, gans, nn
from tinygan.gans.nets import dcgan_generator
from tinygan.plots import save_grid

QUICK = os.environ.get("LESSON_QUICK") == "1"
FIGURES = os.environ.get("LESSON_FIGURES", "my-figures")
os.makedirs(FIGURES, exist_ok=True)

# Exercise 1. The paper's 64x64 generator: z (100) -> 4x4x512 -> 8 -> 16 -> 32 -> 64x64x3,
# transposed convolutions of kernel 4 without biases. The second one holds the most,
# 512 x 256 x 4 x 4 = 2,097,152 weights, more than the first (100 x 512 x 16 = 819,200):
# weights grow with in x out channels, and the channels are widest at the small sizes.
G64 = dcgan_generator(100, (3, 64, 64))
per_layer = [(f"{i}: {type(m).__name__}", sum(p.numel() for p in m.parameters()))
             for i, m in enumerate(G64) if any(True for _ in m.parameters())]
total = sum(n for _, n in per_layer)
biggest = max(per_layer, key=lambda item: item[1])
print(f"exercise 1: {total:,} parameters; the largest layer is {biggest[0]} with {biggest[1]:,}")
assert biggest[1] == 512 * 256 * 4 * 4

# Exercise 2. Nearest-neighbour upsampling by 2 and a stride-1 convolution of kernel 5 with
# padding 2 (which keeps the size): 7 -> 14 -> 28 exactly, with no output_padding to think
# about, and every output pixel gets the same number of kernel taps (no checkerboard).
G_up = nn.Sequential(
    nn.Linear(100, 7 * 7 * 256, bias=False), nn.Unflatten(1, (256, 7, 7)),
    nn.BatchNorm2d(256), nn.LeakyReLU(0.2),
    nn.Conv2d(256, 128, 5, 1, 2, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
    nn.Upsample(scale_factor=2), nn.Conv2d(128, 64, 5, 1, 2, bias=False),
    nn.BatchNorm2d(64), nn.LeakyReLU(0.2),
    nn.Upsample(scale_factor=2), nn.Conv2d(64, 1, 5, 1, 2), nn.Tanh())
x = tinygan.randn(2, 100)
with tinygan.no_grad():
    for layer in G_up:
        x = layer(x)
print("exercise 2: the upsampling generator makes", tuple(x.shape))
assert x.shape == (2, 1, 28, 28)

# Exercise 3. The same seed and 300 steps with betas (0.9, 0.999) instead of (0.5, 0.999).
# Radford et al. (2016, sec. 4) found beta1 = 0.9 made training oscillate and be unstable:
# with more momentum, each player keeps moving in the direction that was good against the
# opponent of a few steps ago. Compare the two grids (same z), and the spread of D's
# margin D(x) - D(G(z)) over the last steps, which swings more when the game oscillates.
steps = 3 if QUICK else 300
mnist = data.load("mnist-10k")
info = gans.DataInfo.of(mnist)
for betas in [(0.5, 0.999), (0.9, 0.999)]:
    config = gans.defaults("dcgan", info)
    config.update(variant="dcgan", dataset="mnist-10k", device="cpu", seed=0, betas=betas)
    tinygan.manual_seed(0)
    gan = gans.build("dcgan", config, info)
    batches = iter(data.DataLoader(mnist, batch_size=16, shuffle=True, seed=0))
    margins = []
    for _ in range(steps):
        losses = gan.step(lambda: next(batches))
        margins.append(losses["d_real"] - losses["d_fake"])
    path = os.path.join(FIGURES, f"11-betas-{betas[0]}.png")
    save_grid(gan.samples(32, seed=1), path, nrow=8)
    tail = np.array(margins[-50:])
    print(f"exercise 3: betas {betas}: D(x) - D(G(z)) over the last {len(tail)} steps, "
          f"mean {tail.mean():.2f}, std {tail.std():.2f}; samples in {path}")
    assert os.path.exists(path)
