"""Convolution's products without the padding's zeros: the output cut into tiles.

im2col pads the image with zeros and gives every output pixel all KH*KW kernel taps, so
its GEMM also multiplies the taps that fall on the padding. Near the border those are
many: a 5x5 kernel with padding 2 over a 7x7 image reads the padding with 31% of its
taps, over 14x14 at stride 2 with 16%. The products skip them when the output is cut into
tiles whose pixels all see the image through the same taps:

    along one axis, output position o reads input o*s - p + t*d with tap t, which lies
    inside the image (0 <= . < size) for t in [t0(o), t1(o)). Consecutive positions with
    the same [t0, t1) form a band; a tile is a band of rows times a band of columns.

For 7x7 with a 5x5 kernel and padding 2 the bands are {0}, {1}, {2, 3, 4}, {5}, {6}, with
3, 4, 5, 4, 3 taps: 25 tiles, the middle one with all taps. Each tile is its own im2col
(a strided view of the unpadded channels-last image, copied) and its own GEMM with the
kernel's taps [t0, t1) on both axes. Without padding there is one tile, the whole output,
and this is plain im2col. On one core here it made dcgan-mnist's 5x5 convolutions 15-32%
faster (benchmarks/README.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import parallel


@dataclass(frozen=True)
class Tile:
    """Output rows [r0, r1) and columns [c0, c1), which read the kernel's taps
    [i0, i1) x [j0, j1), all inside the image."""
    r0: int
    r1: int
    c0: int
    c1: int
    i0: int
    i1: int
    j0: int
    j1: int

    @property
    def out(self):
        """The tile's index into a channels-last (N, OH, OW, C) array."""
        return (slice(None), slice(self.r0, self.r1), slice(self.c0, self.c1))

    @property
    def taps(self):
        """The tile's index into a channels-last (O, KH, KW, C) weight."""
        return (slice(None), slice(self.i0, self.i1), slice(self.j0, self.j1))

    def covers(self, kernel) -> bool:
        """Every tap of a kernel of this size reaches the image."""
        return (self.i0, self.i1, self.j0, self.j1) == (0, kernel[0], 0, kernel[1])

    @property
    def empty(self) -> bool:
        """No tap reaches the image (padding wider than the kernel)."""
        return self.i1 <= self.i0 or self.j1 <= self.j0


