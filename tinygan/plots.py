"""Pictures of a run: sample grids, 2D scatters, loss curves and the training GIF; and the
mode-collapse study's figures (a scatter per run, scores over training).

Every file is written atomically (a temporary file, then a rename), so a run stopped
halfway never leaves a broken picture behind.
"""
from __future__ import annotations

import csv
import math
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .data import load
from .files import atomic_path


def _pyplot():
    """matplotlib's pyplot, drawing off screen (imported only when a figure is drawn)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save_figure(fig, path: str) -> None:
    """Lay the figure out, write it atomically as a PNG, and free it."""
    with atomic_path(path) as tmp:
        fig.tight_layout()
        fig.savefig(tmp, format="png")
    _pyplot().close(fig)


def image_grid(images: np.ndarray, nrow: int | None = None, padding: int = 2) -> np.ndarray:
    """(N, C, H, W) floats in [-1, 1] -> one uint8 (H', W', C) picture, nrow images a row."""
    images = np.asarray(images, dtype=np.float32)
    n, c, h, w = images.shape
    nrow = nrow or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / nrow))
    pixels = np.clip((images + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    grid = np.full((rows * (h + padding) + padding, nrow * (w + padding) + padding, c), 255,
                   np.uint8)
    for k in range(n):
        r, q = divmod(k, nrow)
        top, left = padding + r * (h + padding), padding + q * (w + padding)
        grid[top:top + h, left:left + w] = pixels[k].transpose(1, 2, 0)
    return grid


def save_grid(images: np.ndarray, path: str, nrow: int | None = None,
              scale: int | None = None) -> None:
    """Save (N, C, H, W) images in [-1, 1] as one PNG grid; small images (32 pixels or
    less) are drawn twice their size unless `scale` says otherwise."""
    if scale is None:
        scale = 2 if images.shape[-1] <= 32 else 1
    grid = image_grid(images, nrow)
    picture = Image.fromarray(grid[:, :, 0] if grid.shape[2] == 1 else grid)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale),
                                 Image.NEAREST)
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")


def save_scatter(fake: np.ndarray, real: np.ndarray, path: str, title: str = "",
                 centers: np.ndarray | None = None) -> None:
    """Generated 2D points over the real mixture."""
    plt = _pyplot()

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.scatter(real[:, 0], real[:, 1], s=2, c="#bbbbbb", label="real")
    ax.scatter(fake[:, 0], fake[:, 1], s=2, c="#d62728", label="generated")
    if centers is not None:
        ax.scatter(centers[:, 0], centers[:, 1], s=12, marker="x", c="black")
    lim = 1.25 * max(np.abs(real).max(), 1e-3)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=7, markerscale=3)
    _save_figure(fig, path)


#: losses.csv columns that are D's mean output, a probability, drawn on their own axis
PROBABILITIES = ("d_real", "d_fake")


def save_losses_plot(csv_path: str, path: str, title: str = "") -> None:
    """Every column of losses.csv against the step (light raw, dark smoothed): the losses
    (and WGAN's estimates) on one axis, D's mean outputs on real and fake (probabilities,
    0 to 1) on a second one below, so neither squashes the other. The loss axis spans the
    raw values' 0.5th to 99.5th percentiles: a rare spike runs off the top, not the scale."""
    plt = _pyplot()

    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    steps = np.array([int(r["step"]) for r in rows])
    names = [k for k in rows[0] if k not in ("step", "epoch", "seconds")]
    columns = {name: np.array([float(r[name]) for r in rows]) for name in names}
    losses = [n for n in names if n not in PROBABILITIES]
    probabilities = [n for n in names if n in PROBABILITIES]
    panels = [losses] + ([probabilities] if probabilities else [])
    fig, axes = plt.subplots(len(panels), 1, sharex=True, squeeze=False, dpi=100,
                             figsize=(7, 3.5 if len(panels) == 1 else 5.2),
                             gridspec_kw={"height_ratios": [3, 2][:len(panels)]})
    window = max(1, len(rows) // 100)
    color = {name: f"C{i}" for i, name in enumerate(names)}
    for ax, panel in zip(axes[:, 0], panels):
        for name in panel:
            values = columns[name]
            ax.plot(steps, values, color=color[name], alpha=0.25, linewidth=0.6)
            if window > 1:
                smooth = np.convolve(values, np.ones(window) / window, mode="valid")
                ax.plot(steps[window - 1:], smooth, color=color[name], label=name,
                        linewidth=1.4)
            else:
                ax.plot([], [], color=color[name], label=name)
        ax.legend(fontsize=8, loc="upper right")
        ax.grid(alpha=0.3)
    top = axes[0, 0]
    if losses:
        raw = np.concatenate([columns[n] for n in losses])
        raw = raw[np.isfinite(raw)]
        if raw.size:
            lo, hi = np.percentile(raw, [0.5, 99.5])
            pad = 0.05 * max(hi - lo, 1e-6)
            top.set_ylim(lo - pad, hi + pad)
    top.set_ylabel("loss" if all("loss" in n for n in losses) else "loss / estimate")
    top.set_title(title, fontsize=9)
    if probabilities:
        bottom = axes[1, 0]
        bottom.set_ylim(-0.02, 1.02)
        bottom.set_ylabel("D's mean output\n(probability real)")
    axes[-1, 0].set_xlabel("generator step")
    _save_figure(fig, path)


def step_of(frame_path: str) -> int | None:
    """The step in a sample grid's name, samples/step_0001500.png -> 1500 (None if none)."""
    stem = os.path.splitext(os.path.basename(frame_path))[0]
    digits = stem.rpartition("_")[2]
    return int(digits) if digits.isdigit() else None


def labelled_frame(frame_path: str) -> Image.Image:
    """A sample grid with "step N" written on a white band above it."""
    image = Image.open(frame_path).convert("RGB")
    step = step_of(frame_path)
    if step is None:
        return image
    text, font = f"step {step:,}", ImageFont.load_default(size=max(10, image.width // 30))
    band = ImageDraw.Draw(image).textbbox((0, 0), text, font=font)[3] + 8
    framed = Image.new("RGB", (image.width, image.height + band), "white")
    framed.paste(image, (0, band))
    ImageDraw.Draw(framed).text((6, 4), text, fill="black", font=font)
    return framed


def save_gif(frame_paths: list[str], path: str, ms_per_frame: int = 200) -> None:
    """Join PNG frames into an animated GIF, each labelled with its step (read from its
    name, samples/step_NNNNNNN.png), the last frame held longer."""
    if not frame_paths:
        return
    frames = [labelled_frame(p) for p in frame_paths]
    durations = [ms_per_frame] * (len(frames) - 1) + [ms_per_frame * 5]
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:],
                       duration=durations, loop=0)


def save_metric_plot(csv_path: str, path: str, title: str = "") -> None:
    """Plot the first score column of metrics.csv (FID, or modes covered) over training."""
    plt = _pyplot()

    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    name = next(k for k in rows[0] if k != "step")
    steps = [int(r["step"]) for r in rows]
    values = [float(r[name]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.plot(steps, values, "o-", color="C3")
    ax.set_xlabel("generator step")
    ax.set_ylabel(name)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    _save_figure(fig, path)


def save_mixture_scatters(runs, method, datasets, seeds, path, n_real: int = 2500) -> None:
    """A mode-collapse study's runs: generated points (red, each run's "samples") over
    n_real points of the real mixture (grey); a row per dataset, a column per seed."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(datasets), seeds, figsize=(2.2 * seeds, 2.3 * len(datasets)),
                             dpi=100, squeeze=False)
    for row, d in enumerate(datasets):
        mixture = load(d)
        real = mixture.sample(n_real, np.random.default_rng(0))[0]
        lim = 1.25 * np.abs(mixture.centers).max()
        for col in range(seeds):
            ax = axes[row, col]
            run = next(r for r in runs if r["dataset"] == d and r["seed"] == col)
            fake = np.asarray(run["samples"])
            ax.scatter(real[:, 0], real[:, 1], s=1, c="#bbbbbb", linewidths=0)
            ax.scatter(fake[:, 0], fake[:, 1], s=1, c="#d62728", linewidths=0)
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{d} seed {col}: {run['modes_covered']}/{len(mixture.centers)}, "
                         f"{100 * run['high_quality_fraction']:.0f}%", fontsize=7)
    fig.suptitle(f"{method}: generated (red) over real (grey)", fontsize=9)
    _save_figure(fig, path)


def save_score_trajectories(runs, method, datasets, path) -> None:
    """A mode-collapse study's runs: modes covered and high-quality % over training
    (each run's "trajectory"); a line per seed, a row per dataset."""
    plt = _pyplot()

    fig, axes = plt.subplots(len(datasets), 2, figsize=(8, 2.6 * len(datasets)), dpi=100,
                             squeeze=False)
    for row, d in enumerate(datasets):
        left, right = axes[row]
        mine = sorted((r for r in runs if r["dataset"] == d), key=lambda r: r["seed"])
        for run in mine:
            points = run["trajectory"] + [run]  # the end is the run's own score
            steps = [p.get("step", run["steps"]) for p in points]
            left.plot(steps, [p["modes_covered"] for p in points], marker=".",
                      label=f"seed {run['seed']}")
            right.plot(steps, [100 * p["high_quality_fraction"] for p in points], marker=".")
        left.set_title(f"{d}: modes covered (of {len(mine[0]['histogram'])})", fontsize=9)
        right.set_title(f"{d}: high quality %", fontsize=9)
        for ax in (left, right):
            ax.xaxis.set_major_formatter(lambda x, _: f"{x / 1000:g}k" if x else "0")
            ax.set_xlabel("generator step", fontsize=8)
            ax.grid(alpha=0.3)
        left.legend(fontsize=7)
    fig.suptitle(f"{method}: scores over training", fontsize=9)
    _save_figure(fig, path)
