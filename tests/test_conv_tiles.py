"""Convolution by tiles (functional/conv_tiles.py): the products skip exactly the taps
that fall on the padding, and give what im2col over the padded image gives.

The public ops are checked against textbook loops in test_functional_conv.py, on both
of conv_transpose2d's paths; here the tiles themselves, on larger grids of geometry.
"""
import itertools

import numpy as np
import pytest

import tinygan
from grad_inputs import away
from tinygan import parallel
from tinygan.functional import conv, conv_tiles
from test_functional_conv import conv2d_reference, conv_transpose2d_reference, out_size


def test_the_bands_of_a_5x5_kernel_over_7_pixels():
    # output 0 reads the image with taps 2-4 only (0 and 1 land on the padding), ...
    assert conv_tiles.bands(7, 7, 5, 1, 2, 1) == [(0, 1, 2, 5), (1, 2, 1, 5), (2, 5, 0, 5),
                                                  (5, 6, 0, 4), (6, 7, 0, 3)]
    assert conv_tiles.bands(14, 7, 5, 2, 2, 1) == [(0, 1, 2, 5), (1, 6, 0, 5), (6, 7, 0, 4)]
    assert conv_tiles.bands(6, 4, 3, 1, 0, 1) == [(0, 4, 0, 3)]  # no padding: one band
    assert conv_tiles.bands(2, 4, 3, 1, 3, 1) == [(0, 1, 3, 3), (1, 2, 2, 3), (2, 3, 1, 3),
                                                  (3, 4, 0, 2)]   # output 0 sees no pixel


GEOMETRIES = [(size, k, s, p, d)
              for size, k, s, p, d in itertools.product((1, 2, 5, 7, 14), (1, 2, 3, 4, 5),
                                                        (1, 2, 3), (0, 1, 2, 4), (1, 2))
              if out_size(size, k, s, p, d) >= 1]


@pytest.mark.parametrize("size,k,s,p,d", GEOMETRIES)
def test_bands_hold_every_tap_inside_the_image_and_no_other(size, k, s, p, d):
    found = conv_tiles.bands(size, out_size(size, k, s, p, d), k, s, p, d)
    assert found[0][0] == 0 and found[-1][1] == out_size(size, k, s, p, d)
    for (_, o1, _, _), (o0, _, _, _) in zip(found, found[1:]):
        assert o1 == o0  # consecutive, no gaps
    for o0, o1, t0, t1 in found:
        for o in range(o0, o1):
            inside = [t for t in range(k) if 0 <= o * s - p + t * d < size]
            assert list(range(t0, t1)) == inside


@pytest.fixture(params=["whole batch", "one image"])
def pieces(request, monkeypatch):
    """Each tile over the whole batch (these cases are small), or cut into pieces of one
    image each, as large tiles are (conv_tiles.PIECE_BYTES)."""
    if request.param == "one image":
        monkeypatch.setattr(conv_tiles, "PIECE_BYTES", 1)
    return request.param


def test_pieces_cut_each_tile_into_runs_of_images():
    middle, edge = conv_tiles.Tile(1, 6, 1, 6, 0, 5, 0, 5), conv_tiles.Tile(0, 1, 0, 7, 2, 5, 0, 5)
    per_image = {middle: 2 ** 18, edge: 2 ** 10}  # floats: 1 MB and 4 KB of float32
    found = conv_tiles._pieces([middle, edge], 10, per_image.get, 4)
    assert [(p.tile, p.n0, p.n1) for p in found] == [
        (middle, 0, 4), (middle, 4, 8), (middle, 8, 10), (edge, 0, 10)]


