"""Random numbers from a counter: Philox4x32-10 (Salmon et al. 2011, "Parallel random
numbers: as easy as 1, 2, 3"), the GPU's generator.

A counter-based generator turns (key, counter) into four random 32-bit words by ten
rounds of multiply-and-xor; nothing else is carried from one number to the next. So a
generator's whole state is two integers, its key (the seed) and its offset (how many
values it has handed out): a checkpoint saves them as two numbers, and a draw is a pure
function of (key, offset, index) that every GPU thread computes on its own, with no
round trip to the host. The offset lives in device memory and each draw advances it
there, so a step captured in a CUDA graph draws fresh numbers at every replay. (CuPy's
own generators keep cuRAND states that cannot be saved, and its legacy ones call cuRAND's
host API, which a graph cannot capture.)

Element i of a draw takes the counter (offset + i, 0, 0) and uses the first words of its
block: one for a float32 in [0, 1), two for a float64, two for a normal (Box-Muller) or
an integer. `Philox(seed, numpy)` runs the same arithmetic on NumPy arrays: the tests
check it against the published known-answer vectors, and the GPU kernel against it.
"""
from __future__ import annotations

import numpy as np

M0, M1 = 0xD2511F53, 0xCD9E8D57       # the round multipliers
W0, W1 = 0x9E3779B9, 0xBB67AE85       # the key schedule's Weyl increments (golden ratio, sqrt 3)
ROUNDS = 10
_MASK32 = np.uint64(0xFFFFFFFF)

_SOURCE = r"""
__device__ inline void tinygan_philox(unsigned int c[4], unsigned int k0, unsigned int k1) {
  for (int r = 0; r < 10; ++r) {
    if (r) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
    unsigned long long p0 = (unsigned long long)0xD2511F53u * c[0];
    unsigned long long p1 = (unsigned long long)0xCD9E8D57u * c[2];
    unsigned int n0 = (unsigned int)(p1 >> 32) ^ c[1] ^ k0;
    unsigned int n2 = (unsigned int)(p0 >> 32) ^ c[3] ^ k1;
    c[0] = n0; c[1] = (unsigned int)p1; c[2] = n2; c[3] = (unsigned int)p0;
  }
}
"""

# what each kind of draw makes of the words w0, w1 of its counter's block
_KINDS = {
    "uniform32": "y = (T)((w0 >> 8) * (1.0f / 16777216.0f));",
    "uniform64": "y = (T)(((w0 >> 5) * 67108864.0 + (w1 >> 6)) * (1.0 / 9007199254740992.0));",
    "normal": ("double u1 = (w0 + 1.0) * (1.0 / 4294967296.0);  // (0, 1]: log is finite\n"
               "double u2 = w1 * (1.0 / 4294967296.0);\n"
               "y = (T)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));"),
    "integer": "y = (T)(low + (long long)(((unsigned long long)w0 * span) >> 32));",
}
_kernels: dict = {}


def philox4x32(counter, key, xp=np):
    """The four output words of Philox4x32-10 for counters (4, n) and a key (2,): arrays of
    uint32 values held in uint64 (the NumPy reference the GPU kernel follows)."""
    c = [xp.asarray(w, dtype=np.uint64) & _MASK32 for w in counter]
    k0, k1 = int(key[0]), int(key[1])
    for r in range(ROUNDS):
        if r:
            k0, k1 = (k0 + W0) & 0xFFFFFFFF, (k1 + W1) & 0xFFFFFFFF
        p0, p1 = c[0] * np.uint64(M0), c[2] * np.uint64(M1)
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ np.uint64(k0), p1 & _MASK32,
             (p0 >> np.uint64(32)) ^ c[3] ^ np.uint64(k1), p0 & _MASK32]
    return c


