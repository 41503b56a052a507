"""The training CLI: every variant on real (tiny) data, run folders, resume, divergence, errors.

Runs are built in-process with the CLI's own parser (`train.parser`, `make_config`, `Run`,
or `train.main(argv)`), with batches of 4 and a few steps. Image runs keep 8 of the 64
fixed sample latents, so that drawing the sample grids stays cheap.
"""
import csv
import json
import math
import os

import numpy as np
import pytest

import tinygan
from tinygan import data, train
from tinygan import run as run_module
from tinygan.gans import DataInfo
from tinygan.gans.vanilla import VanillaGAN
from tinygan._tensor import Tensor


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Decoded image folders are cached; keep that cache inside the test's folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def _cheap_plots(request, monkeypatch):
    """Matplotlib costs seconds a figure: stand-ins write the files, unless a test asks
    for `real_plots`. (Sample grids and the GIF are PIL, cheap, and always real.)"""
    if "real_plots" in request.fixturenames:
        return
    from tinygan import plots

    def scatter(fake, real, path, *args, **kwargs):
        from PIL import Image  # a tiny real PNG: the GIF is made of these
        Image.new("RGB", (4, 4)).save(path, format="PNG")

    def losses_plot(csv_path, path, *args, **kwargs):
        open(path, "wb").close()
    for module in (run_module, plots):
        monkeypatch.setattr(module, "save_scatter", scatter)
        monkeypatch.setattr(module, "save_losses_plot", losses_plot)


@pytest.fixture
def real_plots():
    """Requested by the tests that check the real matplotlib figures."""


def image_folder(root, size=28, colour=False, classes=2, per_class=8, seed=0):
    """A folder: dataset of random PNGs, one sub-folder per class."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    for k in range(classes):
        sub = root / f"class{k}"
        sub.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape = (size, size, 3) if colour else (size, size)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(sub / f"{i}.png")
    return f"folder:{root}"


def new_run(argv, folder, samples=8):
    """A Run made exactly as `main` makes one, with a smaller sample grid."""
    args = train.parser().parse_args(argv + ["--no-progress", "--out", str(folder)])
    dataset = train.load_dataset(vars(args))
    config = train.make_config(args, DataInfo.of(dataset))
    return _trim(train.Run(config, str(folder), progress=False, dataset=dataset), samples)


def resumed_run(folder, argv=(), samples=8):
    args = train.parser().parse_args(["--resume", str(folder), *argv])
    return _trim(train.Run(train.resume_config(args), str(folder), resume=True,
                           progress=False), samples)


def _trim(run, samples):
    if run.info.kind == "image":
        run.grid_size = samples
        if run.grid_labels is not None:
            run.grid_labels = run.grid_labels[:samples]
    return run


def flat(tree, prefix=""):
    """Every leaf of a checkpoint's tree, by its path."""
    if isinstance(tree, (dict, list, tuple)):
        items = tree.items() if isinstance(tree, dict) else enumerate(tree)
        return {k: v for key, value in items for k, v in flat(value, f"{prefix}/{key}").items()}
    if isinstance(tree, Tensor):
        return {prefix: tree.data}
    return {prefix: tree}


def assert_same_checkpoint(path_a, path_b):
    a, b = flat(tinygan.load(path_a)), flat(tinygan.load(path_b))
    assert a.keys() == b.keys()
    arrays = 0
    for k in a:
        if isinstance(a[k], np.ndarray):
            arrays += 1
            assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], k
    return arrays


def loss_rows(folder):
    with open(os.path.join(folder, "losses.csv"), newline="") as f:
        return list(csv.reader(f))


def weights(run) -> dict:
    return {f"{net}.{k}": np.array(getattr(v, "data", v)) for net in ("G", "D")
            for k, v in getattr(run.gan, net).state_dict().items()}


# ------------------------------------------------------------ every variant trains

@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return {"gray28": image_folder(root / "gray28", 28),
            "rgb32": image_folder(root / "rgb32", 40, colour=True),
            "rgb64": image_folder(root / "rgb64", 40, colour=True)}