def bands(size: int, out_size: int, kernel: int, stride: int, padding: int,
          dilation: int) -> list[tuple[int, int, int, int]]:
    """(o0, o1, t0, t1): the output positions [o0, o1) along one axis whose taps inside
    the image are [t0, t1), consecutive positions with the same taps together."""
    found = []
    for o in range(out_size):
        first = o * stride - padding  # the input position of tap 0
        t0 = min(kernel, max(0, -(first // dilation)))  # ceil(-first / d), first < 0
        t1 = max(t0, min(kernel, (size - 1 - first) // dilation + 1))
        if found and found[-1][2:] == (t0, t1):
            found[-1] = (found[-1][0], o + 1, t0, t1)
        else:
            found.append((o, o + 1, t0, t1))
    return found


def tiles(in_hw, out_hw, kernel, stride, padding, dilation) -> list[Tile]:
    """The tiles of an output grid out_hw over an image in_hw (one when nothing pads)."""
    rows, cols = (bands(in_hw[a], out_hw[a], kernel[a], stride[a], padding[a], dilation[a])
                  for a in (0, 1))
    return [Tile(r0, r1, c0, c1, i0, i1, j0, j1)
            for r0, r1, i0, i1 in rows for c0, c1, j0, j1 in cols]


def channels_last(x):
    """x (N, C, H, W) as an (N, H, W, C) array: a view when x is channels-last in memory."""
    return parallel.ascontiguousarray(x.transpose(0, 2, 3, 1))


def cols(x_last, tile: Tile, stride, padding, dilation):
    """The im2col rows of one tile, (N*rows*cols, taps_h*taps_w*C), from the unpadded
    channels-last image: a strided view, copied once (split over threads by images)."""
    n, _, _, c = x_last.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    top = tile.r0 * sh - ph + tile.i0 * dh   # the image row of the tile's first tap
    left = tile.c0 * sw - pw + tile.j0 * dw
    s0, s1, s2, s3 = x_last.strides
    shape = (n, tile.r1 - tile.r0, tile.c1 - tile.c0, tile.i1 - tile.i0, tile.j1 - tile.j0, c)
    view = np.lib.stride_tricks.as_strided(
        x_last[:, top:, left:], shape=shape,
        strides=(s0, s1 * sh, s2 * sw, s1 * dh, s2 * dw, s3), writeable=False)
    return parallel.ascontiguousarray(view).reshape(-1, shape[3] * shape[4] * c)


def rows(y_last, tile: Tile):
    """The tile's pixels of a channels-last (N, OH, OW, C) array as rows (pixels, C)."""
    part = y_last[tile.out]
    return parallel.ascontiguousarray(part).reshape(-1, part.shape[-1])


def weight_last(weight):
    """A weight (A, B, KH, KW) as a channels-last (A, KH, KW, B) array, copied once for
    all tiles: a tile's taps of it are then runs of taps_w*B floats."""
    return np.ascontiguousarray(weight.transpose(0, 2, 3, 1))


def weight_rows(w_last, tile: Tile):
    """The tile's taps of a channels-last (A, KH, KW, B) weight as (A, taps_h*taps_w*B)."""
    part = w_last[tile.taps]
    return np.ascontiguousarray(part).reshape(part.shape[0], -1)


def _cols_of(x, stride, padding, dilation):
    x_last = channels_last(x)
    return lambda tile: cols(x_last, tile, stride, padding, dilation)


def conv2d(x, weight, out_hw, stride, padding, dilation, x_cols=None):
    """y (N, OH, OW, O), channels-last: each tile's im2col rows times its taps of W.
    `x_cols(tile)` gives the im2col rows when the caller has them already."""
    n, _, h, w = x.shape
    out_c = weight.shape[0]
    x_cols = x_cols or _cols_of(x, stride, padding, dilation)
    w_last = weight_last(weight)
    parts = tiles((h, w), out_hw, weight.shape[2:], stride, padding, dilation)
    if len(parts) == 1 and not parts[0].empty:  # nothing pads: the product is the output
        y = parallel.matmul(x_cols(parts[0]), weight_rows(w_last, parts[0]).T)
        return y.reshape(n, *out_hw, out_c)
    y = np.empty((n, *out_hw, out_c), dtype=np.result_type(x, weight))
    for tile in parts:
        if tile.empty:
            y[tile.out] = 0
            continue
        product = parallel.matmul(x_cols(tile), weight_rows(w_last, tile).T)
        y[tile.out] = product.reshape(y[tile.out].shape)
    return y


def conv2d_weight(x, gy, kernel, stride, padding, dilation, x_cols=None):
    """dW (O, KH, KW, C), channels-last: each tile's rows of gy, transposed, times its
    im2col rows, into its taps. `x_cols(tile)` gives the im2col rows when the caller
    has them already."""
    in_c, h, w = x.shape[1:]
    out_c = gy.shape[1]
    gy_last = channels_last(gy)
    x_cols = x_cols or _cols_of(x, stride, padding, dilation)
    parts = [t for t in tiles((h, w), gy.shape[2:], kernel, stride, padding, dilation)
             if not t.empty]
    # The tiles that see the whole kernel (the middle of the image) go first: the first
    # one's product is the gradient's first value, with no zeros to add it to. The
    # order is fixed, so each tap's sum is the same every run.
    parts.sort(key=lambda t: not t.covers(kernel))
    gw = None
    if not (parts and parts[0].covers(kernel)):
        gw = np.zeros((out_c, *kernel, in_c), dtype=np.result_type(x, gy))
    for tile in parts:
        product = parallel.matmul(rows(gy_last, tile).T, x_cols(tile)).reshape(
            out_c, tile.i1 - tile.i0, tile.j1 - tile.j0, in_c)
        if gw is None:
            gw = product
        else:
            gw[tile.taps] += product
    return gw


def conv2d_and_weight(x, weight, g, stride, padding, dilation):
    """(conv2d(x, W), conv2d_weight(x, g)) as (N, O, OH, OW) and (O, C, KH, KW) arrays,
    each tile's im2col rows built once for both: conv_transpose2d's two gradients."""
    made = {}
    x_cols = _cols_of(x, stride, padding, dilation)

    def cols_once(tile):  # the first product builds a tile's rows, the second takes them
        return made.pop(tile) if tile in made else made.setdefault(tile, x_cols(tile))
    y = conv2d(x, weight, g.shape[2:], stride, padding, dilation, cols_once)
    gw = conv2d_weight(x, g, weight.shape[2:], stride, padding, dilation, cols_once)
    return y.transpose(0, 3, 1, 2), parallel.ascontiguousarray(gw.transpose(0, 3, 1, 2))


def conv_transpose2d(x, weight, out_hw, stride, padding, dilation):
    """conv2d's adjoint in x, y (N, OH, OW, O) channels-last; weight (C, O, KH, KW).

    Tiles are over x, the grid of the conv2d whose adjoint this is, with y as its image:
    each tile's rows of x times its taps of W give every tap's contribution, which are
    added onto y where they land (col2im, for that tile's taps only)."""
    n, out_c = x.shape[0], weight.shape[1]
    x_last, w_last = channels_last(x), weight_last(weight)
    y = np.empty((n, *out_hw, out_c), dtype=np.result_type(x, weight))

    def zero(p):
        y[p] = 0
    parallel.for_each(zero, y)
    for tile in tiles(out_hw, x.shape[2:], weight.shape[2:], stride, padding, dilation):
        if not tile.empty:
            contrib = parallel.matmul(rows(x_last, tile), weight_rows(w_last, tile))
            _add_taps(y, contrib, tile, stride, padding, dilation)
    return y


def _add_taps(y, contrib, tile: Tile, stride, padding, dilation):
    """col2im for one tile: each tap's share of contrib (pixels, taps_h*taps_w*O) added
    onto the pixels of y that it lands on, one strided add per tap; threads take
    ranges of images."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    h, w = tile.r1 - tile.r0, tile.c1 - tile.c0
    contrib = contrib.reshape(y.shape[0], h, w, tile.i1 - tile.i0, tile.j1 - tile.j0, -1)

    def add(p):
        for i in range(tile.i0, tile.i1):
            top = tile.r0 * sh - ph + i * dh
            for j in range(tile.j0, tile.j1):
                left = tile.c0 * sw - pw + j * dw
                y[p, top:top + sh * (h - 1) + 1:sh, left:left + sw * (w - 1) + 1:sw] += \
                    contrib[p, :, :, i - tile.i0, j - tile.j0]
    parallel.for_each(add, y, work=contrib.size)
