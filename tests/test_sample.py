"""`python -m tinygan.sample RUN -n N --out FILE`: PNG grids and raw .npz samples."""
import numpy as np
import pytest

from tinygan import sample, train


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two one-step runs: a cgan on the bundled MNIST digits and a vanilla GAN on ring8."""
    root = tmp_path_factory.mktemp("runs")
    for name, argv in {"cgan": ["cgan", "mnist-10k"], "vanilla": ["vanilla", "ring8"]}.items():
        args = train.parser().parse_args(argv + ["--steps", "1", "--batch-size", "4"])
        dataset = train.load_dataset(vars(args))
        config = train.make_config(args, train.DataInfo.of(dataset))
        run = train.Run(config, str(root / name), progress=False, dataset=dataset)
        run.grid_size = 8  # a small sample grid keeps the fixture quick
        if run.grid_labels is not None:
            run.grid_labels = run.grid_labels[:8]
        run.train()
    return root


def npz(runs, tmp_path, run, *argv):
    out = tmp_path / "x.npz"
    assert sample.main([str(runs / run), "--out", str(out), *argv]) == 0
    return np.load(out)["images"]


def test_npz_of_images(runs, tmp_path):
    images = npz(runs, tmp_path, "cgan", "-n", "8", "--label", "3")
    assert images.dtype == np.float32 and images.shape == (8, 1, 28, 28)
    assert images.min() >= -1 and images.max() <= 1


def test_npz_of_points(runs, tmp_path):
    points = npz(runs, tmp_path, "vanilla", "-n", "8")
    assert points.dtype == np.float32 and points.shape == (8, 2) and np.isfinite(points).all()


def test_same_seed_same_samples_and_the_label_matters(runs, tmp_path):
    a = npz(runs, tmp_path, "cgan", "-n", "4", "--label", "1", "--seed", "3")
    b = npz(runs, tmp_path, "cgan", "-n", "4", "--label", "1", "--seed", "3")
    c = npz(runs, tmp_path, "cgan", "-n", "4", "--label", "1", "--seed", "4")
    d = npz(runs, tmp_path, "cgan", "-n", "4", "--label", "2", "--seed", "3")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)


def test_png_grids(runs, tmp_path):
    from PIL import Image
    assert sample.main([str(runs / "cgan"), "-n", "8", "--out", str(tmp_path / "d.png")]) == 0
    grid = Image.open(tmp_path / "d.png")
    # 8 images, 3 a row, 2 pixels of padding, drawn at twice the size as training's grids
    assert grid.size == (2 * (3 * 30 + 2), 2 * (3 * 30 + 2))
    assert sample.main([str(runs / "cgan"), "-n", "64", "--out", str(tmp_path / "e.png")]) == 0
    trained = Image.open(runs / "cgan" / "samples" / "step_0000000.png")
    assert Image.open(tmp_path / "e.png").size[0] == 2 * (8 * 30 + 2)
    assert trained.size[0] == 2 * (8 * 30 + 2)  # a row of 8, as the 64-sample grid
    assert sample.main([str(runs / "vanilla"), "-n", "8", "--out", str(tmp_path / "p.png")]) == 0
    assert Image.open(tmp_path / "p.png").size[0] > 100  # a matplotlib scatter


def test_a_checkpoint_file_works_as_well_as_a_run(runs, tmp_path):
    a = npz(runs, tmp_path, "vanilla", "-n", "5")
    b = npz(runs, tmp_path, "vanilla/checkpoints/latest.npz", "-n", "5")
    assert np.array_equal(a, b)


@pytest.mark.parametrize("run,argv,message", [
    ("cgan", ["--label", "10"], "--label 10 is outside the 10 classes"),
    ("cgan", ["--label", "-1"], "outside the 10 classes"),
    ("vanilla", ["--label", "1"], "--label needs a conditional variant (cgan)"),
    ("missing", [], "no checkpoint at"),
])
def test_bad_requests_are_clear_errors(runs, tmp_path, capsys, run, argv, message):
    assert sample.main([str(runs / run), "--out", str(tmp_path / "x.npz"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert not (tmp_path / "x.npz").exists()


def test_an_image_run_samples_without_its_data(tmp_path, monkeypatch):
    from PIL import Image
    from tinygan import data
    folder = tmp_path / "pictures" / "all"
    folder.mkdir(parents=True)
    for i in range(4):
        Image.fromarray(np.full((28, 28), 40 * i, np.uint8)).save(folder / f"{i}.png")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert train.main(["vanilla", f"folder:{tmp_path / 'pictures'}", "--steps", "1",
                       "--batch-size", "4", "--no-progress", "--out", str(tmp_path / "run")]) == 0
    monkeypatch.setattr(data, "load", lambda *a, **k: pytest.fail("sample loaded the data"))
    assert sample.main([str(tmp_path / "run"), "-n", "3", "--out", str(tmp_path / "x.npz")]) == 0
    assert np.load(tmp_path / "x.npz")["images"].shape == (3, 1, 28, 28)


def test_load_gan_brings_the_data_unless_told_not_to(runs):
    gan, config, dataset = sample.load_gan(str(runs / "cgan"))
    assert dataset is not None and len(dataset) == 9000  # evaluate scores against it
    assert gan.info.shape == (1, 28, 28) and gan.info.num_classes == 10
    assert sample.load_gan(str(runs / "cgan"), with_data=False)[2] is None