CASES = [  # (variant, dataset, extra arguments)
    ("vanilla", "mnist-10k", []),
    ("vanilla", "ring8", []),
    ("dcgan", "mnist-10k", []),
    ("wgan", "grid25", ["--n-critic", "2"]),
    ("wgan", "mnist-10k", ["--n-critic", "1"]),
    ("wgan-gp", "ring8", ["--n-critic", "2"]),
    ("wgan-gp", "mnist-10k", ["--n-critic", "1"]),
    ("cgan", "mnist-10k", []),
    ("cgan", "grid25", ["--projection"]),
    ("sagan", "gray28", ["--image-size", "28"]),
    ("sagan", "rgb32", ["--image-size", "32"]),  # 40x40 PNGs resized
    pytest.param("dcgan", "rgb32", ["--image-size", "32"], marks=pytest.mark.slow),
    pytest.param("cgan", "rgb32", ["--image-size", "32", "--projection"],
                 marks=pytest.mark.slow),
    pytest.param("dcgan", "rgb64", ["--image-size", "64"], marks=pytest.mark.slow),
    pytest.param("wgan-gp", "rgb64", ["--image-size", "64", "--n-critic", "1"],
                 marks=pytest.mark.slow),
    pytest.param("sagan", "rgb64", ["--image-size", "64"], marks=pytest.mark.slow),
]


@pytest.mark.parametrize("variant,dataset,extra", CASES,
                         ids=lambda v: v if isinstance(v, str) else "-".join(v) or "default")
def test_variant_trains_checkpoints_and_samples(variant, dataset, extra, folders, tmp_path):
    from tinygan import sample
    dataset = folders.get(dataset, dataset)
    run = new_run([variant, dataset, "--steps", "2", "--batch-size", "4", *extra],
                  tmp_path / "run")
    before = weights(run)
    run.train()
    after = weights(run)
    for net in ("G", "D"):
        assert any(not np.array_equal(before[k], after[k]) for k in before
                   if k.startswith(net)), f"{variant}: {net} did not move"
    rows = loss_rows(run.folder)
    assert [r[0] for r in rows[1:]] == ["1", "2"]
    assert all(math.isfinite(float(v)) for r in rows[1:] for v in r[2:])
    if "--image-size" in extra:
        size = int(extra[extra.index("--image-size") + 1])
        assert run.info.shape[1:] == (size, size)
        assert json.load(open(run.folder + "/config.json"))["image_size"] == size

    # the checkpoint holds the trained GAN
    saved = tinygan.load(run.checkpoint_path)
    assert saved["step"] == 2
    for net in ("G", "D"):
        for k, v in saved["gan"][net].items():
            assert np.array_equal(getattr(v, "data", v), after[f"{net}.{k}"]), k

    # python -m tinygan.sample RUN -n 8 --out x.npz / x.png
    label = ["--label", "1"] if variant == "cgan" else []
    assert sample.main([run.folder, "-n", "8", "--out", str(tmp_path / "x.npz"), *label]) == 0
    images = np.load(tmp_path / "x.npz")["images"]
    assert images.dtype == np.float32
    assert images.shape == (8,) + tuple(run.info.shape)
    assert np.isfinite(images).all()
    if run.info.kind == "image":
        assert images.min() >= -1.0 and images.max() <= 1.0
    assert sample.main([run.folder, "-n", "8", "--out", str(tmp_path / "x.png"), *label]) == 0
    assert (tmp_path / "x.png").stat().st_size > 0


@pytest.mark.parametrize("flags", [["--feature-matching"], ["--minibatch-discrimination"],
                                   ["--pack", "2"], ["--label-smoothing"],
                                   ["--label-smoothing", "0.2"]],
                         ids=lambda f: " ".join(f))
def test_each_remedy_flag_trains(flags, tmp_path):
    run = new_run(["vanilla", "ring8", "--steps", "1", "--batch-size", "4", *flags],
                  tmp_path / "run")
    name = flags[0][2:].replace("-", "_")
    expected = {"pack": 2, "label_smoothing": float(flags[1]) if len(flags) > 1 else 0.1}
    assert run.config[name] == expected.get(name, True)
    run.train()
    rows = loss_rows(run.folder)
    assert len(rows) == 2 and all(math.isfinite(float(v)) for v in rows[1][2:])


