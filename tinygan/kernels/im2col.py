"""im2col and col2im as single CUDA kernels.

The generic path builds im2col from a strided view plus a copy (fine on both backends)
and col2im from KH*KW strided additions, one launch each. The col2im kernel gives each
input pixel one thread, which sums the rows that cover it: no atomics, one launch.
Layouts are those of tinygan.functional.conv: rows (N*OH*OW, KH*KW*C), channels last
within a row; images are NCHW-shaped, read through their strides (whatever their memory
order), and col2im writes channels-last memory, as the generic path does.
"""
from __future__ import annotations

from .. import backend
from . import compile_once

_kernels: dict = {}

_SOURCE = r"""
extern "C" __global__ void tinygan_im2col_DTYPE_IDXNAME(
    const DTYPE* x, DTYPE* cols, const IDX total, const int C, const int H,
    const int W, const IDX sN, const IDX sC, const IDX sH,
    const IDX sW, const int KH, const int KW, const int SH, const int SW,
    const int PH, const int PW, const int DH, const int DW, const int OH, const int OW,
    const DTYPE pad) {
  IDX idx = (IDX)blockDim.x * blockIdx.x + threadIdx.x;
  if (idx >= total) return;
  // idx walks cols in row-major order: ((n, oh, ow), (kh, kw, c))
  int c = idx % C; IDX rest = idx / C;
  int kw = rest % KW; rest /= KW;
  int kh = rest % KH; rest /= KH;
  int ow = rest % OW; rest /= OW;
  int oh = rest % OH; IDX n = rest / OH;
  int h = oh * SH - PH + kh * DH;
  int w = ow * SW - PW + kw * DW;
  cols[idx] = (h >= 0 && h < H && w >= 0 && w < W) ? x[n * sN + c * sC + h * sH + w * sW]
                                                   : pad;
}

extern "C" __global__ void tinygan_col2im_DTYPE_IDXNAME(
    const DTYPE* cols, DTYPE* x, const IDX total, const int C, const int H,
    const int W, const int KH, const int KW, const int SH, const int SW, const int PH,
    const int PW, const int DH, const int DW, const int OH, const int OW) {
  IDX idx = (IDX)blockDim.x * blockIdx.x + threadIdx.x;
  if (idx >= total) return;
  // idx walks x in channels-last order (n, h, w, c)
  int c = idx % C; IDX rest = idx / C;
  int w = rest % W; rest /= W;
  int h = rest % H; IDX n = rest / H;
  DTYPE sum = 0;
  for (int kh = 0; kh < KH; ++kh) {
    int th = h + PH - kh * DH;
    if (th < 0 || th % SH) continue;
    int oh = th / SH;
    if (oh >= OH) continue;
    for (int kw = 0; kw < KW; ++kw) {
      int tw = w + PW - kw * DW;
      if (tw < 0 || tw % SW) continue;
      int ow = tw / SW;
      if (ow >= OW) continue;
      sum += cols[((n * OH + oh) * OW + ow) * (KH * KW * C) + (kh * KW + kw) * C + c];
    }
  }
  x[idx] = sum;
}
"""


def _kernel(name: str, dtype, wide: bool):
    """The kernel for a dtype, with 64-bit index arithmetic only when 32 bits overflow:
    each thread does five integer divisions, and 64-bit ones cost several times more."""
    cp = backend.cupy_module()
    ctype = {"float32": "float", "float64": "double"}[str(dtype)]
    idx, idx_name = ("long long", "i64") if wide else ("int", "i32")
    module = compile_once(_kernels, (ctype, idx), lambda: cp.RawModule(
        code=_SOURCE.replace("DTYPE", ctype).replace("IDXNAME", idx_name)
        .replace("IDX", idx)))
    return compile_once(_kernels, (name, ctype, idx),
                        lambda: module.get_function(f"tinygan_{name}_{ctype}_{idx_name}"))


def _wide(*arrays) -> bool:
    """True when an index into one of the arrays (their memory spans) passes 2**31 - 1."""
    return any(sum((n - 1) * abs(st) for n, st in zip(a.shape, a.strides)) // a.itemsize
               + 1 >= 2**31 or a.size >= 2**31 for a in arrays)


# a layer's call -> its kernel, grid and scalar arguments, built once: the same
# convolution runs every step, and building the scalar arguments cost more host time
# than the launch (44 -> 16 us a call on an H100's host)
_launches: dict = {}


def _grid(total, threads=256):
    return ((total + threads - 1) // threads,), (threads,)


def im2col(x, kernel, stride, padding, dilation, out_hw, pad_value=0.0):
    """x (N,C,H,W), any strides -> rows (N*OH*OW, KH*KW*C) in one launch."""
    cp = backend.cupy_module()

    def make():
        n, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = (kernel, stride, padding,
                                                             dilation, out_hw)
        shape = (n * oh * ow, kh * kw * c)
        total = shape[0] * shape[1]
        wide = _wide(x) or total >= 2**31
        index = cp.int64 if wide else cp.int32
        strides = [index(s // x.itemsize) for s in x.strides]
        i32 = cp.int32
        return (_kernel("im2col", x.dtype, wide), *_grid(total), shape,
                (index(total), i32(c), i32(h), i32(w), *strides, i32(kh), i32(kw), i32(sh),
                 i32(sw), i32(ph), i32(pw), i32(dh), i32(dw), i32(oh), i32(ow),
                 x.dtype.type(pad_value)))

    key = ("im2col", x.shape, x.strides, x.dtype, kernel, stride, padding, dilation, out_hw,
           pad_value)
    fn, grid, block, shape, scalars = compile_once(_launches, key, make)
    cols = cp.empty(shape, dtype=x.dtype)
    fn(grid, block, (x, cols, *scalars))
    return cols


def col2im(cols, x_shape, kernel, stride, padding, dilation, out_hw):
    """rows (N*OH*OW, KH*KW*C) -> image (N,C,H,W) held channels-last, each pixel summing
    its rows."""
    cp = backend.cupy_module()
    cols = cp.ascontiguousarray(cols)

    def make():
        n, c, h, w = x_shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = (kernel, stride, padding,
                                                             dilation, out_hw)
        total = n * h * w * c
        wide = _wide(cols) or total >= 2**31
        i32 = cp.int32
        return (_kernel("col2im", cols.dtype, wide), *_grid(total), (n, h, w, c),
                ((cp.int64 if wide else i32)(total), i32(c), i32(h), i32(w), i32(kh),
                 i32(kw), i32(sh), i32(sw), i32(ph), i32(pw), i32(dh), i32(dw), i32(oh),
                 i32(ow)))

    key = ("col2im", cols.shape, cols.dtype, tuple(x_shape), kernel, stride, padding,
           dilation, out_hw)
    fn, grid, block, shape, scalars = compile_once(_launches, key, make)
    x = cp.empty(shape, dtype=cols.dtype)
    fn(grid, block, (cols, x, *scalars))
    return x.transpose(0, 3, 1, 2)
