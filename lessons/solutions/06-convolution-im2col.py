"""Worked solutions to the exercises of lesson 06, convolution as im2col.

Run from anywhere: python lessons/solutions/06-convolution-im2col.py
"""
import numpy as np

import tinygan
from tinygan import functional as F

rng = np.random.default_rng(0)

# Exercise 1. With dilation d the kernel taps sit d pixels apart: the strides of the two
# kernel axes become d times the pixel strides (s2 * d, s3 * d), and the kernel spans
# d (K - 1) + 1 pixels, which replaces K in the output size.


def im2col(x, k, stride=1, padding=0, dilation=1):
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, c, h, wd = x.shape
    span = dilation * (k - 1) + 1
    oh, ow = (h - span) // stride + 1, (wd - span) // stride + 1
    s0, s1, s2, s3 = x.strides
    view = np.lib.stride_tricks.as_strided(
        x, shape=(n, oh, ow, c, k, k),
        strides=(s0, s2 * stride, s3 * stride, s1, s2 * dilation, s3 * dilation))
    return view, view.reshape(n * oh * ow, c * k * k)


x = rng.standard_normal((2, 3, 11, 11))
w = rng.standard_normal((4, 3, 3, 3))
for s, p, d in [(1, 0, 2), (2, 1, 2), (1, 2, 3)]:
    view, cols = im2col(x, 3, s, p, d)
    y = (cols @ w.reshape(4, -1).T).reshape(2, view.shape[1], view.shape[2], 4).transpose(0, 3, 1, 2)
    formula = (11 + 2 * p - d * (3 - 1) - 1) // s + 1
    ref = F.conv2d(tinygan.tensor(x), tinygan.tensor(w), stride=s, padding=p, dilation=d).numpy()
    print(f"exercise 1: stride {s}, padding {p}, dilation {d}: output side {y.shape[-1]}, "
          f"formula {formula}, equals F.conv2d: {np.allclose(y, ref)}")
    assert y.shape[-1] == formula and np.allclose(y, ref)

# Exercise 2. Stride 1 and padding 1 keep 64x64: cols has one row per output pixel of
# every image, N*OH*OW = 64*64*64, and one column per kernel tap of every channel,
# C*K*K = 128*9: nine times the input, since every pixel is copied once per tap.
n, c, h, k = 64, 128, 64, 3
cols_bytes = (n * h * h) * (c * k * k) * 4
input_bytes = n * c * h * h * 4
print(f"exercise 2: cols {cols_bytes / 2**20:,.0f} MiB, input {input_bytes / 2**20:,.0f} MiB, "
      f"{cols_bytes / input_bytes:.0f} times as much")
assert cols_bytes == 9 * input_bytes

# Exercise 3. col2im for stride 1: every kernel offset (u, v) adds its column block back onto
# the pixels it was read from. The loop runs over the K*K offsets, never over pixels.


def col2im(cols, x_shape, k, padding=0):
    n, c, h, wd = x_shape
    hp, wp = h + 2 * padding, wd + 2 * padding
    oh, ow = hp - k + 1, wp - k + 1
    blocks = cols.reshape(n, oh, ow, c, k, k)
    out = np.zeros((n, c, hp, wp))
    for u in range(k):
        for v in range(k):
            out[:, :, u:u + oh, v:v + ow] += blocks[:, :, :, :, u, v].transpose(0, 3, 1, 2)
    return out[:, :, padding:padding + h, padding:padding + wd]


xs = rng.standard_normal((2, 3, 6, 6))
_, cols = im2col(xs, 3, padding=1)
c_rand = rng.standard_normal(cols.shape)
lhs = (cols * c_rand).sum()
rhs = (xs * col2im(c_rand, xs.shape, 3, padding=1)).sum()
print(f"exercise 3: <im2col(x), c> = {lhs:.6f}, <x, col2im(c)> = {rhs:.6f}")
assert np.isclose(lhs, rhs)
