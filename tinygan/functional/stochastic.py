"""Dropout: elements zeroed at random (Srivastava et al. 2014)."""
from __future__ import annotations

import math

import numpy as np

from .. import backend, distributed, parallel
from .._tensor import Tensor


def dropout(x: Tensor, p: float = 0.5, training: bool = True, mask=None) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout).

    `mask` (an array of 0/1 of x's shape) fixes which elements are kept: for gradient
    checks and for replaying a step. Inside distributed.global_batch(), x is one rank's
    share of a global batch and its mask is its rows of the global batch's mask.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    if mask is None:
        keep = _uniform_like(x) >= p
    else:
        keep = mask.data if isinstance(mask, Tensor) else mask
        if tuple(keep.shape) != tuple(x.shape):
            raise ValueError(f"dropout: mask has shape {tuple(keep.shape)}, x has "
                             f"{tuple(x.shape)}")
        keep = backend.to_device(keep, x.device)  # a NumPy mask works for a GPU x too
    scale = keep.astype(x.dtype)
    scale *= x.dtype.type(1.0 / (1.0 - p))
    return x * Tensor(scale)


def _uniform_like(x: Tensor):
    """U[0, 1) samples shaped like x and laid out in memory as x is (channels-last stays
    channels-last), so that the product with x walks both arrays in the same order.

    Inside global_batch(), x is rank r's share of a global batch of N shares: the samples
    are rank r's rows of those drawn for the global batch, in the same layout.
    """
    data = x.data
    order = sorted(range(data.ndim), key=lambda d: -data.strides[d])  # outermost first
    shape = [data.shape[d] for d in order]
    rank, world = distributed.batch_share()
    generator = backend.generator(x.device)
    if world == 1:
        u = _random(generator, tuple(shape), x.dtype)
    elif order[0] == 0 and _can_jump(generator, x.dtype):
        u = _rows_of_global_draw(generator, tuple(shape), rank, world, x.dtype)
    else:  # draw the global batch's samples, keep this rank's rows
        axis, n = order.index(0), shape[order.index(0)]
        shape[axis] *= world
        u = generator.random(tuple(shape), dtype=x.dtype)
        u = u[(slice(None),) * axis + (slice(rank * n, (rank + 1) * n),)]
    inverse = sorted(range(data.ndim), key=lambda d: order[d])
    return u.transpose(inverse)


# -- the rows of one rank, without drawing the other ranks' numbers
#
# NumPy's default generator, PCG64, can jump ahead over any number of its 64-bit outputs
# in a few steps (bit_generator.advance). A float64 takes one output; float32s take one
# half of an output each, low half first, the high half kept for the next float32. So a
# rank whose rows come first in the draw order can jump over the other ranks' numbers and
# draw only its own, and leave the generator exactly where drawing them all would have.


def _can_jump(generator, dtype) -> bool:
    return (isinstance(getattr(generator, "bit_generator", None), np.random.PCG64)
            and np.dtype(dtype) in (np.float32, np.float64))


def _rows_of_global_draw(generator, shape: tuple, rank: int, world: int, dtype):
    """generator.random((world * shape[0],) + shape[1:])[rank rows], drawing only those."""
    count = math.prod(shape)
    _skip(generator, rank * count, dtype)
    u = _random(generator, shape, dtype)
    _skip(generator, (world - 1 - rank) * count, dtype)
    return u


def _skip(generator, count: int, dtype) -> None:
    """Move the generator exactly as drawing `count` uniforms of this dtype would."""
    bits = generator.bit_generator
    if np.dtype(dtype) == np.float64:  # one output each; a kept half stays kept
        before = bits.state
        bits.advance(count)  # which forgets a kept half: put it back
        bits.state = {**bits.state, "has_uint32": before["has_uint32"],
                      "uinteger": before["uinteger"]}
        return
    if count and bits.state["has_uint32"]:  # the kept high half is the first to go
        generator.random(1, dtype=np.float32)
        count -= 1
    outputs, odd = divmod(count, 2)
    if outputs:  # jump over all but the last output, then draw it as a pair would
        bits.advance(outputs - 1)
        generator.random(2, dtype=np.float32)
    if odd:
        generator.random(1, dtype=np.float32)  # the next output's low half; its high is kept


# -- one draw over several threads
#
# The same jumps split one large draw: each thread draws its run of the numbers from a
# copy of the generator moved ahead to where that run starts, and the generator itself
# then jumps over them all, so the numbers, and everything drawn after them, are one
# draw's on any thread count. PCG64 takes about 4.5 ns a float32 on one core here: 3.8
# ms for dcgan-mnist's first dropout mask (64x64x14x14), 2.4 ms on two threads, and the
# step 2% less on two (407.5 -> 398.6 ms, the two ways alternated in one process).

RANDOM_GRAIN = 1 << 16  # numbers a thread draws at least (a hand-off costs about 50 us)


def _random(generator, shape: tuple, dtype):
    """generator.random(shape, dtype=dtype), split over threads when it is large."""
    count = math.prod(shape)
    if not _can_jump(generator, dtype) or count < 2 * RANDOM_GRAIN \
            or parallel.num_threads() == 1:
        return generator.random(shape, dtype=dtype)
    per = 2 if np.dtype(dtype) == np.float32 else 1  # numbers a 64-bit output makes
    bits = generator.bit_generator
    out = np.empty(count, dtype=dtype)
    head = 0
    if per == 2 and bits.state["has_uint32"]:  # a kept high half is the first number
        out[0] = generator.random(1, dtype=dtype)[0]
        head = 1
    outputs, odd = divmod(count - head, per)
    start = bits.state

    def draw(run):  # outputs [run.start, run.stop) of the draw
        copy = np.random.PCG64()
        copy.state = start
        copy.advance(run.start)
        out[head + run.start * per:head + run.stop * per] = np.random.Generator(
            copy).random((run.stop - run.start) * per, dtype=dtype)
    parallel.run(draw, parallel.parts(outputs, outputs * per, RANDOM_GRAIN))
    _skip(generator, outputs * per, dtype)
    if odd:  # the next output's low half; its high half is kept, as one draw keeps it
        out[-1] = generator.random(1, dtype=dtype)[0]
    return out.reshape(shape)
