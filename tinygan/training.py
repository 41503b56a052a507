"""Training a GAN: the one loop that every command runs, and the one checkpoint it writes.

    training = Training(config)        # the data, its loader, the GAN, the lr schedule
    training.fit([log, save])          # steps the GAN until training.steps
    state = training.state_dict()      # what a checkpoint holds; load_state_dict resumes

The loop is pytorch/examples' dcgan loop with the variant's own `step` (its discriminator
update(s), then its generator update) inside. What a command does around the steps
(write a loss row, draw samples, score, save a checkpoint) are callbacks, called after
every whole step with the step's losses: `python -m tinygan.train` and `python -m
tinygan.study` differ only in their callbacks.

`Training(config, data_parallel=True)` under a process group of N ranks
(tinygan.distributed) trains one GAN on all of them: `batch_size` stays the global batch,
each rank reads its share of it (DataLoader's rank and world_size) and steps a replica
(GAN.data_parallel); the losses the callbacks see are the global batch's, the same on
every rank. Every rank's state_dict() is the same, in the format one process writes.
"""
from __future__ import annotations

import json
import math

import numpy as np

from . import backend, data, distributed
from .gans import DataInfo, build


class TrainingDiverged(RuntimeError):
    """A loss or a weight became NaN or infinite; the message names the step."""


def load_dataset(config: dict):
    """The training split of the config's dataset, at its --image-size if one was given."""
    return data.load(config["dataset"], root=config.get("data_dir"),
                     size=config.get("image_size"))


def total_steps(config: dict, batches_per_epoch: int) -> int:
    """The run's length in generator steps: `steps`, or `epochs` of the data (each step
    reads n_critic batches)."""
    if "steps" in config:
        return int(config["steps"])
    return int(config["epochs"]) * batches_per_epoch // int(config.get("n_critic", 1))


def _bad_loss(losses: dict):
    """The name of the first loss that is not finite, or None."""
    for name, value in losses.items():
        if not math.isfinite(value):
            return name
    return None


class Training:
    """A GAN on its data: everything that a checkpoint holds, and the loop that steps it."""

    def __init__(self, config: dict, dataset=None, data_parallel: bool = False):
        self.config = config
        backend.manual_seed(config["seed"])  # every rank the same: their draws stay equal
        self.dataset = dataset if dataset is not None else load_dataset(config)
        self.info = DataInfo.of(self.dataset)
        self.world = distributed.get_world_size() if data_parallel else 1
        rank = distributed.get_rank() if data_parallel else 0
        self.loader = data.DataLoader(self.dataset, config["batch_size"], shuffle=True,
                                      drop_last=True, seed=config["seed"],
                                      device=config["device"], rank=rank,
                                      world_size=self.world)
        self.gan = build(config["variant"], config, self.info)
        if data_parallel:
            self.gan.data_parallel()
        self.steps = total_steps(config, len(self.loader))
        self.step = 0
        self.schedulers = self.gan.lr_schedulers(self.steps)

    # -- the loop
    def batches(self):
        """The loader's batches, epoch after epoch, without end."""
        while True:
            yield from self.loader

    def fit(self, callbacks=(), stop=lambda: False) -> None:
        """Step the GAN until `self.steps`, calling `callback(self, losses)` after each step.

        `stop()` is asked after every whole step (and its callbacks): True ends the loop
        there, with the state of a step that a checkpoint can resume from. With data
        parallelism the losses are averaged over the ranks (the global batch's means), and
        stop() must answer the same on every rank (Run's does: its ranks agree).
        """
        stream = self.batches()
        next_batch = lambda: next(stream)  # noqa: E731  (a variant may read n_critic batches)
        while self.step < self.steps:
            losses = self.gan.step(next_batch)
            for scheduler in self.schedulers:
                scheduler.step()
            self.step += 1
            if self.world > 1:
                values = np.array(list(losses.values()), dtype=np.float64)
                distributed.all_reduce(values, distributed.ReduceOp.AVG)
                losses = dict(zip(losses, values.tolist()))
            bad = _bad_loss(losses)  # the same on every rank: all of them stop here
            if bad is not None:
                raise TrainingDiverged(f"step {self.step}: {bad} is {losses[bad]}")
            for callback in callbacks:
                callback(self, losses)
            if stop():
                return

    @property
    def finished(self) -> bool:
        return self.step >= self.steps

    @property
    def epochs_done(self) -> int:
        """Epochs read to their end (the loader counts one only when the next begins)."""
        return self.loader.epoch + self.loader.position // len(self.loader)

    # -- checkpoints
    def state_dict(self) -> dict:
        """The one checkpoint format: the GAN (networks and optimisers), the step, the
        random state, the loader's place in its epoch, the settings, and the number of
        processes that trained it (every rank's state is this same state)."""
        info = {"kind": self.info.kind, "shape": list(self.info.shape),
                "num_classes": self.info.num_classes}  # so sampling needs no dataset
        return {"gan": self.gan.state_dict(), "step": self.step, "info": info,
                "rng": backend.get_rng_state(), "loader": self.loader.state_dict(),
                "config": json.dumps(self.config), "processes": self.world}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a checkpoint: the next step is the one that would have come next."""
        self.gan.load_state_dict(state["gan"])
        self.step = int(state["step"])
        backend.set_rng_state(state["rng"])
        self.loader.load_state_dict(state["loader"])
        # the schedule carries on from the checkpoint's step (over the new length, if any)
        self.schedulers = self.gan.lr_schedulers(self.steps, self.step)

    def check_finite(self) -> None:
        """Raise TrainingDiverged when a weight or an optimiser's state is NaN or infinite
        (a checkpoint of that would be no use to resume from)."""
        for name, tree in self.gan.state_dict().items():
            where = _first_non_finite(tree, name)
            if where:
                raise TrainingDiverged(f"step {self.step}: {where} holds NaN or infinite "
                                       "values")


def _first_non_finite(tree, path: str) -> str | None:
    """The path of the first floating-point array in a state tree that is not all finite."""
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, (list, tuple)):
        items = enumerate(tree)
    else:
        array = getattr(tree, "data", tree)
        if hasattr(array, "dtype") and array.dtype.kind == "f":
            if not bool(backend.get_array_module(array).isfinite(array).all()):
                return path
        return None
    for key, value in items:
        where = _first_non_finite(value, f"{path}.{key}")
        if where:
            return where
    return None