class Philox:
    """A Philox4x32-10 generator with NumPy's Generator methods (random, standard_normal,
    integers), drawing CuPy arrays (`xp=cupy`) or NumPy ones (`xp=numpy`, the reference)."""

    def __init__(self, seed: int, xp):
        self.xp = xp
        self.seed = int(seed)
        self.offset = self.xp.zeros(1, dtype=np.uint64)  # on the device: graphs advance it

    @property
    def key(self) -> tuple:
        return self.seed & 0xFFFFFFFF, (self.seed >> 32) & 0xFFFFFFFF

    # -- saving and resuming: two integers
    def get_state(self) -> dict:
        return {"seed": self.seed, "offset": int(self.offset[0])}

    def set_state(self, state: dict) -> None:
        self.seed = int(state["seed"])
        self.offset[...] = np.uint64(int(state["offset"]))

    # -- draws
    def random(self, size=None, dtype=np.float32):
        """Uniform samples in [0, 1): 24 random bits for float32, 53 for float64."""
        kind = "uniform32" if np.dtype(dtype) == np.float32 else "uniform64"
        return self._draw(kind, size, dtype)

    def standard_normal(self, size=None, dtype=np.float64):
        """N(0, 1) samples by Box-Muller, computed in float64."""
        return self._draw("normal", size, dtype)

    def integers(self, low, high=None, size=None, dtype=np.int64):
        """Integers in [low, high) (high - low < 2**32): the top of w0 * span, a bias below
        span / 2**32."""
        if high is None:
            low, high = 0, low
        span = int(high) - int(low)
        if not 0 < span <= 2**32:
            raise ValueError(f"integers: need 0 < high - low <= 2**32, got [{low}, {high})")
        return self._draw("integer", size, dtype, low=int(low), span=span)

    def _draw(self, kind, size, dtype, low=0, span=0):
        shape = () if size is None else (tuple(size) if np.iterable(size) else (int(size),))
        n = int(np.prod(shape, dtype=np.int64))
        if self.xp is np:
            out = self._draw_numpy(kind, n, low, span).astype(dtype).reshape(shape)
        else:
            out = self.xp.empty(shape, dtype=dtype)
            self._kernel(kind)(self.offset, *self.key, np.int64(low), np.uint64(span), out)
        self.offset += np.uint64(n)  # a tiny kernel on the GPU: no host round trip
        return out

    def _draw_numpy(self, kind, n, low, span):
        index = self.offset[0] + np.arange(n, dtype=np.uint64)
        zero = np.zeros(n, dtype=np.uint64)
        w0, w1, _, _ = philox4x32((index & _MASK32, index >> np.uint64(32), zero, zero),
                                  self.key)
        if kind == "uniform32":
            return (w0 >> np.uint64(8)).astype(np.float32) * np.float32(1 / 16777216)
        if kind == "uniform64":
            return ((w0 >> np.uint64(5)).astype(np.float64) * 67108864.0
                    + (w1 >> np.uint64(6))) / 9007199254740992.0
        if kind == "normal":
            u1 = (w0.astype(np.float64) + 1.0) / 4294967296.0
            u2 = w1.astype(np.float64) / 4294967296.0
            return np.sqrt(-2.0 * np.log(u1)) * np.cos(6.283185307179586 * u2)
        return low + ((w0 * np.uint64(span)) >> np.uint64(32)).astype(np.int64)

    def _kernel(self, kind):
        if kind not in _kernels:
            body = ("unsigned long long n = offset[0] + (unsigned long long)i;\n"
                    "unsigned int c[4] = {(unsigned int)n, (unsigned int)(n >> 32), 0u, 0u};\n"
                    "tinygan_philox(c, k0, k1);\n"
                    "unsigned int w0 = c[0], w1 = c[1];\n" + _KINDS[kind])
            _kernels[kind] = self.xp.ElementwiseKernel(
                "raw uint64 offset, uint32 k0, uint32 k1, int64 low, uint64 span", "T y",
                body, f"tinygan_philox_{kind}", preamble=_SOURCE)
        return _kernels[kind]
