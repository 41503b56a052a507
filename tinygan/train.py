"""`python -m tinygan.train VARIANT DATASET`: train a GAN and watch it learn.

A run folder (default runs/VARIANT-DATASET-TIMESTAMP/) collects everything:
  config.json          every setting, the versions, the seed
  samples/             a grid from one fixed batch of z every --sample-every steps
                       (for 2D data: generated points over the real mixture)
  training.gif         the grids in order
  losses.csv, .png     every loss at every generator step
  checkpoints/latest.npz   models, optimisers, step, random states: every epoch, at the
                       end, and on Ctrl-C. `--resume RUN` continues from it and ends
                       bit-identical to a run that was never interrupted.
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import math
import os
import signal
import sys
import threading
import time

import numpy as np

from . import backend
from .gans import VARIANTS, DataInfo, build, defaults
from .plots import atomic_path, save_gif, save_grid, save_losses_plot, save_scatter

REMEDY_FLAGS = ("feature_matching", "minibatch_discrimination", "pack", "label_smoothing")
TUNABLE = ("batch_size", "lr_g", "lr_d", "lr_decay", "betas", "z_dim", "n_critic")


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite."""


def _defaults_table() -> str:
    lines = ["defaults (from each paper; images 28x28 / 2D points):"]
    for name, (module, _) in VARIANTS.items():
        for info in (DataInfo("image", (1, 28, 28), 10), DataInfo("points", (2,), 8)):
            try:
                d = module.defaults(info)
            except ValueError:
                continue
            keys = ", ".join(f"{k}={v}" for k, v in d.items())
            lines.append(f"  {name:8s} {info.kind:6s} {keys}")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    from .data import NAMES
    p = argparse.ArgumentParser(
        prog="python -m tinygan.train", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a GAN from scratch on real data.",
        epilog=(f"variants: {', '.join(VARIANTS)}\ndatasets: {', '.join(NAMES)}\n\n"
                + _defaults_table()))
    p.add_argument("variant", nargs="?", help="one of: " + ", ".join(VARIANTS)
                   + " (not needed with --resume)")
    p.add_argument("dataset", nargs="?", help="one of: " + ", ".join(NAMES))
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, help="total length of the run in epochs")
    length.add_argument("--steps", type=int, help="total length in generator steps")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr-g", type=float)
    p.add_argument("--lr-d", type=float)
    p.add_argument("--lr-decay", choices=("none", "linear"),
                   help="linear: both learning rates fall linearly to 0 over the run "
                        "(default none)")
    p.add_argument("--betas", type=float, nargs=2, metavar=("BETA1", "BETA2"))
    p.add_argument("--z-dim", type=int)
    p.add_argument("--n-critic", type=int, help="discriminator updates per generator update")
    p.add_argument("--device", default=None, help="cpu or cuda (default $TINYGAN_DEVICE or cpu)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", help="where to look for data first")
    p.add_argument("--image-size", type=int,
                   help="image side for folder:, celeba and flowers (default: their own)")
    p.add_argument("--out", help="run folder (default runs/VARIANT-DATASET-TIMESTAMP)")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this folder")
    p.add_argument("--sample-every", type=int, default=500, help="steps between sample grids")
    p.add_argument("--eval-every", type=int, default=0,
                   help="steps between quality evaluations (FID or mode coverage); 0: off")
    p.add_argument("--no-progress", action="store_true", help="log lines instead of bars")
    remedies = p.add_argument_group("remedies for mode collapse")
    remedies.add_argument("--feature-matching", action="store_true",
                          help="G matches D's mean features (Salimans et al. 2016)")
    remedies.add_argument("--minibatch-discrimination", action="store_true",
                          help="D sees batch statistics (Salimans et al. 2016)")
    remedies.add_argument("--pack", type=int, default=1, metavar="N",
                          help="D judges N samples at once (PacGAN, Lin et al. 2018)")
    remedies.add_argument("--label-smoothing", type=float, nargs="?", const=0.1, default=0.0,
                          metavar="S", help="real targets 1 - S (default S 0.1)")
    options = p.add_argument_group("variant options")
    options.add_argument("--minimax", action="store_true",
                         help="vanilla: the original saturating G loss log(1 - D(G(z)))")
    options.add_argument("--projection", action="store_true",
                         help="cgan: projection discriminator (Miyato & Koyama 2018)")
    return p


# ------------------------------------------------------------------------ the run