def test_a_tiles_weight_matrices_are_views_of_its_band_of_kernel_columns():
    weight = np.random.default_rng(0).standard_normal((6, 3, 5, 4))  # (A, B, KH, KW)
    every = conv_tiles.tiles((5, 5), (5, 5), (5, 4), (1, 1), (2, 1), (1, 1))
    w_taps, w_last = conv_tiles.weight_by_taps(weight), conv_tiles.weight_last(weight)
    by_taps = conv_tiles.column_bands(w_taps, every, axis=1)
    last = conv_tiles.column_bands(w_last, every, axis=2)
    assert sorted(by_taps) == sorted(last) == [(0, 2), (0, 3), (0, 4), (1, 4)]
    assert by_taps[0, 4] is w_taps and last[0, 4] is w_last   # every column: no copy
    for tile in every:
        taps = weight[:, :, tile.i0:tile.i1, tile.j0:tile.j1]          # (A, B, th, tw)
        rows = conv_tiles.weight_rows(last, tile)                      # (A, th*tw*B)
        columns = conv_tiles.weight_columns(by_taps, tile)             # (th*tw*B, A)
        assert np.array_equal(rows, taps.transpose(0, 2, 3, 1).reshape(6, -1))
        assert np.array_equal(columns, rows.T) and columns.flags.c_contiguous
        assert np.shares_memory(rows, last[tile.j0, tile.j1])
        assert np.shares_memory(columns, by_taps[tile.j0, tile.j1])


def test_runs_never_leave_one_image_alone():
    # a product of one row is BLAS's gemv, which rounds otherwise than gemm
    assert conv_tiles._runs(slice(0, 9), 4) == [slice(0, 4), slice(4, 9)]
    assert conv_tiles._runs(slice(3, 4), 4) == [slice(3, 4)]
    for n in range(1, 40):
        for size in (2, 3, 5):
            runs = conv_tiles._runs(slice(0, n), size)
            assert runs[0].start == 0 and runs[-1].stop == n
            assert all(r.stop - r.start >= 2 for r in runs) or n == 1
            assert all(a.stop == b.start for a, b in zip(runs, runs[1:]))


def _layouts(seed, n, c, h, w):
    x = away(n, h, w, c, seed=seed).transpose(0, 3, 1, 2)  # channels-last, as layers leave it
    return [x, np.ascontiguousarray(x)]


