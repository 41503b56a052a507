"""Train the same GAN in PyTorch for the same budget as a tinygan run, and score both alike.

    python benchmarks/quality_vs_torch.py RUN [--samples 10000] [--threads 1]

RUN is a finished tinygan run folder (`python -m tinygan.train vanilla|dcgan DATASET
--steps N ...`). This script rebuilds the same networks in PyTorch (same shapes, same
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


def torch_networks(torch, variant: str, z_dim: int, shape: tuple):
    """tinygan.gans' networks for 28x28 gray images, in PyTorch.

    They are the benchmark workloads' networks (tinygan/bench_models.py builds them for
    either library from one source), with Radford et al.'s initialisation for DCGAN.
    """
    from tinygan.bench_models import WORKLOAD_SPECS, torch_framework

    nn = torch.nn
    if tuple(shape) != (1, 28, 28) or z_dim != 100 or variant not in ("vanilla", "dcgan"):
        raise SystemExit(f"quality_vs_torch: no PyTorch twin for {variant} at {shape}, "
                         f"z_dim {z_dim}")
    G, D = WORKLOAD_SPECS[f"{variant}-mnist"].build(torch_framework(), lambda m: m)
    if variant == "vanilla":  # the workload's MLPs work on flat vectors
        return nn.Sequential(G, nn.Unflatten(1, tuple(shape))), nn.Sequential(nn.Flatten(), D)
    for m in list(G.modules()) + list(D.modules()):  # Radford et al. 2016's init
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return G, D


def train_torch(config: dict, info, dataset, threads: int):
    """Train the PyTorch twin on the same batches, in the same order, as the tinygan run."""
    import torch
    from tinygan.data import DataLoader

    torch.manual_seed(config["seed"])
    torch.set_num_threads(threads)
    G, D = torch_networks(torch, config["variant"], config["z_dim"], tuple(info.shape))
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
    p.add_argument("run", help="a finished tinygan run folder (vanilla or dcgan)")
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
    save_grid(torch_images[:64], os.path.join(args.run, "torch_samples.png"), nrow=8,
              scale=2)

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
    with open(os.path.join(args.run, "quality_vs_torch.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
