"""Worked solutions to the exercises of lesson 09, the vanilla GAN.

Run from anywhere: python lessons/solutions/09-vanilla-gan.py
(LESSON_QUICK=1, as the tests set it, trains 30 GAN steps instead of 100.)
"""
import os

import numpy as np

import tinygan
from tinygan import data, optim, functional as F
from tinygan.gans.nets import mlp_discriminator, mlp_generator
from tinygan.plots import save_grid

QUICK = os.environ.get("LESSON_QUICK") == "1"
FIGURES = os.environ.get("LESSON_FIGURES", "my-figures")
os.makedirs(FIGURES, exist_ok=True)

# Exercise 1. The lesson's short run, once with each generator loss. The minimax loss
# log(1 - D(G(z))) is negative (it is minimised towards -inf). After 100 steps at the
# lesson's learning rates little differs: D has not learnt to reject the fakes yet
# (D(G(z)) is still near 0.5, loss_g = log(1 - 0.5) = -0.69), so both losses pass back
# similar gradients, and the samples are the same noise with a blob. The minimax loss
# fails once D wins: let D learn a hundred times faster than G (2e-3 against 2e-5, as
# tests/test_doctor.py does) and D(G(z)) drops to 0; G's gradient with the minimax loss
# (proportional to D(G(z))) vanishes, while the non-saturating one (proportional to
# 1 - D(G(z))) stays large.
# (The full trainer: python -m tinygan.train vanilla mnist-10k --minimax)


def short_run(minimax, lr_d=2e-4, lr_g=2e-4, steps=30 if QUICK else 100, z_dim=64):
    """The lesson's train_step; returns loss_g, D(G(z)) and the norm of G's gradient per
    step, and G."""
    tinygan.manual_seed(0)
    G = mlp_generator(z_dim, (1, 28, 28), hidden=(128, 256))
    D = mlp_discriminator((1, 28, 28), hidden=(256, 128))
    opt_g = optim.Adam(G.parameters(), lr=lr_g, betas=(0.5, 0.999))
    opt_d = optim.Adam(D.parameters(), lr=lr_d, betas=(0.5, 0.999))
    loader = data.DataLoader(data.load("mnist-10k"), batch_size=64, shuffle=True, seed=0)
    bce = F.binary_cross_entropy_with_logits
    history = []
    batches = iter(loader)
    for _ in range(steps):
        real, _ = next(batches)
        n = real.shape[0]
        fake = G(tinygan.randn(n, z_dim)).detach()
        loss_d = bce(D(real), tinygan.ones(n, 1)) + bce(D(fake), tinygan.zeros(n, 1))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        logits = D(G(tinygan.randn(n, z_dim)))
        loss_g = (-bce(logits, tinygan.zeros(n, 1)) if minimax
                  else bce(logits, tinygan.ones(n, 1)))
        opt_g.zero_grad()
        loss_g.backward()
        norm = float(np.sqrt(sum((p.grad.numpy() ** 2).sum() for p in G.parameters())))
        opt_g.step()
        history.append((loss_g.item(), F.sigmoid(logits).mean().item(), norm))
    return np.array(history), G


for lr_d, lr_g in [(2e-4, 2e-4), (2e-3, 2e-5)]:
    runs = {name: short_run(name == "minimax", lr_d, lr_g)
            for name in ("non-saturating", "minimax")}
    for name, (history, G) in runs.items():
        loss_g, d_fake, norm = history[-10:].mean(0)
        print(f"exercise 1: lr_d {lr_d:g}, lr_g {lr_g:g}, {name:14s}: over the last 10 steps "
              f"loss_g {loss_g:+.2f}, D(G(z)) {d_fake:.3f}, |G's gradient| {norm:.2g}")
        if lr_d == lr_g:
            with tinygan.no_grad():
                save_grid(G(tinygan.randn(32, 64)).numpy(),
                          os.path.join(FIGURES, f"09-{name}.png"), nrow=8, scale=2)
    assert runs["minimax"][0][-1, 0] < 0 < runs["non-saturating"][0][-1, 0]
strong_d = runs  # the last pair: D learns a hundred times faster
assert strong_d["minimax"][0][-10:, 1].mean() < 0.05
assert strong_d["minimax"][0][-10:, 2].mean() < strong_d["non-saturating"][0][-10:, 2].mean() / 10

# Exercise 2. With D*, V = E_data log(p_d / (p_d + p_g)) + E_g log(p_g / (p_d + p_g)).
# Add and subtract log 2 in each: log(p_d / (p_d + p_g)) = log(p_d / m) - log 2 with
# m = (p_d + p_g) / 2, so V = KL(p_d || m) + KL(p_g || m) - 2 log 2 = 2 JSD - log 4.
# Checked on two discrete distributions:
p_d, p_g = np.array([0.5, 0.3, 0.2]), np.array([0.1, 0.4, 0.5])
d_star = p_d / (p_d + p_g)
value = (p_d * np.log(d_star)).sum() + (p_g * np.log(1 - d_star)).sum()
m = (p_d + p_g) / 2
jsd = 0.5 * (p_d * np.log(p_d / m)).sum() + 0.5 * (p_g * np.log(p_g / m)).sum()
print(f"exercise 2: V(D*, G) = {value:.6f}, -log 4 + 2 JSD = {-np.log(4) + 2 * jsd:.6f}")
assert np.isclose(value, -np.log(4) + 2 * jsd)

# Exercise 3. If p_g = p_data, D* = p / (p + p) = 1/2 everywhere: logit 0, weight 0 and
# bias 0. Trained on samples, D gets close to that, up to the noise of two finite samples
# (the two sample sets differ a little, and D fits that difference).
tinygan.manual_seed(0)
rng = np.random.default_rng(0)
real = tinygan.tensor(rng.standard_normal((4096, 1)).astype(np.float32))
fake = tinygan.tensor(rng.standard_normal((4096, 1)).astype(np.float32))
D = tinygan.nn.Linear(1, 1)
opt = optim.Adam(D.parameters(), lr=0.05)
for step in range(300):
    loss = (F.binary_cross_entropy_with_logits(D(real), tinygan.ones(4096, 1))
            + F.binary_cross_entropy_with_logits(D(fake), tinygan.zeros(4096, 1)))
    opt.zero_grad()
    loss.backward()
    opt.step()
w, b = D.weight.item(), D.bias.item()
print(f"exercise 3: learned weight {w:.3f}, bias {b:.3f} (D* = 1/2: 0 and 0); "
      f"loss {loss.item():.4f} (2 log 2 = {2 * np.log(2):.4f})")
assert abs(w) < 0.1 and abs(b) < 0.1
