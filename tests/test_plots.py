"""The pictures of a run: the loss plot's axes, and the training GIF's labelled frames."""
import csv

import numpy as np
import pytest
from PIL import Image

from tinygan import plots


def write_losses(path, columns: dict, n=300):
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "epoch", *columns])
        for step in range(1, n + 1):
            w.writerow([step, step // 100, *(f(step, rng) for f in columns.values())])


@pytest.fixture
def figures(monkeypatch):
    """The figures the plots would save, kept open to look at."""
    kept = []
    monkeypatch.setattr(plots, "_save_figure", lambda fig, path: kept.append(fig))
    yield kept
    for fig in kept:
        plots._pyplot().close(fig)


def test_losses_plot_gives_d_probabilities_their_own_axis(tmp_path, figures):
    write_losses(tmp_path / "losses.csv", {
        "d_loss": lambda s, r: 1.1 + 0.1 * r.standard_normal(),
        "g_loss": lambda s, r: 60.0 if s == 150 else 0.9 + 0.1 * r.standard_normal(),
        "d_real": lambda s, r: 0.6 + 0.05 * r.standard_normal(),
        "d_fake": lambda s, r: 0.4 + 0.05 * r.standard_normal()})
    plots.save_losses_plot(str(tmp_path / "losses.csv"), str(tmp_path / "losses.png"))
    top, bottom = figures[0].axes
    assert top.get_ylabel() == "loss" and "probability" in bottom.get_ylabel()
    assert [t.get_text() for t in top.get_legend().get_texts()] == ["d_loss", "g_loss"]
    assert [t.get_text() for t in bottom.get_legend().get_texts()] == ["d_real", "d_fake"]
    assert bottom.get_ylim() == pytest.approx((-0.02, 1.02))
    low, high = top.get_ylim()
    assert 0.3 < low < 0.9 and 1.3 < high < 5  # scaled to the losses, not the one spike
    assert top.get_xlabel() == "" and bottom.get_xlabel() == "generator step"


def test_losses_plot_of_a_critic_has_one_labelled_axis(tmp_path, figures):
    write_losses(tmp_path / "losses.csv", {
        "d_loss": lambda s, r: -1.0 + 0.1 * r.standard_normal(),
        "g_loss": lambda s, r: 0.5, "wasserstein": lambda s, r: 1.0,
        "gp": lambda s, r: 0.05})
    plots.save_losses_plot(str(tmp_path / "losses.csv"), str(tmp_path / "losses.png"))
    (ax,) = figures[0].axes
    assert ax.get_ylabel() == "loss / estimate" and ax.get_xlabel() == "generator step"
    assert len(ax.get_legend().get_texts()) == 4


def test_gif_frames_are_labelled_with_their_step(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (16, 1, 28, 28)).astype(np.float32)
    (tmp_path / "samples").mkdir()
    paths = [str(tmp_path / "samples" / f"step_{s:07d}.png") for s in (0, 500, 12600)]
    for p in paths:
        plots.save_grid(images, p, nrow=4)  # the same grid: only the label differs
    assert [plots.step_of(p) for p in paths] == [0, 500, 12600]
    plots.save_gif(paths, str(tmp_path / "training.gif"))
    grid = np.asarray(Image.open(paths[0]).convert("L"))
    gif = Image.open(tmp_path / "training.gif")
    bands = []
    for k in range(3):
        gif.seek(k)
        frame = np.asarray(gif.convert("L"))
        band = frame.shape[0] - grid.shape[0]
        assert frame.shape[1] == grid.shape[1] and band > 8
        np.testing.assert_array_equal(frame[band:], grid)  # the grid itself untouched
        assert (frame[:band] < 128).any()  # the label: dark text on white
        bands.append(frame[:band])
    assert not np.array_equal(bands[0], bands[1]) and not np.array_equal(bands[1], bands[2])
