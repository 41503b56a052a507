"""Worked solutions to the exercises of lesson 07, transposed convolution.

Run from anywhere: python lessons/solutions/07-transposed-convolution.py
"""
import numpy as np

import tinygan
from tinygan import functional as F
from tinygan.testing import gradcheck

rng = np.random.default_rng(0)
w = tinygan.tensor(rng.standard_normal((1, 1, 3, 3)))
H, s, p = 5, 2, 1

# Exercise 1. C from conv2d's basis images (9 x 25), C' from conv_transpose2d's (25 x 9).
C = F.conv2d(tinygan.tensor(np.eye(H * H).reshape(-1, 1, H, H)), w, stride=s,
             padding=p).numpy().reshape(H * H, -1).T
Ct = F.conv_transpose2d(tinygan.tensor(np.eye(9).reshape(-1, 1, 3, 3)), w, stride=s,
                        padding=p).numpy().reshape(9, -1).T
print("exercise 1: C is", C.shape, "C' is", Ct.shape, "C' == C^T:", np.allclose(Ct, C.T))
assert np.allclose(Ct, C.T)

# Exercise 2. Out = (4 - 1) s - 2p + K + output_padding = 8 with s = 2, and even overlap
# needs K divisible by s: K = 4, p = 1; K = 2, p = 0; K = 6, p = 2 (all output_padding 0).
ones = tinygan.ones(1, 1, 4, 4)
for k, pad in [(4, 1), (2, 0), (6, 2)]:
    out = F.conv_transpose2d(ones, tinygan.ones(1, 1, k, k), stride=2, padding=pad).numpy()[0, 0]
    interior = sorted(set(out[2:-2, 2:-2].ravel().tolist()))
    print(f"exercise 2: kernel {k}, padding {pad}: {out.shape[0]}x{out.shape[1]}, interior "
          f"values {interior}")
    assert out.shape == (8, 8) and len(interior) == 1

# Exercise 3. y = C^T z, so dL/dz = C g = conv2d(g, w) for an output gradient g: the
# gradient of a transposed convolution is a convolution with the same weight.
z = tinygan.tensor(rng.standard_normal((2, 1, 3, 3)), requires_grad=True)
print("exercise 3: gradcheck:", gradcheck(lambda z: F.conv_transpose2d(z, w, stride=s, padding=p),
                                          [z]))
g = rng.standard_normal((2, 1, H, H))
F.conv_transpose2d(z, w, stride=s, padding=p).backward(tinygan.tensor(g))
as_conv = F.conv2d(tinygan.tensor(g), w, stride=s, padding=p).numpy()
lhs = (F.conv_transpose2d(z.detach(), w, stride=s, padding=p).numpy() * g).sum()
rhs = (z.detach().numpy() * as_conv).sum()
print(f"exercise 3: dL/dz equals conv2d(g, w): {np.allclose(z.grad.numpy(), as_conv)}; "
      f"<C^T z, g> = {lhs:.6f}, <z, C g> = {rhs:.6f}")
assert np.allclose(z.grad.numpy(), as_conv) and np.isclose(lhs, rhs)
