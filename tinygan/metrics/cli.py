"""`python -m tinygan.metrics.features train|show|floor DATASET`: the feature networks' commands.

train   trains a dataset's feature classifier and writes its weights (features.py)
show    prints a weight file's metadata: accuracy, data, the command that made it
floor   the real-data floor: FID of real train vs real test through that network
"""
from __future__ import annotations

import argparse
import time

from ..data import load
from . import features
from .evaluate import describe_scores
from .features import NETWORKS, cached_weights_path, feature_network, train_for_dataset


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tinygan.metrics.features",
                                description=features.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a feature network and write its weights")
    t.add_argument("dataset", choices=sorted(NETWORKS))
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--shift", type=int, default=0,
                   help="translate training images by up to this many pixels (augmentation)")
    t.add_argument("--out", default=None, help="weight file (default: the shipped one, or "
                   "the cache for cifar10)")
    t.add_argument("--data-dir", default=None)
    t.add_argument("--device", default="cpu")
    s = sub.add_parser("show", help="print a weight file's metadata")
    s.add_argument("dataset", choices=sorted(NETWORKS))
    f = sub.add_parser("floor", help="the real-data floor: FID of real train vs real test")
    f.add_argument("dataset", choices=sorted(NETWORKS))
    args = p.parse_args(argv)
    if args.command == "floor":
        start = time.perf_counter()
        about = describe_scores(load(args.dataset))
        print(f"{about['metric']} of real {about['dataset']}: train "
              f"({about['reference_samples']} images) vs test ({about['floor_samples']} "
              f"images) = {about['real_floor_fid']:.4g}  [{time.perf_counter() - start:.0f} s]")
        return 0
    if args.command == "train":
        out = args.out
        if out is None and NETWORKS[args.dataset][1] is None:
            out = cached_weights_path(args.dataset)
        train_for_dataset(args.dataset, args.epochs, args.seed, out, args.data_dir,
                          args.device, args.shift, log=lambda m: print(m, flush=True))
    else:
        network = feature_network(args.dataset, train_if_missing=False)
        for k, v in network.meta.items():
            print(f"{k:>14}: {v}")
    return 0