@pytest.mark.parametrize("argv,message", [
    (["wgan", "ring8", "--label-smoothing"], "wgan: --label-smoothing does not apply"),
    (["sagan", "mnist-10k", "--label-smoothing", "0.2"], "sagan: --label-smoothing does not"),
    (["cgan", "ring8", "--pack", "2"], "cgan: --pack does not apply"),
    (["dcgan", "ring8"], "dcgan works on images"),
    (["sagan", "grid25"], "sagan works on images"),
    (["vanilla", "ring8", "--batch-size", "4", "--pack", "3"], "--pack 3 must divide"),
    (["dcgan", "mnist-10k", "--image-size", "32"], "--image-size 32: mnist-10k has samples"),
    (["vanilla", "ring8", "--image-size", "32"], "only folder:, celeba and flowers"),
])
def test_inapplicable_settings_are_clear_errors(argv, message, tmp_path, capsys):
    code = train.main(argv + ["--steps", "1", "--no-progress", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.startswith("error: ") and err.count("\n") == 1


def test_cgan_needs_labels(tmp_path, capsys):
    from PIL import Image
    (tmp_path / "flat").mkdir()
    for i in range(4):
        Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "flat" / f"{i}.png")
    assert train.main(["cgan", f"folder:{tmp_path / 'flat'}", "--steps", "1",
                       "--out", str(tmp_path / "r")]) == 2
    assert "cgan needs labelled data" in capsys.readouterr().err


# ------------------------------------------------------------ resume is bit-identical

@pytest.mark.parametrize("variant,extra,steps,split", [
    ("dcgan", [], 6, 3),                     # BatchNorm running stats, dropout in D
    ("wgan-gp", ["--n-critic", "2"], 4, 2),  # random interpolation e; 2 batches a step
    pytest.param("sagan", [], 6, 4, marks=pytest.mark.slow),  # spectral-norm u, v;
                                                              # split at an epoch's end
], ids=["dcgan", "wgan-gp", "sagan"])
def test_resume_is_bit_identical(variant, extra, steps, split, folders, tmp_path):
    argv = [variant, folders["gray28"], "--image-size", "28", "--batch-size", "4",
            "--sample-every", "2", *extra]
    whole = new_run(argv + ["--steps", str(steps)], tmp_path / "A")
    assert len(whole.loader) == 4  # 16 images: an epoch ends inside the run
    whole.train()

    first = new_run(argv + ["--steps", str(split)], tmp_path / "B")
    first.train()
    assert tinygan.load(first.checkpoint_path)["step"] == split
    second = resumed_run(tmp_path / "B", ["--steps", str(steps)])
    assert second.step == split and second.steps == steps
    second.train()

    arrays = assert_same_checkpoint(whole.checkpoint_path, second.checkpoint_path)
    assert arrays > 20
    state = tinygan.load(second.checkpoint_path)
    assert state["step"] == steps and state["loader"]["epoch"] >= 1
    assert state["gan"]["opt_d"]["state"], "optimiser state is compared too"
    assert loss_rows(whole.folder) == loss_rows(second.folder)
    assert json.load(open(second.folder + "/config.json"))["steps"] == steps


def test_lr_decay_falls_to_zero_and_resumes_bit_identically(folders, tmp_path):
    argv = ["dcgan", folders["gray28"], "--image-size", "28", "--batch-size", "4",
            "--sample-every", "3", "--lr-decay", "linear", "--steps", "6"]
    whole = new_run(argv, tmp_path / "A")
    lr0 = whole.gan.opt_g.param_groups[0]["lr"]
    whole.train()
    assert whole.gan.opt_g.param_groups[0]["lr"] == 0.0  # 6 of 6 steps taken
    assert whole.gan.opt_d.param_groups[0]["initial_lr"] == lr0

    first = new_run(argv, tmp_path / "B")
    first.steps = 3  # stopped halfway through a 6-step schedule
    first.train()
    second = resumed_run(tmp_path / "B")
    assert second.gan.opt_g.param_groups[0]["lr"] == pytest.approx(lr0 / 2)
    second.train()
    assert assert_same_checkpoint(whole.checkpoint_path, second.checkpoint_path) > 20
    assert loss_rows(whole.folder) == loss_rows(second.folder)


def test_resume_through_main_with_a_longer_run(tmp_path, capsys):
    common = ["--no-progress", "--sample-every", "1"]
    assert train.main(["vanilla", "ring8", "--batch-size", "4", "--steps", "3",
                       "--out", str(tmp_path / "A"), *common]) == 0
    assert train.main(["vanilla", "ring8", "--batch-size", "4", "--steps", "1",
                       "--out", str(tmp_path / "B"), *common]) == 0
    assert train.main(["--resume", str(tmp_path / "B"), "--steps", "3", *common]) == 0
    assert_same_checkpoint(tmp_path / "A/checkpoints/latest.npz",
                           tmp_path / "B/checkpoints/latest.npz")
    assert loss_rows(tmp_path / "A") == loss_rows(tmp_path / "B")
    assert len(list((tmp_path / "B/samples").glob("*.png"))) == 4  # steps 0, 1, 2, 3


def test_a_new_run_never_overwrites_an_old_one(tmp_path, capsys):
    argv = ["vanilla", "ring8", "--batch-size", "4", "--steps", "1", "--no-progress",
            "--out", str(tmp_path / "run")]
    assert train.main(argv) == 0
    rows = loss_rows(tmp_path / "run")
    capsys.readouterr()
    assert train.main(argv) == 2
    assert "already holds a run; continue it with --resume" in capsys.readouterr().err
    assert loss_rows(tmp_path / "run") == rows


def test_resume_of_a_missing_run_is_a_clear_error(tmp_path, capsys):
    assert train.main(["--resume", str(tmp_path / "nothing"), "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --resume") and "config.json" in err


# ------------------------------------------------------------ divergence and Ctrl-C

def _step_that(monkeypatch, at: int, action):
    """Make VanillaGAN.step do `action` on its `at`-th call (1-based)."""
    calls = {"n": 0}
    real_step = VanillaGAN.step

    def step(self, next_batch):
        calls["n"] += 1
        losses = real_step(self, next_batch)
        return action(losses) if calls["n"] == at else losses
    monkeypatch.setattr(VanillaGAN, "step", step)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(folders, tmp_path, monkeypatch,
                                                          capsys):
    def poison(losses):
        return dict(losses, g_loss=float("nan"))
    _step_that(monkeypatch, 6, poison)
    folder = tmp_path / "run"
    code = train.main(["vanilla", folders["gray28"], "--batch-size", "4", "--steps", "9",
                       "--no-progress", "--out", str(folder)])
    err = capsys.readouterr().err
    assert code == 1
    assert "step 6: g_loss is nan" in err
    # the checkpoint of the epoch that ended at step 4, not the diverged step
    assert "the last good checkpoint" in err and "(step 4)" in err and "--resume" in err
    assert tinygan.load(folder / "checkpoints/latest.npz")["step"] == 4
    assert [r[0] for r in loss_rows(folder)[1:]][:4] == ["1", "2", "3", "4"]


def test_inf_loss_before_the_first_epoch_ends_keeps_the_start(tmp_path, monkeypatch, capsys):
    _step_that(monkeypatch, 2, lambda losses: dict(losses, d_loss=float("inf")))
    code = train.main(["vanilla", "ring8", "--batch-size", "4", "--steps", "5",
                       "--no-progress", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1 and "step 2: d_loss is inf" in err
    # every run is saved as it starts, so even this folder resumes
    assert "(step 0)" in err and f"--resume {tmp_path / 'run'}" in err
    assert tinygan.load(tmp_path / "run/checkpoints/latest.npz")["step"] == 0


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "run"
    assert train.main(["vanilla", "ring8", "--batch-size", "4", "--steps", "3",
                       "--no-progress", "--out", str(folder)]) == 0
    os.remove(folder / "checkpoints/latest.npz")
    capsys.readouterr()
    assert train.main(["--resume", str(folder), "--no-progress"]) == 2
    assert "error: no checkpoint at" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_huge_learning_rate_diverges_cleanly(tmp_path, capsys):
    code = train.main(["wgan-gp", "ring8", "--batch-size", "4", "--steps", "30",
                       "--n-critic", "1", "--lr-d", "1e30", "--lr-g", "1e30",
                       "--no-progress", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1 and ("is nan" in err or "is inf" in err), err


def test_sigterm_finishes_the_step_saves_and_exits_143(tmp_path, monkeypatch, capsys):
    import signal
    common = ["vanilla", "ring8", "--batch-size", "4", "--steps", "5", "--no-progress"]
    assert train.main(common + ["--out", str(tmp_path / "A")]) == 0

    def terminate(losses):  # as a cluster scheduler or `timeout` would, during step 3
        os.kill(os.getpid(), signal.SIGTERM)
        return losses
    _step_that(monkeypatch, 3, terminate)
    folder = tmp_path / "B"
    assert train.main(common + ["--out", str(folder)]) == 143
    err = capsys.readouterr().err
    assert "interrupted at step 3" in err and f"--resume {folder}" in err
    assert tinygan.load(folder / "checkpoints/latest.npz")["step"] == 3
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert train.main(["--resume", str(folder), "--no-progress"]) == 0
    assert_same_checkpoint(tmp_path / "A/checkpoints/latest.npz",
                           folder / "checkpoints/latest.npz")
    assert loss_rows(tmp_path / "A") == loss_rows(folder)


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(tmp_path, monkeypatch,
                                                                    capsys):
    import signal
    common = ["vanilla", "ring8", "--batch-size", "4", "--steps", "5", "--no-progress",
              "--checkpoint-every", "2"]
    assert train.main(common + ["--out", str(tmp_path / "A")]) == 0
    from tinygan.gans import vanilla
    calls = {"n": 0}
    real_update = vanilla.update

    def update(optimizer, loss):  # two Ctrl-Cs in step 3, between D's update and G's
        calls["n"] += 1
        if calls["n"] == 6:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        real_update(optimizer, loss)
    monkeypatch.setattr(vanilla, "update", update)
    folder = tmp_path / "B"
    assert train.main(common + ["--out", str(folder)]) == 130
    err = capsys.readouterr().err
    assert "interrupted during step 3; not saved" in err and "step 2 is kept" in err
    assert tinygan.load(folder / "checkpoints/latest.npz")["step"] == 2
    monkeypatch.setattr(vanilla, "update", real_update)
    assert train.main(["--resume", str(folder), "--no-progress"]) == 0
    assert_same_checkpoint(tmp_path / "A/checkpoints/latest.npz",
                           folder / "checkpoints/latest.npz")
    assert loss_rows(tmp_path / "A") == loss_rows(folder)


def test_ctrl_c_during_a_step_finishes_it_and_resumes_bit_identically(tmp_path, monkeypatch,
                                                                       capsys):
    import signal
    common = ["vanilla", "ring8", "--batch-size", "4", "--steps", "5", "--no-progress"]
    assert train.main(common + ["--out", str(tmp_path / "A")]) == 0

    from tinygan.gans import vanilla
    calls = {"n": 0}
    real_update = vanilla.update

    def update(optimizer, loss):  # Ctrl-C in step 3, after D's update, before G's
        calls["n"] += 1
        if calls["n"] == 6:
            os.kill(os.getpid(), signal.SIGINT)
        real_update(optimizer, loss)
    monkeypatch.setattr(vanilla, "update", update)
    before = signal.getsignal(signal.SIGINT)
    assert train.main(common + ["--out", str(tmp_path / "B")]) == 130
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back
    assert "interrupted at step 3" in capsys.readouterr().err
    assert tinygan.load(tmp_path / "B/checkpoints/latest.npz")["step"] == 3
    monkeypatch.setattr(vanilla, "update", real_update)
    assert train.main(["--resume", str(tmp_path / "B"), "--no-progress"]) == 0
    assert_same_checkpoint(tmp_path / "A/checkpoints/latest.npz",
                           tmp_path / "B/checkpoints/latest.npz")
    assert loss_rows(tmp_path / "A") == loss_rows(tmp_path / "B")


# ------------------------------------------------------------ the CLI

def test_help_lists_variants_datasets_and_defaults(capsys):
    with pytest.raises(SystemExit) as e:
        train.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in ["vanilla", "dcgan", "wgan", "wgan-gp", "cgan", "sagan", "mnist",
                 "fashion-mnist", "cifar10", "celeba", "flowers", "mnist-10k", "ring8",
                 "grid25", "folder:PATH", "--image-size", "--resume", "--feature-matching",
                 "--minibatch-discrimination", "--pack", "--label-smoothing"]:
        assert name in out, name
    assert "defaults" in out and "n_critic=5" in out and "lr_g=0.0002" in out


@pytest.mark.parametrize("argv,valid", [(["bigan", "ring8"], "vanilla, dcgan, wgan"),
                                        (["vanilla", "svhn"], "mnist, fashion-mnist")])
def test_unknown_names_are_one_line_errors(argv, valid, capsys):
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and argv[0 if "bigan" in argv else 1] in err and valid in err


def test_run_folder_has_everything(tmp_path, monkeypatch, real_plots):
    loads = []
    real_load = data.load
    monkeypatch.setattr(data, "load", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    folder = tmp_path / "run"
    assert train.main(["vanilla", "mnist-10k", "--batch-size", "4", "--steps", "2",
                       "--sample-every", "1", "--seed", "5", "--lr-g", "0.001",
                       "--no-progress", "--out", str(folder)]) == 0
    assert len(loads) == 1, "the dataset is loaded once (one fallback warning, not two)"
    config = json.load(open(folder / "config.json"))
    for key in ["variant", "dataset", "seed", "steps", "batch_size", "lr_g", "lr_d", "betas",
                "z_dim", "n_critic", "device", "feature_matching", "minibatch_discrimination",
                "pack", "label_smoothing", "image_size", "versions"]:
        assert key in config, key
    assert config["seed"] == 5 and config["lr_g"] == 0.001 and config["batch_size"] == 4
    assert {"tinygan", "numpy", "python"} <= set(config["versions"])
    assert sorted(p.name for p in (folder / "samples").glob("*.png")) == [
        "step_0000000.png", "step_0000001.png", "step_0000002.png"]
    for name in ["training.gif", "losses.csv", "losses.png", "checkpoints/latest.npz"]:
        assert (folder / name).stat().st_size > 0, name
    rows = loss_rows(folder)
    assert rows[0][:4] == ["step", "epoch", "d_loss", "g_loss"] and len(rows) == 3


# ------------------------------------------------------------ user mistakes: one line each

@pytest.mark.parametrize("argv,message", [
    (["--sample-every", "0"], "--sample-every must be at least 1, got 0"),
    (["--pack", "0"], "--pack must be at least 1, got 0"),
    (["--z-dim", "0"], "--z-dim must be at least 1, got 0"),
    (["--steps", "-5"], "--steps must be at least 1, got -5"),
    (["--n-critic", "0"], "--n-critic must be at least 1, got 0"),
    (["--checkpoint-every", "0"], "--checkpoint-every must be at least 1, got 0"),
    (["--batch-size", "1"], "--batch-size must be at least 2, got 1"),
    (["--label-smoothing", "1.5"], "--label-smoothing must be in [0, 1), got 1.5"),
])
def test_out_of_range_flags_are_refused_before_anything_is_written(argv, message, tmp_path,
                                                                    capsys):
    folder = tmp_path / "run"
    assert train.main(["vanilla", "ring8", *argv, "--no-progress", "--out", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {message}\n"
    assert not folder.exists()


def test_cuda_without_cupy_is_one_line(tmp_path, capsys):
    if tinygan.cuda_is_available():
        pytest.skip("this machine has CuPy and a GPU")
    assert train.main(["vanilla", "ring8", "--device", "cuda", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: device 'cuda' needs CuPy") and err.count("\n") == 1


def test_out_on_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    assert train.main(["vanilla", "ring8", "--out", str(tmp_path / "file")]) == 2
    assert capsys.readouterr().err == f"error: --out {tmp_path / 'file'} is a file; give a " \
                                      "folder for the run\n"
    assert (tmp_path / "file").read_text() == "mine"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="a read-only folder is writable by root")
def test_a_read_only_folder_is_one_line(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert train.main(["vanilla", "ring8", "--out", str(locked / "run")]) == 2
    finally:
        locked.chmod(0o755)
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write the run folder") and err.count("\n") == 1


def _small_run(folder, *extra):
    assert train.main(["vanilla", "ring8", "--batch-size", "4", "--steps", "2", "--no-progress",
                       "--out", str(folder), *extra]) == 0


def test_resume_refuses_flags_that_would_change_the_run(tmp_path, capsys):
    _small_run(tmp_path / "run")
    capsys.readouterr()
    assert train.main(["--resume", str(tmp_path / "run"), "--batch-size", "8",
                       "--lr-d", "1e-3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --resume {tmp_path / 'run'}: --batch-size, --lr-d cannot "
                          "change a run in progress") and err.count("\n") == 1
    # the flags a resume may change apply
    assert train.main(["--resume", str(tmp_path / "run"), "--steps", "4", "--sample-every",
                       "1", "--checkpoint-every", "1", "--no-progress"]) == 0
    config = json.load(open(tmp_path / "run/config.json"))
    assert (config["steps"], config["sample_every"], config["checkpoint_every"]) == (4, 1, 1)
    assert tinygan.load(tmp_path / "run/checkpoints/latest.npz")["step"] == 4


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path, capsys):
    _small_run(tmp_path / "ring8")
    assert train.main(["vanilla", "grid25", "--batch-size", "4", "--steps", "2",
                       "--no-progress", "--out", str(tmp_path / "grid25")]) == 0
    os.replace(tmp_path / "grid25/checkpoints/latest.npz",
               tmp_path / "ring8/checkpoints/latest.npz")
    capsys.readouterr()
    assert train.main(["--resume", str(tmp_path / "ring8"), "--steps", "3",
                       "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "dataset='grid25'" in err and "dataset='ring8'" in err and err.count("\n") == 1


def test_resuming_a_finished_run_says_so(tmp_path, capsys):
    _small_run(tmp_path / "run")
    capsys.readouterr()
    assert train.main(["--resume", str(tmp_path / "run"), "--no-progress"]) == 0
    assert "is finished (2 of 2 steps)" in capsys.readouterr().out


def test_steps_per_second_count_only_this_invocation(tmp_path, capsys):
    _small_run(tmp_path / "run")
    capsys.readouterr()
    assert train.main(["--resume", str(tmp_path / "run"), "--steps", "5",
                       "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"run folder: {tmp_path / 'run'}" in out.splitlines()[1]  # named at the start
    assert "done: 3 steps in" in out


@pytest.mark.parametrize("what", ["not a checkpoint", "another model"])
def test_a_wrong_checkpoint_is_one_line(what, tmp_path, capsys):
    from tinygan import sample
    if what == "not a checkpoint":
        tinygan.save({"weights": np.zeros(3)}, tmp_path / "x.npz")
        expected = "is not a training checkpoint (it has no 'gan', 'step', 'rng'"
    else:
        _small_run(tmp_path / "run")
        state = tinygan.load(tmp_path / "run/checkpoints/latest.npz")
        state["gan"]["G"] = {k + "x": v for k, v in state["gan"]["G"].items()}
        tinygan.save(state, tmp_path / "x.npz")
        expected = "does not fit a vanilla GAN on ring8"
    capsys.readouterr()
    assert sample.main([str(tmp_path / "x.npz"), "-n", "4", "--out",
                        str(tmp_path / "s.npz")]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def test_sample_n_zero_is_one_line(tmp_path, capsys):
    from tinygan import sample
    _small_run(tmp_path / "run")
    capsys.readouterr()
    assert sample.main([str(tmp_path / "run"), "-n", "0", "--out", str(tmp_path / "s.npz")]) == 2
    assert capsys.readouterr().err == "error: -n must be at least 1, got 0\n"


# ------------------------------------------------------------ several processes
# (the runs on two processes are in test_distributed.py, under mpiexec)


def test_a_run_of_n_processes_continues_on_one_with_a_note(tmp_path, capsys):
    """The checkpoint of N processes is the one format, and every rank's state is the same
    state: a single process continues it (the same training up to the order of sums)."""
    folder = tmp_path / "run"
    argv = ["vanilla", "ring8", "--batch-size", "4", "--no-progress", "--out", str(folder)]
    assert train.main(argv + ["--steps", "2"]) == 0
    path = folder / "checkpoints" / "latest.npz"
    state = tinygan.load(path)
    assert state["processes"] == 1
    tinygan.save(dict(state, processes=2), path)  # as `mpiexec -n 2` would have written it
    capsys.readouterr()
    assert train.main(["--resume", str(folder), "--steps", "4", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "note: this run was trained on 2 processes and continues on 1 process" in err
    assert tinygan.load(path)["step"] == 4 and len(loss_rows(folder)) == 5


def test_the_batch_must_split_into_equal_shares_of_the_processes(monkeypatch):
    monkeypatch.setattr(train.distributed, "get_world_size", lambda: 4)
    with pytest.raises(ValueError, match="--batch-size 6 is the whole batch, split among "
                                         "the 4 processes: give a multiple of 4"):
        train.check_processes({"batch_size": 6})
    train.check_processes({"batch_size": 8})


# ------------------------------------------------------------------------ --threads

@pytest.fixture
def no_thread_variables(monkeypatch):
    """No thread count from the environment, and whatever a tuner sets undone after."""
    for name in ("TINYGAN_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tinygan.threads, "_chosen", None)


def test_threads_auto_is_the_default_its_choice_is_kept_and_reused_on_resume(
        tmp_path, monkeypatch, capsys, no_thread_variables):
    monkeypatch.setattr(tinygan.threads, "cores", lambda: 2)  # a trial of 1 and 2 threads
    common = ["--batch-size", "4", "--no-progress", "--sample-every", "100"]
    assert train.main(["vanilla", "ring8", "--steps", "12", "--out", str(tmp_path / "run"),
                       *common]) == 0
    said = [line for line in capsys.readouterr().err.splitlines()
            if line.startswith("tinygan: ")]
    assert len(said) == 1 and "(a step timed 1: " in said[0]  # one line: what it chose
    saved = json.loads(str(tinygan.load(tmp_path / "run/checkpoints/latest.npz")["threads"]))
    assert saved["step"] == 12 and saved["threads"] in (1, 2)
    assert [step for step, _ in saved["schedule"]][:2] == [0, 4]  # the trial: 1 then 2
    assert set(saved["medians_ms"]) == {"1", "2"}
    tinygan.set_num_threads(3 - saved["threads"])  # the other count, until the resume
    assert train.main(["--resume", str(tmp_path / "run"), "--steps", "14",
                       "--no-progress"]) == 0
    assert "tinygan: " not in capsys.readouterr().err  # no second trial
    assert tinygan.get_num_threads() == saved["threads"]
    resumed = json.loads(str(tinygan.load(tmp_path / "run/checkpoints/latest.npz")["threads"]))
    assert resumed["step"] == 14 and resumed["schedule"] == saved["schedule"]


def test_a_thread_count_from_the_flag_or_the_environment_runs_no_tuner(
        tmp_path, monkeypatch, capsys, no_thread_variables):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    _small_run(tmp_path / "env")
    assert tinygan.get_num_threads() == 2
    _small_run(tmp_path / "flag", "--threads", "1")
    assert tinygan.get_num_threads() == 1
    assert "tinygan: " not in capsys.readouterr().err
    for run in ("env", "flag"):
        assert "threads" not in tinygan.load(tmp_path / run / "checkpoints/latest.npz")
    # a resume may change the count: it changes no result
    assert train.main(["--resume", str(tmp_path / "flag"), "--steps", "3", "--threads", "2",
                       "--no-progress"]) == 0
    assert tinygan.get_num_threads() == 2
    for bad in ("0", "two"):
        with pytest.raises(SystemExit):
            train.main(["vanilla", "ring8", "--threads", bad])
        assert "argument --threads: expected a whole number of threads (>= 1) or 'auto'" \
            in capsys.readouterr().err


def test_the_same_run_on_one_and_two_threads_is_the_same_bits(tmp_path, no_thread_variables):
    """The vanilla recipe on the digits at batch 64: its products, BatchNorm, dropout and
    Adam are split over the threads, and the losses and weights are the same bits."""
    for n in ("1", "2"):
        assert train.main(["vanilla", "mnist-10k", "--steps", "3", "--threads", n,
                           "--sample-every", "100", "--doctor-every", "0", "--no-progress",
                           "--out", str(tmp_path / n)]) == 0
    assert loss_rows(tmp_path / "1") == loss_rows(tmp_path / "2")
    assert_same_checkpoint(tmp_path / "1/checkpoints/latest.npz",
                           tmp_path / "2/checkpoints/latest.npz")


def test_scores_along_the_way_change_nothing_in_the_training(tmp_path, monkeypatch):
    """--eval-every builds the feature network (its layers draw initial weights) beside the
    training's random numbers: the run trains as one without it."""
    from tinygan.metrics import evaluate
    monkeypatch.setattr(evaluate, "DEFAULT_SAMPLES", 256)  # scores of 256 samples suffice
    common = ["vanilla", "mnist-10k", "--steps", "3", "--batch-size", "4", "--sample-every",
              "100", "--doctor-every", "0", "--no-progress"]
    assert train.main([*common, "--out", str(tmp_path / "plain")]) == 0
    assert train.main([*common, "--eval-every", "1", "--out", str(tmp_path / "scored")]) == 0
    assert os.path.exists(tmp_path / "scored/metrics.csv")
    assert loss_rows(tmp_path / "plain") == loss_rows(tmp_path / "scored")
