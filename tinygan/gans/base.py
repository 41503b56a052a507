"""What every GAN variant shares: its settings, z, packing, sampling and checkpoints.

A variant subclasses `GAN`, builds G and D in `build()`, its optimisers in
`optimizers()`, and writes its training step out in `step()`, the way its paper's
algorithm box does. Nothing else is hidden here.

`data_parallel()` readies a GAN to train on every rank of a process group
(tinygan.distributed), each rank on its share of every batch, with the same step: the
networks wrapped in DistributedDataParallel, and z drawn for the global batch.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from .. import backend, distributed, optim
from .._tensor import Tensor
from ..autograd import no_grad
from ..creation import randint, randn
from ..nn.parallel import DistributedDataParallel, SyncBatchNorm, all_gather_rows, unwrap
from .remedies import feature_matching_loss, pack


@dataclass
class DataInfo:
    """What a GAN needs to know of its data."""
    kind: str                 # "image" or "points"
    shape: tuple              # (C, H, W) for images, (2,) for points
    num_classes: int = 0      # 0 when the data has no labels

    @classmethod
    def of(cls, dataset) -> "DataInfo":
        if getattr(dataset, "centers", None) is not None:
            return cls("points", (2,), int(len(dataset.centers)))
        return cls("image", tuple(dataset.image_shape), int(dataset.num_classes or 0))


#: the remedies a variant can accept; label smoothing only makes sense with BCE, so a
#: critic (WGAN, WGAN-GP, SAGAN's hinge) accepts the others
REMEDIES = ("feature_matching", "minibatch_discrimination", "pack", "label_smoothing")
CRITIC_REMEDIES = ("feature_matching", "minibatch_discrimination", "pack")


class GAN:
    """A generator G, a discriminator (or critic) D, their optimisers and a step."""

    name = ""
    remedies = REMEDIES  # those this variant accepts
    conditional = False

    def __init__(self, config: dict, info: DataInfo):
        self.config, self.info = config, info
        self.device = config.get("device", "cpu")
        self.z_dim = int(config["z_dim"])
        self.pack = int(config.get("pack", 1))
        self.rank, self.world = 0, 1  # this process's share of every batch (data_parallel)
        self.check_remedies()
        self.G, self.D = self.build()
        self.G.to(self.device)
        self.D.to(self.device)
        self.opt_g, self.opt_d = self.optimizers()

    # -- to be written by each variant
    def build(self):
        raise NotImplementedError

    def optimizers(self):
        """Adam for G and for D, each with its own learning rate (most papers' choice)."""
        cfg = self.config
        return (optim.Adam(self.G.parameters(), lr=cfg["lr_g"], betas=tuple(cfg["betas"])),
                optim.Adam(self.D.parameters(), lr=cfg["lr_d"], betas=tuple(cfg["betas"])))

    def lr_schedulers(self, total_steps: int, done: int = 0) -> list:
        """`--lr-decay linear`: both learning rates fall linearly to 0 over the run's
        total_steps generator steps (LinearLR, stepped once per generator step), carrying
        on from step `done` when a run resumes; no schedule otherwise."""
        decay = self.config.get("lr_decay", "none")
        if decay == "none":
            return []
        if decay != "linear":
            raise ValueError(f"lr_decay {decay!r}: expected 'none' or 'linear'")
        return [optim.lr_scheduler.LinearLR(opt, 1.0, 0.0, total_iters=total_steps,
                                            last_epoch=done - 1)
                for opt in (self.opt_g, self.opt_d)]

    def step(self, next_batch) -> dict:
        """One generator update (and the discriminator updates before it); returns losses."""
        raise NotImplementedError

    # -- shared pieces
    def check_remedies(self):
        asked = {"feature_matching": self.config.get("feature_matching"),
                 "minibatch_discrimination": self.config.get("minibatch_discrimination"),
                 "pack": self.pack > 1,
                 "label_smoothing": self.config.get("label_smoothing")}
        for name, on in asked.items():
            if on and name not in self.remedies:
                raise ValueError(f"{self.name}: --{name.replace('_', '-')} does not apply to "
                                 f"this variant (it accepts: "
                                 f"{', '.join(self.remedies) or 'none'})")

    @property
    def d_input_shape(self) -> tuple:
        """D's input shape: packing m samples stacks them as channels (or features)."""
        return (self.info.shape[0] * self.pack,) + tuple(self.info.shape[1:])

    def sample_z(self, n: int) -> Tensor:
        """z ~ N(0, I) for a batch of n: with data parallelism, this rank's n rows of the
        z drawn for the global batch, so that every process draws one process's numbers."""
        return self._share_of(randn(n * self.world, self.z_dim, device=self.device))

    def sample_labels(self, n: int) -> Tensor:
        return self._share_of(randint(0, self.info.num_classes, (n * self.world,),
                                      device=self.device))

    def _share_of(self, batch: Tensor) -> Tensor:
        n = batch.shape[0] // self.world
        if self.world == 1:
            return batch
        return Tensor(batch.data[self.rank * n:(self.rank + 1) * n])

    def packed(self, x: Tensor) -> Tensor:
        """x in groups of `pack` samples stacked as channels (PacGAN); x itself if pack is 1."""
        return pack(x, self.pack)

    def discriminate(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """D's logits for x, packed into groups of `pack` samples (PacGAN)."""
        return self.D(self.packed(x))

    def d_features(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """D's features of x for feature matching, G's loss: D's weights held fixed. With
        data parallelism, those of the global batch (every rank's rows, gathered), so that
        their mean is the global batch's; D runs around its DistributedDataParallel
        wrapper, which has no gradient of D's to average here."""
        if self.world == 1:
            with frozen(self.D):
                return self.features_of(self.D, x, labels)
        with distributed.global_batch(), frozen(self.D):  # dropout: the global batch's rows
            features = self.features_of(unwrap(self.D), x, labels)
        return all_gather_rows(features)

    def features_of(self, D, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """The features of D (the network, or the replica inside its wrapper) for x."""
        return D.features(self.packed(x))

    def critic_generator_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        """-mean D(G(z)) (WGAN, WGAN-GP, SAGAN), or feature matching when asked for."""
        if self.config.get("feature_matching"):
            return feature_matching_loss(self.d_features(real).detach(), self.d_features(fake))
        with frozen(self.D):
            return -self.discriminate(fake).mean()

    def generate(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """G(z) (or G(z, y), random y unless given) in eval mode, without a graph:
        BatchNorm uses its running statistics."""
        if self.conditional and labels is None:
            labels = self.sample_labels(z.shape[0])
        was_training = self.G.training
        self.G.eval()
        with no_grad():
            out = self.G(z, labels) if self.conditional else self.G(z)
        self.G.train(was_training)
        return out

    def samples(self, n: int, seed: int = 0, labels=None, batch_size: int | None = None,
                rows: slice | None = None) -> np.ndarray:
        """n samples of G as float32 NumPy, from a random generator of their own.

        z ~ N(0, I), then (for a conditional G, unless `labels` gives them) uniform labels,
        all drawn from `numpy.random.default_rng(seed)`: sampling never moves the
        training's random numbers, and the same seed gives the same samples. G runs in
        eval mode, `batch_size` samples at a time (all at once when None). `rows` keeps
        only those of the n (a rank's share, when several ranks split an evaluation).
        """
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, self.z_dim)).astype(np.float32)
        if self.conditional and labels is None:
            labels = rng.integers(0, self.info.num_classes, n)
        if rows is not None:
            z, labels = z[rows], None if labels is None else np.asarray(labels)[rows]
            n = len(z)
        step = batch_size or max(n, 1)
        out = []
        for start in range(0, n, step):
            zs = Tensor(backend.to_device(z[start:start + step], self.device))
            ys = None if labels is None else Tensor(backend.to_device(
                np.asarray(labels[start:start + step], dtype=np.int64), self.device))
            out.append(backend.to_numpy(self.generate(zs, ys).data).astype(np.float32))
        return np.concatenate(out) if out else np.zeros((0, *self.info.shape), np.float32)

    # -- several processes
    def data_parallel(self) -> None:
        """Train on every rank of the process group, each on its share of every batch.

        BatchNorm becomes SyncBatchNorm (the global batch's statistics); G and D are
        wrapped in DistributedDataParallel (rank 0's weights to start, gradients averaged
        over the ranks after each backward); z is drawn for the global batch. In a world
        of one nothing changes.
        """
        world = distributed.get_world_size()
        share = int(self.config["batch_size"]) // world
        if world > 1 and self.config.get("minibatch_discrimination"):
            raise ValueError("--minibatch-discrimination compares each sample with the rest "
                             "of its batch, which is spread over the processes: run it on one")
        if world > 1 and self.config.get("feature_matching") and (
                type(self).d_features is not GAN.d_features):
            raise ValueError(f"{self.name}: --feature-matching reads D's features its own way, "
                             "which does not gather them from every process: run it on one")
        if share % self.pack:
            raise ValueError(f"--pack {self.pack}: each of the {world} processes' share of "
                             f"the batch, {share} samples, must be a multiple of it")
        if world == 1:
            return
        self.rank, self.world = distributed.get_rank(), world
        # the running statistics stay equal on every rank (SyncBatchNorm): none to broadcast
        self.G, self.D = (DistributedDataParallel(SyncBatchNorm.convert_sync_batchnorm(net),
                                                  broadcast_buffers=False)
                          for net in (self.G, self.D))

    # -- checkpoints: the networks themselves, so that any number of processes reads them
    def state_dict(self) -> dict:
        return {"G": unwrap(self.G).state_dict(), "D": unwrap(self.D).state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        unwrap(self.G).load_state_dict(state["G"])
        unwrap(self.D).load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])


@contextlib.contextmanager
def frozen(net):
    """Inside, net's parameters require no gradient, so a forward through it records no
    weight gradients: G's loss goes through D, but G's update steps G alone."""
    params = [p for p in net.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad = False
    try:
        yield
    finally:
        for p in params:
            p.requires_grad = True


def update(optimizer, loss: Tensor) -> None:
    """zero_grad, backward, step: one gradient step of the optimiser's parameters on `loss`.

    Only they get gradients (as loss.backward(inputs=...) in PyTorch): G's loss goes
    through D, but D's weights, which D's own update will zero first, get none here; so
    with data parallelism they are not averaged over the processes for nothing.
    """
    optimizer.zero_grad()
    mine = {id(p) for group in optimizer.param_groups for p in group["params"]}
    others = [t for t in _leaves(loss) if id(t) not in mine]
    for t in others:
        t.requires_grad = False
    try:
        loss.backward()
    finally:
        for t in others:
            t.requires_grad = True
    optimizer.step()


def _leaves(loss: Tensor) -> list:
    """The tensors requiring grad that the graph of `loss` starts from."""
    leaves, seen, stack = {}, set(), [loss.creator]
    while stack:
        f = stack.pop()
        if f is None or id(f) in seen:
            continue
        seen.add(id(f))
        for x in f.__dict__.get("inputs", ()):  # a Function a backward freed has none
            if x.creator is not None:
                stack.append(x.creator)
            elif x.requires_grad:
                leaves[id(x)] = x
    return list(leaves.values())