def make_config(args, info: DataInfo) -> dict:
    size = getattr(args, "image_size", None)
    if size is not None and (info.kind != "image" or info.shape[1:] != (size, size)):
        raise ValueError(f"--image-size {size}: {args.dataset} has samples of shape "
                         f"{tuple(info.shape)} (only folder:, celeba and flowers are resized)")
    config = defaults(args.variant, info)
    for key in TUNABLE:
        value = getattr(args, key)
        if value is not None:
            config[key] = tuple(value) if key == "betas" else value
    set_length(config, args)
    config.update(variant=args.variant, dataset=args.dataset, seed=args.seed,
                  device=backend.check_device(args.device or backend.default_device()),
                  sample_every=args.sample_every, eval_every=args.eval_every,
                  feature_matching=args.feature_matching,
                  minibatch_discrimination=args.minibatch_discrimination,
                  pack=args.pack, label_smoothing=args.label_smoothing,
                  minimax=args.minimax, data_dir=args.data_dir, image_size=args.image_size)
    if args.projection:
        config["projection"] = True
    if config["pack"] > 1 and config["batch_size"] % config["pack"]:
        raise ValueError(f"--pack {config['pack']} must divide the batch size "
                         f"{config['batch_size']}")
    return config


def load_dataset(config: dict):
    """The training split of the config's dataset, at its --image-size if one was given."""
    from . import data
    return data.load(config["dataset"], root=config.get("data_dir"),
                     size=config.get("image_size"))


def describe(config: dict) -> str:
    """'vanilla + pack 2 on ring8': the variant, its remedies and the data, for titles."""
    remedies = [name.replace("_", " ") for name in ("feature_matching",
                                                    "minibatch_discrimination")
                if config.get(name)]
    if config.get("pack", 1) > 1:
        remedies.append(f"pack {config['pack']}")
    if config.get("label_smoothing"):
        remedies.append(f"label smoothing {config['label_smoothing']}")
    return " + ".join([config["variant"], *remedies]) + f" on {config['dataset']}"


def versions(device: str) -> dict:
    from . import __version__
    v = {"tinygan": __version__, "numpy": np.__version__, "python": sys.version.split()[0]}
    if device == "cuda":
        v["cupy"] = backend.cupy_module().__version__
    return v


def total_steps(config: dict, batches_per_epoch: int) -> int:
    if "steps" in config:
        return int(config["steps"])
    return int(config["epochs"]) * batches_per_epoch // int(config.get("n_critic", 1))