def conv2d_weight_reference(x, gy, kernel, stride, padding, dilation):
    """dW[o, c, i, j]: gy times the pixels that tap (i, j) reads, summed over images and
    output pixels."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    (oh, ow), (sh, sw), (dh, dw) = gy.shape[2:], stride, dilation
    gw = np.zeros((gy.shape[1], x.shape[1]) + tuple(kernel))
    for i, j in itertools.product(range(kernel[0]), range(kernel[1])):
        read = xp[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
        gw[:, :, i, j] = np.einsum("nohw,nchw->oc", gy, read)
    return gw


TILE_GRID = [((5, 5), (2, 2), (2, 2), (1, 1), (7, 6)),
             ((5, 5), (1, 1), (2, 2), (1, 1), (5, 5)),
             ((4, 4), (2, 2), (1, 1), (1, 1), (6, 8)),
             ((3, 2), (1, 2), (2, 0), (2, 1), (5, 6)),
             ((3, 3), (3, 1), (3, 3), (1, 2), (4, 5)),   # tiles with no tap at all
             ((2, 2), (1, 1), (0, 0), (1, 1), (3, 3))]  # no padding: one tile


@pytest.mark.parametrize("kernel,stride,padding,dilation,hw", TILE_GRID)
def test_tiled_products_equal_the_loops(kernel, stride, padding, dilation, hw, pieces):
    out_hw = tuple(out_size(hw[a], kernel[a], stride[a], padding[a], dilation[a])
                   for a in (0, 1))
    w = away(4, 3, *kernel, seed=2)
    for x in _layouts(1, 2, 3, *hw):
        y = conv_tiles.conv2d(x, w, out_hw, stride, padding, dilation)
        ref = conv2d_reference(x, w, None, stride, padding, dilation)
        np.testing.assert_allclose(y.transpose(0, 3, 1, 2), ref, rtol=1e-12, atol=1e-12)
        gy = away(2, 4, *out_hw, seed=3)
        gw = conv_tiles.conv2d_weight(x, gy, kernel, stride, padding, dilation)
        ref_gw = conv2d_weight_reference(x, gy, kernel, stride, padding, dilation)
        np.testing.assert_allclose(gw.transpose(0, 3, 1, 2), ref_gw, rtol=1e-12, atol=1e-12)
        # conv2d_and_weight: both from one set of tiles, as conv_transpose2d's gradient
        gx, gw2 = conv_tiles.conv2d_and_weight(x, w, gy, stride, padding, dilation)
        np.testing.assert_array_equal(gx, y.transpose(0, 3, 1, 2))
        np.testing.assert_array_equal(gw2, gw.transpose(0, 3, 1, 2))


PHASE_GRID = [((k, k), s, p, (size, size + 1))
              for k, s, p, size in itertools.product((1, 2, 3, 4, 5), ((2, 2), (3, 2), (1, 1)),
                                                     (0, 1, 2, 4), (1, 3, 7))
              if all(out_size(size + a, k, s[a], p, 1) >= 1 for a in (0, 1))]


@pytest.mark.parametrize("kernel,stride,padding,hw", PHASE_GRID)
def test_transposed_conv_by_phases_equals_the_scatter_loop(kernel, stride, padding, hw,
                                                           pieces):
    # each phase of the output its own stride-1 conv2d: kernels narrower than the stride
    # (phases with no tap), paddings wider than the kernel (a phase's padding below 0)
    padding = (padding, padding)
    grid = tuple(out_size(hw[a], kernel[a], stride[a], padding[a], 1) for a in (0, 1))
    w = away(3, 4, *kernel, seed=2)
    fit = conv._output_padding_to_fit((1, 1) + hw, kernel, stride, padding, (1, 1))
    for x in _layouts(1, 2, 3, *grid):
        y = conv_tiles.conv_transpose2d_by_phases(x, w, hw, stride, padding)
        ref = conv_transpose2d_reference(x, w, None, stride, padding, fit, (1, 1))
        np.testing.assert_allclose(y.transpose(0, 3, 1, 2), ref, rtol=1e-12, atol=1e-12)


def test_phases_are_chosen_where_y_has_channels_enough():
    x = np.zeros((1, 64, 4, 4), np.float32)
    assert conv._by_phases(x, (64, 64, 4, 4), (1, 1))
    assert conv._by_phases(x, (64, 32, 4, 4), (1, 1))            # x wider, as well
    assert not conv._by_phases(x, (64, 64, 4, 4), (2, 1))        # dilated: the scatter
    assert not conv._by_phases(x[:, :8], (8, 64, 4, 4), (1, 1))  # too few channels for tiles
    x = np.zeros((1, 64, 32, 32), np.float32)
    assert conv._by_phases(x, (64, 16, 3, 3), (1, 1))            # 16 columns a product
    assert not conv._by_phases(x, (64, 3, 3, 3), (1, 1))         # to 3 channels: too thin


@pytest.mark.parametrize("kernel,stride,padding,dilation,hw", TILE_GRID)
def test_tiled_transposed_conv_equals_the_scatter_loop(kernel, stride, padding, dilation, hw,
                                                       pieces):
    # conv_transpose2d back onto an image of size hw (every output_padding that fits)
    grid = tuple(out_size(hw[a], kernel[a], stride[a], padding[a], dilation[a]) for a in (0, 1))
    w = away(3, 4, *kernel, seed=2)
    fit = conv._output_padding_to_fit((1, 1) + hw, kernel, stride, padding, dilation)
    for x in _layouts(1, 2, 3, *grid):
        y = conv_tiles.conv_transpose2d(x, w, hw, stride, padding, dilation)
        ref = conv_transpose2d_reference(x, w, None, stride, padding, fit, dilation)
        np.testing.assert_allclose(y.transpose(0, 3, 1, 2), ref, rtol=1e-12, atol=1e-12)


def test_the_weight_by_taps_copy_over_threads():
    weight = np.random.default_rng(1).standard_normal((75, 128, 11, 11)).astype(np.float32)
    assert weight.size >= 2 * parallel.GRAIN  # two threads take a range of rows each
    for threads in (1, 2, 3):
        tinygan.set_num_threads(threads)
        try:
            assert np.array_equal(conv_tiles.weight_by_taps(weight), weight.transpose(2, 3, 1, 0))
        finally:
            tinygan.set_num_threads(None)
