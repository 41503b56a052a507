"""Train the same GAN in PyTorch for the same budget as a tinygan run, and score both alike.

    python benchmarks/quality_vs_torch.py RUN [--samples 10000] [--threads 1]

RUN is a finished tinygan run folder (`python -m tinygan.train vanilla|dcgan DATASET ...`),
or a checkpoint of one. This script rebuilds the same networks in PyTorch (same shapes, same
initialisation scheme, same optimiser, same losses, same batch size and number of
generator steps, the same sequence of real batches), trains them, then draws the same
number of samples from both generators and scores both with the same tinygan metric
(FID and KID on tinygan's LeNet features, precision/recall, class coverage). It writes
RUN/quality_vs_torch.json and a PNG grid of the PyTorch samples beside the run's.

PyTorch is optional: it is only imported here, never by tinygan.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def torch_networks(torch, config: dict, shape: tuple):
    """The run's networks for 28x28 gray images, in PyTorch, built from its config.

    vanilla: tinygan.gans.nets' MLPs (G 256-512-1024, D 1024-512-256, LeakyReLU 0.2) with
    the recipe's BatchNorm1d in G's hidden layers (g_batchnorm) and Dropout after D's
    (d_dropout); PyTorch's default initialisation, which is tinygan's. dcgan: the
    dcgan-mnist benchmark's networks (tinygan/bench_models.py builds them for either
    library from one source), with Radford et al.'s initialisation.
    """
    from tinygan.bench_models import WORKLOAD_SPECS, torch_framework

    nn = torch.nn
    variant, z_dim = config["variant"], config["z_dim"]
    if tuple(shape) != (1, 28, 28) or z_dim != 100 or variant not in ("vanilla", "dcgan"):
        raise SystemExit(f"quality_vs_torch: no PyTorch twin for {variant} at {shape}, "
                         f"z_dim {z_dim}")
    if variant == "vanilla":
        bn, p = bool(config.get("g_batchnorm")), float(config.get("d_dropout", 0.0))
        g_layers, width = [], z_dim
        for h in (256, 512, 1024):
            g_layers += [nn.Linear(width, h), *([nn.BatchNorm1d(h)] if bn else []),
                         nn.LeakyReLU(0.2)]
            width = h
        G = nn.Sequential(*g_layers, nn.Linear(width, 784), nn.Tanh(),
                          nn.Unflatten(1, tuple(shape)))
        d_layers, width = [nn.Flatten()], 784
        for h in (1024, 512, 256):
            d_layers += [nn.Linear(width, h), nn.LeakyReLU(0.2), *([nn.Dropout(p)] if p else [])]
            width = h
        return G, nn.Sequential(*d_layers, nn.Linear(width, 1))
    G, D = WORKLOAD_SPECS["dcgan-mnist"].build(torch_framework(), lambda m: m)
    for m in list(G.modules()) + list(D.modules()):  # Radford et al. 2016's init
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return G, D


#: settings the twin does not reproduce: a run that uses one is refused
NOT_IN_THE_TWIN = ("feature_matching", "minibatch_discrimination", "minimax", "projection")


def check_twin(config: dict) -> None:
    """Refuse a run whose recipe the PyTorch twin would not train alike."""
    used = [k for k in NOT_IN_THE_TWIN if config.get(k)]
    if config.get("pack", 1) > 1:
        used.append("pack")
    if config.get("label_smoothing"):
        used.append("label_smoothing")
    if config.get("lr_decay", "none") != "none":
        used.append("lr_decay")
    if config.get("n_critic", 1) != 1:
        used.append("n_critic")
    if used:
        raise SystemExit(f"quality_vs_torch: the PyTorch twin does not train with "
                         f"{', '.join(used)}")


def train_torch(config: dict, info, dataset, threads: int):
    """Train the PyTorch twin on the same batches, in the same order, as the tinygan run."""
    import torch
    from tinygan.data import DataLoader

    torch.manual_seed(config["seed"])
    torch.set_num_threads(threads)
    G, D = torch_networks(torch, config, tuple(info.shape))
    betas = tuple(config["betas"])
    opt_g = torch.optim.Adam(G.parameters(), lr=config["lr_g"], betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=config["lr_d"], betas=betas)
    bce = torch.nn.BCEWithLogitsLoss()
    loader = DataLoader(dataset, config["batch_size"], shuffle=True, drop_last=True,
                        seed=config["seed"], device="cpu")
    steps, step = int(config["steps"]), 0
    start = time.perf_counter()
    while step < steps:
        for real, _ in loader:
            real = torch.from_numpy(real.numpy())
            n = real.shape[0]
            fake = G(torch.randn(n, config["z_dim"])).detach()
            loss_d = bce(D(real), torch.ones(n, 1)) + bce(D(fake), torch.zeros(n, 1))
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            loss_g = bce(D(G(torch.randn(n, config["z_dim"]))), torch.ones(n, 1))
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
            step += 1
            if step % 500 == 0:
                print(f"torch step {step}/{steps} d_loss {loss_d.item():.3f} "
                      f"g_loss {loss_g.item():.3f}", flush=True)
            if step >= steps:
                break
    seconds = time.perf_counter() - start
    G.eval()  # tinygan samples its generator in eval mode too
    return G, seconds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a finished tinygan run folder (vanilla or dcgan), or a "
                               "checkpoint of one (e.g. benchmarks/recipes/runs/*.npz)")
    p.add_argument("--out", help="folder for quality_vs_torch.json and torch_samples.png "
                                 "(default: the run folder; for a checkpoint FILE.npz, FILE/)")
    p.add_argument("--samples", type=int, default=10000)
    p.add_argument("--threads", type=int, default=1, help="PyTorch threads")
    args = p.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("quality_vs_torch: PyTorch is not installed; nothing to compare "
              "(pip install torch)")
        return 0

    from tinygan.metrics.evaluate import (dataset_key, describe_scores, real_statistics,
                                          score_images)
    from tinygan.metrics.features import feature_network
    from tinygan.plots import save_grid
    from tinygan.sample import load_gan, sample

    gan, config, dataset = load_gan(args.run)
    check_twin(config)
    out = args.out or (args.run[:-len(".npz")] if args.run.endswith(".npz") else args.run)
    os.makedirs(out, exist_ok=True)
    if "steps" not in config:
        raise SystemExit("quality_vs_torch: the run must have been made with --steps N")
    G, torch_seconds = train_torch(config, gan.info, dataset, args.threads)
    rng = np.random.default_rng(1234)
    with torch.no_grad():
        z = torch.from_numpy(rng.standard_normal((args.samples, config["z_dim"]))
                             .astype(np.float32))
        torch_images = np.concatenate([G(z[i:i + 500]).numpy()
                                       for i in range(0, args.samples, 500)])
    tiny_images = sample(gan, args.samples, seed=1234)
    save_grid(torch_images[:64], os.path.join(out, "torch_samples.png"), nrow=8, scale=2)

    name = dataset_key(dataset)
    network = feature_network(name)
    real = real_statistics(name, network)
    scores = {"tinygan": dict(score_images(tiny_images, network, real)),
              "torch": dict(score_images(torch_images, network, real))}
    ratio = scores["tinygan"]["fid"] / max(scores["torch"]["fid"], 1e-12)
    result = {"run": args.run, "variant": config["variant"], "dataset": config["dataset"],
              "steps": config["steps"], "batch_size": config["batch_size"],
              "samples": args.samples, "torch_version": torch.__version__,
              "torch_train_seconds": round(torch_seconds, 1), "scores": scores,
              "measured_with": describe_scores(dataset, args.samples, config),
              "fid_ratio_tinygan_over_torch": ratio}
    with open(os.path.join(out, "quality_vs_torch.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
