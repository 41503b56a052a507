"""im2col and col2im as single CUDA kernels.

The generic path builds im2col from a strided view plus a copy (fine on both backends)
and col2im from KH*KW strided additions, one launch each. The col2im kernel gives each
input pixel one thread, which sums the rows that cover it: no atomics, one launch.
Layouts are those of tinygan.functional.conv: rows (N*OH*OW, C*KH*KW).
"""
from __future__ import annotations

from .. import backend
from . import compile_once

_kernels: dict = {}

_SOURCE = r"""
extern "C" __global__ void tinygan_im2col_DTYPE(
    const DTYPE* x, DTYPE* cols, const int total, const int C, const int H, const int W,
    const int KH, const int KW, const int SH, const int SW, const int PH, const int PW,
    const int DH, const int DW, const int OH, const int OW, const DTYPE pad) {
  int idx = blockDim.x * blockIdx.x + threadIdx.x;
  if (idx >= total) return;
  // idx walks cols in row-major order: ((n, oh, ow), (c, kh, kw))
  int kw = idx % KW; int rest = idx / KW;
  int kh = rest % KH; rest /= KH;
  int c = rest % C; rest /= C;
  int ow = rest % OW; rest /= OW;
  int oh = rest % OH; int n = rest / OH;
  int h = oh * SH - PH + kh * DH;
  int w = ow * SW - PW + kw * DW;
  cols[idx] = (h >= 0 && h < H && w >= 0 && w < W) ? x[((n * C + c) * H + h) * W + w] : pad;
}

extern "C" __global__ void tinygan_col2im_DTYPE(
    const DTYPE* cols, DTYPE* x, const int total, const int C, const int H, const int W,
    const int KH, const int KW, const int SH, const int SW, const int PH, const int PW,
    const int DH, const int DW, const int OH, const int OW) {
  int idx = blockDim.x * blockIdx.x + threadIdx.x;
  if (idx >= total) return;
  int w = idx % W; int rest = idx / W;
  int h = rest % H; rest /= H;
  int c = rest % C; int n = rest / C;
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
      sum += cols[((n * OH + oh) * OW + ow) * (C * KH * KW) + (c * KH + kh) * KW + kw];
    }
  }
  x[idx] = sum;
}
"""


def _kernel(name: str, dtype):
    cp = backend.cupy_module()
    ctype = {"float32": "float", "float64": "double"}[str(dtype)]
    module = compile_once(_kernels, ctype, lambda: cp.RawModule(
        code=_SOURCE.replace("DTYPE", ctype)))
    return module.get_function(f"tinygan_{name}_{ctype}")


def _launch(kernel, total, args):
    threads = 256
    kernel(((total + threads - 1) // threads,), (threads,), args)


def im2col(x, kernel, stride, padding, dilation, out_hw, pad_value=0.0):
    """x (N,C,H,W) -> rows (N*OH*OW, C*KH*KW) in one launch."""
    cp = backend.cupy_module()
    x = cp.ascontiguousarray(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = kernel, stride, padding, dilation, out_hw
    cols = cp.empty((n * oh * ow, c * kh * kw), dtype=x.dtype)
    _launch(_kernel("im2col", x.dtype), cols.size,
            (x, cols, cp.int32(cols.size), cp.int32(c), cp.int32(h), cp.int32(w),
             cp.int32(kh), cp.int32(kw), cp.int32(sh), cp.int32(sw), cp.int32(ph),
             cp.int32(pw), cp.int32(dh), cp.int32(dw), cp.int32(oh), cp.int32(ow),
             x.dtype.type(pad_value)))
    return cols


def col2im(cols, x_shape, kernel, stride, padding, dilation, out_hw):
    """rows (N*OH*OW, C*KH*KW) -> image (N,C,H,W), each pixel summing its rows."""
    cp = backend.cupy_module()
    cols = cp.ascontiguousarray(cols)
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = kernel, stride, padding, dilation, out_hw
    x = cp.empty((n, c, h, w), dtype=cols.dtype)
    _launch(_kernel("col2im", cols.dtype), x.size,
            (cols, x, cp.int32(x.size), cp.int32(c), cp.int32(h), cp.int32(w),
             cp.int32(kh), cp.int32(kw), cp.int32(sh), cp.int32(sw), cp.int32(ph),
             cp.int32(pw), cp.int32(dh), cp.int32(dw), cp.int32(oh), cp.int32(ow)))
    return x