class Run:
    """One training run: its folder, its GAN, its data, its loop."""

    def __init__(self, config: dict, folder: str, resume: bool = False, progress: bool = True,
                 dataset=None):
        from .data import DataLoader
        self.config, self.folder, self.progress = config, folder, progress
        backend.manual_seed(config["seed"])
        self.dataset = dataset if dataset is not None else load_dataset(config)
        self.info = DataInfo.of(self.dataset)
        self.loader = DataLoader(self.dataset, config["batch_size"], shuffle=True,
                                      drop_last=True, seed=config["seed"],
                                      device=config["device"])
        self.gan = build(config["variant"], config, self.info)
        self.steps = total_steps(config, len(self.loader))
        self.step = 0
        self.schedulers = self.gan.lr_schedulers(self.steps)
        # a fixed batch of z (and labels) for the sample grids, from its own generator so
        # that taking samples never changes the training's random numbers
        rng = np.random.default_rng(config["seed"] + 1)
        n = 2500 if self.info.kind == "points" else 64
        self.fixed_labels = None
        if self.gan.conditional:  # images: one row of 8 per class; points: classes in turn
            k = self.info.num_classes
            self.fixed_labels = (np.repeat(np.arange(k), 8) if self.info.kind == "image"
                                 and k <= 16 else np.arange(n) % k)
            n = len(self.fixed_labels)
        self.fixed_z = rng.standard_normal((n, self.gan.z_dim)).astype(np.float32)
        os.makedirs(os.path.join(folder, "samples"), exist_ok=True)
        os.makedirs(os.path.join(folder, "checkpoints"), exist_ok=True)
        if resume:
            self.load_checkpoint()
            # the schedule carries on from the checkpoint's step (over the new length, if any)
            self.schedulers = self.gan.lr_schedulers(self.steps, self.step)
        # on resume too: the run's length may have changed (--steps, --epochs)
        with atomic_path(os.path.join(folder, "config.json")) as tmp, open(tmp, "w") as f:
            json.dump({**config, "versions": versions(config["device"])}, f, indent=2)
        self.csv_path = os.path.join(folder, "losses.csv")

    # -- checkpoints
    @property
    def checkpoint_path(self) -> str:
        return os.path.join(self.folder, "checkpoints", "latest.npz")

    def save_checkpoint(self) -> None:
        from .serialization import save
        info = {"kind": self.info.kind, "shape": list(self.info.shape),
                "num_classes": self.info.num_classes}  # so sampling needs no dataset
        save({"gan": self.gan.state_dict(), "step": self.step, "info": info,
              "rng": backend.get_rng_state(), "loader": self.loader.state_dict(),
              "config": json.dumps(self.config)}, self.checkpoint_path)

    def load_checkpoint(self) -> None:
        from .serialization import load
        state = load(self.checkpoint_path, device=self.config["device"])
        self.gan.load_state_dict(state["gan"])
        self.step = int(state["step"])
        backend.set_rng_state(state["rng"])
        self.loader.load_state_dict(state["loader"])
        self._truncate_csv(self.step)

    def _truncate_csv(self, step: int) -> None:
        """Drop loss rows written after the checkpoint (they will be written again)."""
        path = os.path.join(self.folder, "losses.csv")
        if not os.path.exists(path):
            return
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        kept = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= step]
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows(kept)

    # -- pictures
    def take_samples(self) -> None:
        from ._tensor import Tensor
        z = Tensor(backend.to_device(self.fixed_z, self.config["device"]))
        labels = None
        if self.fixed_labels is not None:
            labels = Tensor(backend.to_device(self.fixed_labels.astype(np.int64),
                                              self.config["device"]))
        fake = backend.to_numpy(self.gan.generate(z, labels).data)
        path = os.path.join(self.folder, "samples", f"step_{self.step:07d}.png")
        title = f"{describe(self.config)}, step {self.step}"
        if self.info.kind == "points":
            real = self.dataset.sample(len(fake), np.random.default_rng(0))[0]
            save_scatter(fake, real, path, title, centers=np.asarray(self.dataset.centers))
        else:
            save_grid(fake, path, nrow=8, scale=2 if fake.shape[-1] <= 32 else 1)

    def finish_pictures(self) -> None:
        frames = sorted(glob.glob(os.path.join(self.folder, "samples", "step_*.png")))
        save_gif(frames, os.path.join(self.folder, "training.gif"))
        if os.path.exists(self.csv_path):
            save_losses_plot(self.csv_path, os.path.join(self.folder, "losses.png"),
                             describe(self.config))

    def evaluate(self) -> None:
        """Score G now (FID & co. for images, mode coverage for 2D); append to metrics.csv."""
        from .metrics.evaluate import evaluate_gan
        scores = evaluate_gan(self.gan, self.dataset, self.config)
        path = os.path.join(self.folder, "metrics.csv")
        new = not os.path.exists(path)
        with open(path, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["step", *scores])
            writer.writerow([self.step, *scores.values()])
        from .plots import save_metric_plot
        save_metric_plot(path, os.path.join(self.folder, "fid.png"),
                         describe(self.config))

    # -- the loop
    def batches(self):
        while True:
            yield from self.loader

    def train(self) -> None:
        cfg = self.config
        stream = self.batches()
        next_batch = lambda: next(stream)  # noqa: E731
        writer, csv_file = None, None
        bar = self._bar()
        epoch = self.loader.epoch
        start = time.perf_counter()
        ctrl_c = []  # Ctrl-Cs seen by _defer_ctrl_c's handler
        previous_handler = _defer_ctrl_c(ctrl_c)
        try:
            if self.step == 0:
                self.take_samples()
            while self.step < self.steps:
                losses = self.gan.step(next_batch)
                for scheduler in self.schedulers:
                    scheduler.step()
                bad = [k for k, v in losses.items() if not math.isfinite(v)]
                if bad:
                    kept = (f"the last good checkpoint is {self.checkpoint_path}"
                            if os.path.exists(self.checkpoint_path) else
                            "no checkpoint was written yet (one is written every epoch)")
                    raise TrainingDiverged(f"step {self.step + 1}: {bad[0]} is "
                                           f"{losses[bad[0]]}; stopping; {kept}")
                self.step += 1
                if writer is None:
                    new = not os.path.exists(self.csv_path)
                    csv_file = open(self.csv_path, "a", newline="")
                    writer = csv.writer(csv_file)
                    if new:
                        writer.writerow(["step", "epoch", *losses])
                writer.writerow([self.step, self.loader.epoch,
                                 *(f"{v:.6g}" for v in losses.values())])
                self._report(bar, losses, start)
                if self.step % cfg["sample_every"] == 0 or self.step == self.steps:
                    csv_file.flush()
                    self.take_samples()
                if cfg.get("eval_every") and self.step % cfg["eval_every"] == 0:
                    self.evaluate()
                if self.loader.epoch != epoch:  # an epoch ended: checkpoint
                    epoch = self.loader.epoch
                    self.save_checkpoint()
                if ctrl_c:  # the step is whole: its checkpoint resumes bit-identically
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            if len(ctrl_c) > 1:  # stopped mid-step: that state is no step's, keep the old
                print(f"\ninterrupted during step {self.step + 1}; not saved (the last "
                      f"checkpoint is kept)", file=sys.stderr)
            else:
                print(f"\ninterrupted at step {self.step}; saving {self.checkpoint_path}",
                      file=sys.stderr)
                self.save_checkpoint()
            raise
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
            if bar is not None:
                bar.close()
            if csv_file is not None:
                csv_file.close()
            if os.path.exists(self.csv_path):
                self.finish_pictures()
        self.save_checkpoint()
        seconds = time.perf_counter() - start
        print(f"done: {self.steps} steps in {seconds:.1f} s; run folder {self.folder}")

    def _bar(self):
        if not self.progress:
            return None
        from tqdm import tqdm
        return tqdm(total=self.steps, initial=self.step, unit="step", dynamic_ncols=True,
                    desc=f"{self.config['variant']} {self.config['dataset']}")

    def _report(self, bar, losses, start):
        short = {k: f"{v:.3f}" for k, v in losses.items() if k in ("d_loss", "g_loss",
                                                                     "wasserstein")}
        if bar is not None:
            bar.set_postfix(epoch=self.loader.epoch, **short, refresh=False)
            bar.update(1)
        elif self.step % 100 == 0 or self.step == self.steps:
            rate = self.step / max(time.perf_counter() - start, 1e-9)
            print(f"step {self.step}/{self.steps} epoch {self.loader.epoch} "
                  + " ".join(f"{k} {v}" for k, v in short.items()) + f" ({rate:.1f} step/s)",
                  flush=True)


