"""Pictures of a run: sample grids, 2D scatters, loss curves and the training GIF.

Every file is written atomically (a temporary file, then a rename), so a run stopped
halfway never leaves a broken picture behind.
"""
from __future__ import annotations

import csv
import math

import numpy as np

from .files import atomic_path


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


def save_grid(images: np.ndarray, path: str, nrow: int | None = None, scale: int = 1) -> None:
    """Save (N, C, H, W) images in [-1, 1] as one PNG grid."""
    from PIL import Image

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
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def save_losses_plot(csv_path: str, path: str, title: str = "") -> None:
    """Plot every loss column of losses.csv against the step (light raw, dark smoothed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    steps = np.array([int(r["step"]) for r in rows])
    names = [k for k in rows[0] if k not in ("step", "epoch", "seconds")]
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    window = max(1, len(rows) // 100)
    for i, name in enumerate(names):
        values = np.array([float(r[name]) for r in rows])
        color = f"C{i}"
        ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.6)
        if window > 1:
            smooth = np.convolve(values, np.ones(window) / window, mode="valid")
            ax.plot(steps[window - 1:], smooth, color=color, label=name, linewidth=1.4)
        else:
            ax.plot([], [], color=color, label=name)
    ax.set_xlabel("generator step")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def save_gif(frame_paths: list[str], path: str, ms_per_frame: int = 200) -> None:
    """Join PNG frames into an animated GIF (the last frame held longer)."""
    from PIL import Image

    if not frame_paths:
        return
    frames = [Image.open(p).convert("RGB") for p in frame_paths]
    durations = [ms_per_frame] * (len(frames) - 1) + [ms_per_frame * 5]
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:],
                       duration=durations, loop=0)


def save_metric_plot(csv_path: str, path: str, title: str = "") -> None:
    """Plot the first score column of metrics.csv (FID, or modes covered) over training."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
