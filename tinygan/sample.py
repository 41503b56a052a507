"""`python -m tinygan.sample RUN_OR_CHECKPOINT -n N --out FILE [--label K] [--seed S]`

Writes a PNG grid of N samples (drawn as the training's grids are), or with an .npz FILE
the raw samples (float32 NCHW in [-1, 1] under the key `images`; for 2D data an (N, 2)
array).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from . import data
from .files import atomic_path
from .gans import DataInfo, build
from .plots import save_grid, save_scatter
from .run_folder import CHECKPOINT_KEYS
from .serialization import CheckpointError, load


def load_gan(path: str, device: str | None = None, with_data: bool = True):
    """The GAN of a run folder (its checkpoints/latest.npz) or of a checkpoint file.

    Returns (gan, config, dataset). with_data=False skips loading an image dataset (the
    dataset is then None): the checkpoint knows the images' shape and classes."""
    checkpoint = path if path.endswith(".npz") else os.path.join(path, "checkpoints",
                                                                 "latest.npz")
    if not os.path.exists(checkpoint):
        raise FileNotFoundError(f"no checkpoint at {checkpoint}")
    state = load(checkpoint, device=device or "cpu")
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise ValueError(f"{checkpoint} is not a training checkpoint (it has no "
                         f"{', '.join(repr(k) for k in missing)})")
    config = json.loads(state["config"])
    config["device"] = device or "cpu"
    saved = state.get("info")
    if not with_data and saved is not None and saved["kind"] == "image":
        dataset, info = None, DataInfo(saved["kind"], tuple(saved["shape"]),
                                       int(saved["num_classes"]))
    else:  # 2D: the scatter draws the real mixture too (and old checkpoints lack "info")
        dataset = data.load(config["dataset"], root=config.get("data_dir"),
                            size=config.get("image_size"))
        info = DataInfo.of(dataset)
    gan = build(config["variant"], config, info)
    try:
        gan.load_state_dict(state["gan"])
    except (RuntimeError, KeyError) as e:
        raise ValueError(f"{checkpoint} does not fit a {config['variant']} GAN on "
                         f"{config['dataset']} ({str(e).splitlines()[-1].strip()})") from None
    return gan, config, dataset


def sample(gan, n: int, label: int | None = None, seed: int = 0) -> np.ndarray:
    """n samples of G as a float32 NumPy array (all of class `label`, for a cgan)."""
    labels = None
    if label is not None:
        if not gan.conditional:
            raise ValueError(f"--label needs a conditional variant (cgan), not {gan.name}")
        k = gan.info.num_classes
        if not 0 <= label < k:
            raise ValueError(f"--label {label} is outside the {k} classes [0, {k})")
        labels = np.full(n, label)
    return gan.samples(n, seed, labels)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tinygan.sample", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a run folder or a checkpoint .npz")
    p.add_argument("-n", type=int, default=64, help="how many samples")
    p.add_argument("--out", required=True, help="a .png grid or an .npz of raw samples")
    p.add_argument("--label", type=int, help="the class to sample (cgan)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    try:
        if args.n < 1:
            raise ValueError(f"-n must be at least 1, got {args.n}")
        gan, config, dataset = load_gan(args.run, args.device, with_data=False)
        images = sample(gan, args.n, args.label, args.seed)
        if args.out.endswith(".npz"):
            with atomic_path(args.out) as tmp:
                np.savez(tmp, images=images)
        elif gan.info.kind == "points":
            real = dataset.sample(len(images), np.random.default_rng(0))[0]
            save_scatter(images, real, args.out, centers=np.asarray(dataset.centers))
        else:
            save_grid(images, args.out, nrow=int(np.ceil(np.sqrt(args.n))))
    except (FileNotFoundError, ValueError, RuntimeError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot write {args.out}: {e.strerror or e}", file=sys.stderr)
        return 2
    print(f"wrote {args.n} samples to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
