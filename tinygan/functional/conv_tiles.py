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
and this is plain im2col. On one core here dcgan-mnist's products fell from 31.6 to 24.2
GFLOP a step and its step from 438.8 to 383.4 ms (benchmarks/README.md).

Pieces and threads: each tile is cut into runs of images (pieces) of at most PIECE_BYTES
of im2col rows and products, so that a piece's copy is still in cache when its product
reads it. In conv2d and its weight gradient each thread takes the next piece not yet
taken, largest first, whole (copy, product, output put in place: parallel.share); the
weight gradient's products are then summed in the pieces' order, by output channels.
A convolution small enough to be one piece (attention's 1x1 convolutions) is cut into
MIN_PIECES runs of images, so that it is not one thread's job. The transposed conv's
adds overlap between tiles, so there the threads take groups of images, every tile of
them. Pieces and groups are cut the same on any thread count
(BLAS sums a row otherwise when a cut moves it within its kernel's tile of rows, and a
cut to one row runs as gemv: none leaves one image alone), each element is one BLAS
call's sum and the pieces add up in one fixed order, so the result has the same bits
whatever the thread count.
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

    @property
    def pixels(self) -> int:
        """Output pixels of one image in the tile."""
        return (self.r1 - self.r0) * (self.c1 - self.c0)

    @property
    def n_taps(self) -> int:
        """Kernel taps the tile reads."""
        return (self.i1 - self.i0) * (self.j1 - self.j0)


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


def weight_last(weight):
    """A weight (A, B, KH, KW) as a channels-last (A, KH, KW, B) array, copied once for
    all tiles: a tile's taps of it are then runs of taps_w*B floats."""
    return np.ascontiguousarray(weight.transpose(0, 2, 3, 1))


BY_TAPS_BLOCK = 32  # output channels weight_by_taps copies at a time


def weight_by_taps(weight):
    """A weight (A, B, KH, KW) as a (KH, KW, B, A) array, copied once for all tiles: a
    tile's taps of it, as a (taps_h*taps_w*B, A) matrix, are then rows in memory order.
    The conv's products take it as their right operand that way round: a column-ordered
    one (the transpose of weight_rows) ran M=64 products at 67 GFLOP/s against 91 on
    one core here. Copied BY_TAPS_BLOCK of A at a time: in one copy the reads of a
    (256, 256, 4, 4) weight, 16 KB apart, took 3.0 ms on one core here, against 0.8 in
    blocks of 8. Blocks of 32 write runs of 128 bytes, two whole cache lines, where 8
    wrote half of one: on an Intel Xeon (one core) (512, 256, 4, 4) took 3.6 ms against
    9.1 in blocks of 8 (16: 5.5, 64: 3.1), (256, 256, 4, 4) 1.5 against 3.2, (256, 128, 5,
    5) 1.3 against 2.8, a flipped (256, 512, 3, 3) 1.4 against 2.4. Threads take ranges of
    A (a large weight's copy was a fifth of its conv's time on two), from 262,144 floats a
    thread, a transposing copy counting twice: (256, 128, 5, 5) took 2.35 ms on one thread
    and 1.25 on two (Zen 3), (128, 64, 5, 5) 0.35 and 0.50 split, so it is not."""
    out = np.empty((*weight.shape[2:], weight.shape[1], weight.shape[0]), dtype=weight.dtype)

    def copy(part):
        for a in range(part.start, part.stop, BY_TAPS_BLOCK):
            b = min(a + BY_TAPS_BLOCK, part.stop)
            out[..., a:b] = weight[a:b].transpose(2, 3, 1, 0)
    parallel.run(copy, parallel.parts(weight.shape[0], 2 * weight.size, align=BY_TAPS_BLOCK))
    return out


def column_bands(w, tiles, axis: int) -> dict:
    """{(j0, j1): w's kernel columns [j0, j1) (its axis `axis`)} for the tiles' bands of
    columns, each copied once for all the tiles that read it (w itself where a band is
    every column). A tile's taps are then whole rows of its band, and its matrix a view:
    a 5x5 kernel over 7x7 images has 25 tiles but 5 bands of columns, one of them every
    column."""
    bands = {}
    for t in tiles:
        if (t.j0, t.j1) not in bands:
            index = [slice(None)] * w.ndim
            index[axis] = slice(t.j0, t.j1)
            bands[t.j0, t.j1] = w if (t.j0, t.j1) == (0, w.shape[axis]) else (
                np.ascontiguousarray(w[tuple(index)]))
    return bands


def weight_columns(bands, tile: Tile):
    """The tile's taps of a (KH, KW, B, A) weight, from its column_bands, as a
    (taps_h*taps_w*B, A) matrix: a view."""
    part = bands[tile.j0, tile.j1][tile.i0:tile.i1]
    return part.reshape(-1, part.shape[-1])


def weight_rows(bands, tile: Tile):
    """The tile's taps of a channels-last (A, KH, KW, B) weight, from its column_bands,
    as (A, taps_h*taps_w*B): a view, each row one run of memory (BLAS takes the rows'
    stride)."""
    part = bands[tile.j0, tile.j1][:, tile.i0:tile.i1]
    return part.reshape(part.shape[0], -1)


def receptive_fields(x_last, tile: Tile, stride, padding, dilation):
    """The tile's receptive fields in the unpadded channels-last image x_last, a strided
    view (N, rows, cols, taps_h, taps_w, C): copied, it is the tile's im2col matrix."""
    n, _, _, c = x_last.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    top = tile.r0 * sh - ph + tile.i0 * dh   # the image row of the tile's first tap
    left = tile.c0 * sw - pw + tile.j0 * dw
    s0, s1, s2, s3 = x_last.strides
    shape = (n, tile.r1 - tile.r0, tile.c1 - tile.c0, tile.i1 - tile.i0, tile.j1 - tile.j0, c)
    return np.lib.stride_tricks.as_strided(
        x_last[:, top:, left:], shape=shape,
        strides=(s0, s1 * sh, s2 * sw, s1 * dh, s2 * dw, s3), writeable=False)


@dataclass(frozen=True)
class Piece:
    """A tile over images [n0, n1) of the batch: one im2col copy and one product."""
    tile: Tile
    n0: int
    n1: int


PIECE_BYTES = 4 * 2 ** 20
# runs of images a convolution that fits one piece is cut into (_pieces): sagan-cifar10's
# 1x1 weight gradients 28.3 -> 21.4 ms a step on two threads (one piece: one thread's)
MIN_PIECES = 4
GROUPS = 2  # groups of images a transposed conv's batch is cut into, at most (conv_transpose2d)


def _pieces(parts, n: int, per_image, itemsize: int) -> list[Piece]:
    """Each tile cut into runs of images whose im2col rows and products (`per_image(tile)`
    floats an image) take at most PIECE_BYTES, so that the product finds them in cache
    (the last level, 32 MB here, is shared by the cores): D's 64-channel 4x4 layer on
    32x32 images, whose middle tile is 0.8 MB an image, took its forward from 25.0 to
    20.8 ms in runs of 4 images on one core here. Cut the same on any thread count, so
    the weight gradient, summed over the pieces in order, has the same bits on all."""
    found = []
    for t in parts:
        m = max(1, PIECE_BYTES // max(1, per_image(t) * itemsize))
        found += [Piece(t, a, min(a + m, n)) for a in range(0, n, m)]
    if len(found) == 1 and n > 1:  # the whole convolution one job: cut for the threads
        count = min(MIN_PIECES, n)
        bounds = [n * i // count for i in range(count + 1)]
        found = [Piece(parts[0], a, b) for a, b in zip(bounds, bounds[1:])]
    return found


def _piece_im2col(x_last, piece: Piece, stride, padding, dilation):
    """A piece's im2col matrix (images*rows*cols, taps_h*taps_w*C), copied."""
    fields = np.ascontiguousarray(receptive_fields(x_last[piece.n0:piece.n1], piece.tile,
                                                   stride, padding, dilation))
    return fields.reshape(-1, fields[0, 0, 0].size)


def _piece_rows(a_last, piece: Piece):
    """A piece's pixels of a channels-last (N, OH, OW, O) array as rows, copied."""
    rows = np.ascontiguousarray(a_last[piece.n0:piece.n1][piece.tile.out])
    return rows.reshape(-1, rows.shape[-1])


WAVE_BYTES = 16 * 2 ** 20


def _waves(pieces, floats):
    """The pieces in groups handed to the threads together.

    On one thread, one piece at a time. On several, as many pieces as keep what a
    group holds until it is done (`floats(piece)`) within WAVE_BYTES: all 25 tiles at
    once held 47 MB of weight-gradient products on a 7x7 image with 256 and 128
    channels, and raised dcgan-mnist's peak memory from 104 to 191 MB."""
    if parallel.num_threads() == 1:
        return [[p] for p in pieces]
    waves, total = [], 0
    for piece in pieces:
        bytes_ = floats(piece) * 4
        if not waves or total + bytes_ > WAVE_BYTES:
            waves.append([])
            total = 0
        waves[-1].append(piece)
        total += bytes_
    return waves


def conv2d(x, weight, out_hw, stride, padding, dilation, out=None):
    """y (N, OH, OW, O), channels-last: each tile's im2col rows times its taps of W,
    written into `out` (any view of that shape) when it is given."""
    y, _ = _conv2d_and_weight(x, weight, None, out_hw, stride, padding, dilation, out=out)
    return y


def conv2d_weight(x, gy, kernel, stride, padding, dilation):
    """dW (O, KH, KW, C), channels-last: each tile's rows of gy, transposed, times its
    im2col rows, summed into its taps."""
    _, gw = _conv2d_and_weight(x, None, gy, gy.shape[2:], stride, padding, dilation, kernel)
    return gw


def conv2d_and_weight(x, weight, g, stride, padding, dilation):
    """(conv2d(x, W), conv2d_weight(x, g)) as (N, O, OH, OW) and (O, C, KH, KW) arrays,
    each tile's im2col rows built once for both: conv_transpose2d's two gradients."""
    y, gw = _conv2d_and_weight(x, weight, g, g.shape[2:], stride, padding, dilation)
    return y.transpose(0, 3, 1, 2), parallel.ascontiguousarray(gw.transpose(0, 3, 1, 2))


def _conv2d_and_weight(x, weight, g, out_hw, stride, padding, dilation, kernel=None,
                       out=None):
    """conv2d(x, weight) when weight is given, and its weight gradient given g, the
    gradient of its output, when g is: both channels-last, from one im2col per tile."""
    n, in_c = x.shape[:2]
    kernel = weight.shape[2:] if weight is not None else kernel
    every = tiles(x.shape[2:], out_hw, kernel, stride, padding, dilation)
    # The tiles that see the whole kernel (the middle of the image) go first: the first
    # one's product is the weight gradient's first value, with no zeros to add it to.
    parts = sorted((t for t in every if not t.empty), key=lambda t: not t.covers(kernel))
    x_last = channels_last(x)
    g_last = channels_last(g) if g is not None else None
    y = gw = w_bands = None
    if weight is not None:
        w_bands = column_bands(weight_by_taps(weight), parts, axis=1)
        y = np.empty((n, *out_hw, weight.shape[0]), dtype=np.result_type(x, weight)) if (
            out is None) else out
        for t in every:
            if t.empty:  # padding wider than the kernel: no tap reaches the image
                y[t.out] = 0
    start = parts[0] if parts and parts[0].covers(kernel) else None
    if g is not None:
        gw = np.empty((g.shape[1], *kernel, in_c), dtype=np.result_type(x, g))
        if start is None:
            gw[...] = 0
    out_c = (weight.shape[0] if weight is not None else 0, g.shape[1] if g is not None else 0)

    def per_image(t):  # a tile's im2col rows and products for one image
        return t.pixels * (t.n_taps * in_c + out_c[0])

    pieces = _pieces(parts, n, per_image, x.dtype.itemsize)
    first = pieces[0] if start is not None else None  # dW's first value

    def held(p):  # what a piece leaves until its group is done: its gradient's product
        return out_c[1] * p.tile.n_taps * in_c
    for wave in _waves(pieces, held):
        grads = [None] * len(wave)

        largest = sorted(range(len(wave)), key=lambda i: -(wave[i].n1 - wave[i].n0)
                         * per_image(wave[i].tile))

        def work(job):  # a piece whole, its im2col still in cache for its products
            i = largest[job]
            p = wave[i]
            cols = _piece_im2col(x_last, p, stride, padding, dilation)
            if weight is not None:
                w_rows = weight_columns(w_bands, p.tile)  # a view of its band
                target = y[p.n0:p.n1][p.tile.out]
                if target.flags.c_contiguous:  # the piece's pixels are whole images
                    parallel.multiply(cols, w_rows, out=target.reshape(len(cols), -1))
                else:
                    target[...] = parallel.multiply(cols, w_rows).reshape(target.shape)
            if g is not None:
                grads[i] = parallel.multiply(_piece_rows(g_last, p).T, cols)
        parallel.share(work, len(wave))
        if g is not None:
            _add_taps_of_weight(gw, wave, grads, first)
    return y, gw


def _add_taps_of_weight(gw, wave, products, first) -> None:
    """Each piece's product (O, taps_h*taps_w*C) added onto its tile's taps of dW
    (O, KH, KW, C), in order; the piece `first`'s, whose tile sees the whole kernel, is
    dW's first value. Split over threads by output channels."""
    def channels(q):
        for p, product in zip(wave, products):
            if p is first:
                gw[q] = product[q].reshape(gw[q].shape)
            else:
                gw[q][p.tile.taps] += product[q].reshape(gw[q][p.tile.taps].shape)
    parallel.for_each(channels, gw, work=sum(product.size for product in products))


def conv_transpose2d(x, weight, out_hw, stride, padding, dilation):
    """conv2d's adjoint in x, y (N, OH, OW, O) channels-last; weight (C, O, KH, KW).

    Tiles are over x, the grid of the conv2d whose adjoint this is, with y as its image:
    each tile's rows of x times its taps of W give every tap's contribution, which are
    added onto y where they land (col2im, for that tile's taps only). The tiles' adds
    overlap, so the batch is cut into groups of images (at most GROUPS of them, none
    larger than a tile's run), and each thread takes the next group not yet taken,
    whole: tile by tile, its images in runs that keep a run's rows and products within
    PIECE_BYTES. Each image gets its adds in the tiles' order, and the products' rows
    are cut the same way, on any thread count: the same bits (BLAS rounds a row
    otherwise when a cut moves it within its kernel's tile of rows, parallel._Product;
    threads taking ranges of the images made that depend on their count)."""
    n, in_c, out_c = x.shape[0], x.shape[1], weight.shape[1]
    x_last = channels_last(x)
    parts = [t for t in tiles(out_hw, x.shape[2:], weight.shape[2:], stride, padding,
                              dilation) if not t.empty]
    w_bands = column_bands(weight_last(weight), parts, axis=2)
    y = np.empty((n, *out_hw, out_c), dtype=np.result_type(x, weight))
    per_image = {t: t.pixels * (in_c + t.n_taps * out_c) for t in parts}

    run = {t: max(2, PIECE_BYTES // (per_image[t] * y.itemsize)) for t in parts}
    groups = _runs(slice(0, n), min([-(-n // GROUPS)] + list(run.values())))

    def work(job):  # every tile's adds onto a group's images, in the tiles' order
        images = groups[job]
        y[images] = 0
        for t in parts:
            rows = weight_rows(w_bands, t)
            for r in _runs(images, run[t]):
                x_rows = np.ascontiguousarray(x_last[r][t.out]).reshape(-1, in_c)
                _add_taps(y[r], parallel.multiply(x_rows, rows), t, stride, padding,
                          dilation)
    parallel.share(work, len(groups))
    return y


def _runs(images: slice, size: int) -> list[slice]:
    """images in runs of `size`, none of one image unless `images` is one: a product of
    one row is BLAS's gemv, whose sums round otherwise than its gemm's."""
    bounds = list(range(images.start, images.stop, size)) + [images.stop]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
        del bounds[-2]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def conv_transpose2d_by_phases(x, weight, out_hw, stride, padding):
    """conv_transpose2d (dilation 1) as stride*stride stride-1 convolutions, one for
    each phase of the output (its pixels at a given offset modulo the stride), each
    written by tiles into its pixels of y: a gather, with no adds.

    Along one axis, output o = s q + a (0 <= a < s) gets x[i] W[t] from every i s - p + t
    = o, so t = r + s m with r = (a + p) mod s, and i = q + c - m with c = (a + p - r)/s:
    phase a is conv2d of x with the taps r, r + s, ... (M of them) reversed, stride 1,
    padding M - 1 - c. Its products have K = M_h M_w C against the scatter's C, which is
    what pays where the channels are few: 64 to 64 channels from 16x16 to 32x32 took
    31.8 ms against the scatter's 47.5 on one core here (benchmarks/README.md)."""
    n, out_c = x.shape[0], weight.shape[1]
    x = channels_last(x).transpose(0, 3, 1, 2)  # copied once, not once per phase
    y = np.empty((n, *out_hw, out_c), dtype=np.result_type(x, weight))
    for a in range(stride[0]):
        r, m, pad = _phase(a, weight.shape[2], stride[0], padding[0])
        for b in range(stride[1]):
            r_w, m_w, pad_w = _phase(b, weight.shape[3], stride[1], padding[1])
            view = y[:, a::stride[0], b::stride[1]]
            if m == 0 or m_w == 0:  # a kernel narrower than the stride misses this phase
                view[...] = 0
            elif view.size:
                taps = weight[:, :, r::stride[0], r_w::stride[1]][:, :, ::-1, ::-1]
                conv2d(x, taps.transpose(1, 0, 2, 3), view.shape[1:3], (1, 1),
                       (pad, pad_w), (1, 1), out=view)
    return y


def _phase(a: int, kernel: int, stride: int, padding: int) -> tuple[int, int, int]:
    """(r, M, padding) of output phase a along one axis: its first tap, how many taps
    it reads (r, r + s, ...), and the padding of its stride-1 conv2d."""
    r = (a + padding) % stride
    m = len(range(r, kernel, stride))
    return r, m, m - 1 - (a + padding - r) // stride


def _add_taps(y, contrib, tile: Tile, stride, padding, dilation):
    """col2im for one tile: each tap's share of contrib (pixels, taps_h*taps_w*O) added
    onto the pixels of y that it lands on, one strided add per tap."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    h, w = tile.r1 - tile.r0, tile.c1 - tile.c0
    contrib = contrib.reshape(y.shape[0], h, w, tile.i1 - tile.i0, tile.j1 - tile.j0, -1)
    for i in range(tile.i0, tile.i1):
        top = tile.r0 * sh - ph + i * dh
        for j in range(tile.j0, tile.j1):
            left = tile.c0 * sw - pw + j * dw
            y[:, top:top + sh * (h - 1) + 1:sh, left:left + sw * (w - 1) + 1:sw] += \
                contrib[:, :, :, i - tile.i0, j - tile.j0]
