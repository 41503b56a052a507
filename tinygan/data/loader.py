"""DataLoader: a dataset as a reproducible, resumable stream of batches of tensors.

Images come out as float32 in [-1, 1] (to_signed_unit) and labels as int64; a 2D mixture
gives float32 points (batch, 2), unscaled, with the index of their mode as label. A batch is
one gather on the uint8 array (np.take) and one in-place scaling, with no Python
work per image: feeding a GAN costs a fraction of a millisecond per batch.

Reproducible and resumable: all randomness comes from one numpy Generator seeded by `seed`.
Each epoch begins by remembering the generator's state and then drawing its permutation (or,
for a mixture, its points); `state_dict()` records that state and the position in the
epoch, so `load_state_dict()` redraws the same epoch and continues at the same batch,
bit-identically. Breaking out of a `for` loop keeps the position: the next `for` continues
the same epoch where it stopped.

Data parallelism: with `rank` and `world_size`, batch_size is the global batch and rank r
gets rows [r B/N, (r + 1) B/N) of each one. Every rank draws the same permutation from the
same seed, so the ranks' shares never overlap and together are the very batches one
process reads; the state is the same on every rank.
"""
from __future__ import annotations

import copy
import time

import numpy as np

from .. import backend
from .._tensor import Tensor
from .registry import load
from .transforms import to_signed_unit


class DataLoader:
    """Batches of (images, labels) tensors from a dataset, shuffled by a seeded generator."""

    def __init__(self, dataset, batch_size: int = 64, shuffle: bool = True,
                 drop_last: bool = True, seed: int | None = None, device: str | None = None,
                 rank: int = 0, world_size: int = 1):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not a rank of a world of {world_size}")
        if batch_size % world_size:
            raise ValueError(f"batch size {batch_size} does not split into {world_size} "
                             "equal shares")
        if world_size > 1 and not drop_last and len(dataset) % batch_size:
            raise ValueError(f"the last batch, of {len(dataset) % batch_size}, does not split "
                             f"into {world_size} equal shares: give drop_last=True")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.rank, self.world_size = rank, world_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.device = backend.default_device() if device is None else backend.check_device(device)
        self.is_mixture = hasattr(dataset, "sample") and getattr(dataset, "images", None) is None
        # An unseeded loader still has a seed (fresh entropy), so its run can be logged and
        # replayed.
        self.seed = int(np.random.SeedSequence().entropy) if seed is None else int(seed)
        self._rng = np.random.default_rng(self.seed)
        self.epoch = 0       # epochs completed
        self.position = 0    # batches delivered in the current epoch
        self._epoch_rng_state = None  # generator state when the current epoch began
        self._order = None   # this epoch's permutation (images) or (points, labels) (mixture)
        if len(self) == 0:
            raise ValueError(f"{len(dataset)} items make no batch of {batch_size} with "
                             "drop_last=True")

    def __len__(self) -> int:
        """Batches per epoch."""
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    # -- epochs
    def _begin_epoch(self) -> None:
        self._epoch_rng_state = copy.deepcopy(self._rng.bit_generator.state)
        n = len(self.dataset)
        if self.is_mixture:
            self._order = self.dataset.sample(n, self._rng)
        elif self.shuffle:
            self._order = self._rng.permutation(n)
        else:
            self._order = np.arange(n)
        self.position = 0

    def _end_epoch(self) -> None:
        self._order, self._epoch_rng_state = None, None
        self.position = 0
        self.epoch += 1

    def __iter__(self):
        if self._order is not None and self.position >= len(self):
            self._end_epoch()  # the last epoch was read to its end by next() calls
        if self._order is None:
            self._begin_epoch()
        share = self.batch_size // self.world_size
        while self.position < len(self):
            start = self.position * self.batch_size + self.rank * share
            self.position += 1  # counted before yielding: state_dict() then points past it
            yield self._batch(start, start + share)
        self._end_epoch()

    # -- one batch: gathers only
    def _batch(self, start: int, stop: int):
        if self.is_mixture:
            points, labels = self._order
            x, y = points[start:stop], labels[start:stop]
        else:
            index = self._order[start:stop]
            x = np.take(self.dataset.images, index, axis=0)
            y = None if self.dataset.labels is None else np.take(self.dataset.labels, index)
            # move uint8 (4x fewer bytes than float32), then scale where it lands
            x = to_signed_unit(backend.to_device(x, self.device))
        x = backend.to_device(x, self.device)
        y = None if y is None else Tensor(backend.to_device(y, self.device))
        return Tensor(x), y

    # -- resuming
    def state_dict(self) -> dict:
        """Everything needed to resume mid-epoch: seed, generator state, epoch, position."""
        in_epoch = self._order is not None
        return {"seed": self.seed, "epoch": self.epoch, "position": self.position,
                "in_epoch": in_epoch, "batch_size": self.batch_size, "items": len(self.dataset),
                "epoch_rng_state": copy.deepcopy(self._epoch_rng_state),
                "rng_state": copy.deepcopy(self._rng.bit_generator.state)}

    def load_state_dict(self, state: dict) -> None:
        """Resume from state_dict(): the next batch is the one that would have come next."""
        if state["batch_size"] != self.batch_size or state["items"] != len(self.dataset):
            raise ValueError(f"loader state is for batch_size {state['batch_size']} over "
                             f"{state['items']} items; this loader has {self.batch_size} over "
                             f"{len(self.dataset)}")
        self.seed, self.epoch = state["seed"], state["epoch"]
        if state["in_epoch"]:
            self._rng.bit_generator.state = copy.deepcopy(state["epoch_rng_state"])
            self._begin_epoch()  # redraws the same permutation, leaving the rng where it was
        else:
            self._order, self._epoch_rng_state = None, None
        self._rng.bit_generator.state = copy.deepcopy(state["rng_state"])
        self.position = state["position"]

    def __repr__(self) -> str:
        return (f"DataLoader({getattr(self.dataset, 'name', self.dataset)!r}, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, seed={self.seed}, device={self.device!r})")


def loader_benchmark(name: str = "mnist", batch_size: int = 64, batches: int = 2000,
                     device: str = "cpu", root=None) -> float:
    """Milliseconds per batch for DataLoader over a dataset (default MNIST, batch 64).

    `python -c "import tinygan.data as d; print(d.loader_benchmark())"`
    """
    dataset = load(name, root=root, download=False) if isinstance(name, str) else name
    loader = DataLoader(dataset, batch_size, shuffle=True, seed=0, device=device)
    done = 0
    for _ in zip(range(20), loader):  # warm up (first-touch page faults, imports)
        pass
    start = time.perf_counter()
    while done < batches:
        for _ in loader:
            done += 1
            if done == batches:
                break
    return (time.perf_counter() - start) * 1000 / batches
