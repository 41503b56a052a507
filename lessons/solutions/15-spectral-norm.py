"""Worked solutions to the exercises of lesson 15, spectral normalisation.

Run from anywhere: python lessons/solutions/15-spectral-norm.py
"""
import numpy as np

import tinygan
from tinygan import nn

rng = np.random.default_rng(0)

# Exercise 1. Pure noise: the top singular values of a 64x32 Gaussian matrix are close
# ((sigma_2/sigma_1)^2 about 0.9), so each step shrinks the error only by about 0.9, and
# reaching 1e-6 takes about a hundred steps instead of 7. One step per training step is
# still enough in a GAN: the weights change a little per step, so last step's u is already
# a good start (a warm start), and the iteration carries on, one step per training step,
# over thousands of steps.
W = rng.standard_normal((64, 32))
s = np.linalg.svd(W, compute_uv=False)
u = rng.standard_normal(64)
u /= np.linalg.norm(u)
steps = 0
while True:
    steps += 1
    v = W.T @ u
    v /= np.linalg.norm(v)
    u = W @ v
    u /= np.linalg.norm(u)
    if abs(u @ W @ v - s[0]) / s[0] < 1e-6:
        break
print(f"exercise 1: (sigma_2/sigma_1)^2 = {(s[1] / s[0]) ** 2:.3f}; error below 1e-6 after "
      f"{steps} iterations")
assert (s[1] / s[0]) ** 2 > 0.6 and steps > 20

# Exercise 2. spectral_norm divides by the largest singular value of the weight reshaped to
# a matrix (dim, everything else), and it bounds the layer's gain |y| / |x| only when that
# matrix is the layer's map: rows indexed by the output channels, the kernel taps grouped
# with the input channels. ConvTranspose2d stores (in, out, kh, kw), so dim=1 brings `out`
# first. With dim 0 the matrix would be (in, out*kh*kw): the taps grouped with the outputs,
# a different matrix (not the transpose) with a different sigma.
layer = nn.utils.spectral_norm(nn.ConvTranspose2d(3, 5, 4, 2, 1))
for _ in range(50):
    layer(tinygan.randn(2, 3, 8, 8))
as_matrix = np.moveaxis(layer.weight.detach().numpy(), 1, 0).reshape(5, -1)   # (out, in*kh*kw)
print(f"exercise 2: sigma of the weight as (out, in*kh*kw): "
      f"{np.linalg.svd(as_matrix, compute_uv=False)[0]:.4f}")
wrong = layer.weight.detach().numpy().reshape(3, -1)                          # (in, out*kh*kw)
print(f"exercise 2: the same weight as (in, out*kh*kw) has sigma "
      f"{np.linalg.svd(wrong, compute_uv=False)[0]:.4f}")
assert abs(np.linalg.svd(as_matrix, compute_uv=False)[0] - 1) < 1e-3
assert abs(np.linalg.svd(wrong, compute_uv=False)[0] - 1) > 1e-2

# Exercise 3. |ABx| <= sigma(A) |Bx| <= sigma(A) sigma(B) |x| for every x, so
# sigma(AB) = max |ABx| / |x| <= sigma(A) sigma(B). A network of layers W_l / sigma(W_l)
# with 1-Lipschitz activations (ReLU, LeakyReLU, tanh: |f(a) - f(b)| <= |a - b|) is a
# composition of 1-Lipschitz maps, hence 1-Lipschitz. Checked on random matrices:
A, B = rng.standard_normal((6, 5)), rng.standard_normal((5, 4))
sigma = lambda M: np.linalg.svd(M, compute_uv=False)[0]                      # noqa: E731
print(f"exercise 3: sigma(AB) = {sigma(A @ B):.3f} <= sigma(A) sigma(B) = "
      f"{sigma(A) * sigma(B):.3f}")
assert sigma(A @ B) <= sigma(A) * sigma(B)