def _defer_ctrl_c(seen: list):
    """Make the first Ctrl-C stop the run after the step under way, the second at once.

    A step interrupted halfway has updated D but not G: a checkpoint of that would not be
    any step's state. Returns the previous handler (None off the main thread, where
    Python cannot catch signals and Ctrl-C keeps its usual meaning).
    """
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        seen.append(signum)
        if len(seen) > 1:
            raise KeyboardInterrupt
        print("\nCtrl-C: stopping after this step (Ctrl-C again to stop at once)",
              file=sys.stderr, flush=True)
    return signal.signal(signal.SIGINT, handler)


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    from .data import DATASETS, DatasetError
    if args.resume:
        try:
            config = resume_config(args)
        except (OSError, ValueError) as e:
            print(f"error: --resume {args.resume}: {e}", file=sys.stderr)
            return 2
        folder, dataset = args.resume, None
    else:
        if args.variant is None or args.dataset is None:
            print("error: give a VARIANT and a DATASET (or --resume RUN); valid variants: "
                  f"{', '.join(VARIANTS)}", file=sys.stderr)
            return 2
        if args.variant not in VARIANTS:
            print(f"error: unknown variant {args.variant!r}; valid: {', '.join(VARIANTS)}",
                  file=sys.stderr)
            return 2
        if args.dataset not in DATASETS and not args.dataset.startswith("folder:"):
            print(f"error: unknown dataset {args.dataset!r}; valid: {', '.join(DATASETS)}, "
                  "folder:PATH", file=sys.stderr)
            return 2
        try:  # loaded once here and handed to the run, so its warnings print once
            dataset = load_dataset(vars(args))
            config = make_config(args, DataInfo.of(dataset))
        except (DatasetError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = args.out or os.path.join("runs", f"{args.variant}-{args.dataset}-{stamp}")
        if os.path.exists(os.path.join(folder, "config.json")):  # never mix two runs
            print(f"error: {folder} already holds a run; continue it with --resume {folder} "
                  "or choose another --out", file=sys.stderr)
            return 2
    print(f"tinygan {config['variant']} on {config['dataset']}: "
          + ", ".join(f"{k}={v}" for k, v in config.items() if k not in ("variant", "dataset")))
    try:
        run = Run(config, folder, resume=bool(args.resume), progress=not args.no_progress,
                  dataset=dataset)
    except (DatasetError, ValueError, FileNotFoundError) as e:  # e.g. a remedy this
        # variant does not take, or a run to resume that never reached its first checkpoint
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        run.train()
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def set_length(config: dict, args) -> None:
    """--steps or --epochs, if given, replaces the run's length (whichever it had)."""
    if args.steps is not None:
        config.pop("epochs", None)
        config["steps"] = args.steps
    elif args.epochs is not None:
        config.pop("steps", None)
        config["epochs"] = args.epochs


def resume_config(args) -> dict:
    """The config of the run in args.resume, with a new length if --steps/--epochs is given."""
    with open(os.path.join(args.resume, "config.json")) as f:
        config = json.load(f)
    config.pop("versions", None)
    set_length(config, args)
    return config


if __name__ == "__main__":
    sys.exit(main())
