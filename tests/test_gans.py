"""The GAN zoo: every variant steps, checkpoints round-trip, and the classic bugs stay fixed.

These tests build the GANs directly (no dataset, no run folder) on random batches of 4;
tests/test_train.py drives the same variants through the training CLI on real data.
"""
import ast
import math
import pathlib

import numpy as np
import pytest

import tinygan
from tinygan import backend, nn, optim
from tinygan.gans import DataInfo, build, defaults
from tinygan.gans import nets, wgan_gp
from tinygan.gans.remedies import MinibatchDiscrimination, real_target
from tinygan.nn.utils import spectral_norm
from tinygan._tensor import Tensor
from tinygan.autograd import enable_grad
from tinygan.testing import gradcheck
from tinygan.train import _defaults_table

GRAY28 = DataInfo("image", (1, 28, 28), 10)
RGB32 = DataInfo("image", (3, 32, 32), 2)
RGB64 = DataInfo("image", (3, 64, 64), 2)
POINTS = DataInfo("points", (2,), 8)


def make_gan(variant, info, **overrides):
    config = defaults(variant, info)
    config.update(batch_size=4, n_critic=1, device="cpu")
    config.update(overrides)
    return build(variant, config, info)


def batches(info, n=4, seed=0):
    """next_batch() for a GAN step: a fixed random batch in [-1, 1] and its labels."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n,) + tuple(info.shape)).astype(np.float32)
    y = rng.integers(0, max(info.num_classes, 1), n).astype(np.int64)
    return lambda: (Tensor(x.copy()), Tensor(y.copy()))


def parameters(gan) -> dict:
    return {f"{net}.{k}": backend.to_numpy(getattr(v, "data", v)).copy() for net in ("G", "D")
            for k, v in getattr(gan, net).state_dict().items()}


def flat(tree, prefix=""):
    """Every leaf of a (nested) state dict as {path: numpy array or value}."""
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(flat(v, f"{prefix}/{k}"))
        return out
    if isinstance(tree, (list, tuple)):
        out = {}
        for i, v in enumerate(tree):
            out.update(flat(v, f"{prefix}/{i}"))
        return out
    if isinstance(tree, Tensor):
        return {prefix: backend.to_numpy(tree.data)}
    return {prefix: tree}


def assert_same_state(a: dict, b: dict):
    fa, fb = flat(a), flat(b)
    assert fa.keys() == fb.keys()
    for k in fa:
        if isinstance(fa[k], np.ndarray) or hasattr(fa[k], "shape"):
            assert np.array_equal(np.asarray(fa[k]), np.asarray(fb[k])), k
        else:
            assert fa[k] == fb[k], k


# ------------------------------------------------------------ every variant trains

CASES = [
    ("vanilla", GRAY28), ("vanilla", POINTS),
    ("dcgan", GRAY28),
    ("wgan", GRAY28), ("wgan", POINTS),
    ("wgan-gp", GRAY28), ("wgan-gp", POINTS),
    ("cgan", GRAY28), ("cgan", POINTS),
    ("sagan", GRAY28),
    pytest.param("dcgan", RGB32, marks=pytest.mark.slow),
    pytest.param("dcgan", RGB64, marks=pytest.mark.slow),
    pytest.param("wgan-gp", RGB32, marks=pytest.mark.slow),
    pytest.param("cgan", RGB32, marks=pytest.mark.slow),
    ("sagan", RGB32),
    pytest.param("sagan", RGB64, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("variant,info", CASES,
                         ids=lambda v: v if isinstance(v, str) else
                         "x".join(map(str, v.shape)))
def test_variant_steps_and_checkpoint_round_trips(variant, info, tmp_path):
    gan = make_gan(variant, info)
    before = parameters(gan)
    next_batch = batches(info)
    losses = gan.step(next_batch)
    assert losses and all(math.isfinite(v) for v in losses.values()), losses
    after = parameters(gan)
    for net in ("G", "D"):
        moved = [k for k in before if k.startswith(net) and k.endswith(("weight", "weight_orig"))
                 and not np.array_equal(before[k], after[k])]
        assert moved, f"{variant}: no {net} weight moved"

    # save, load into a GAN built from another seed: same state, same next step
    tinygan.save(gan.state_dict(), tmp_path / "gan.npz")
    tinygan.manual_seed(123)
    fresh = make_gan(variant, info)
    fresh.load_state_dict(tinygan.load(tmp_path / "gan.npz"))
    assert_same_state(gan.state_dict(), fresh.state_dict())

    rng = backend.get_rng_state()
    expected = gan.step(next_batch)
    backend.set_rng_state(rng)
    assert fresh.step(next_batch) == expected
    assert_same_state(gan.state_dict(), fresh.state_dict())

    # samples: the data's shape, and in [-1, 1] for images (tanh)
    z = gan.sample_z(3)
    labels = gan.sample_labels(3) if gan.conditional else None
    out = gan.generate(z, labels).numpy()
    assert out.shape == (3,) + tuple(info.shape)
    if info.kind == "image":
        assert np.abs(out).max() <= 1.0


# ------------------------------------------------------------ remedies

@pytest.mark.parametrize("remedy", [dict(feature_matching=True),
                                    dict(minibatch_discrimination=True),
                                    dict(pack=2), dict(label_smoothing=0.1)],
                         ids=lambda r: next(iter(r)))
@pytest.mark.parametrize("info", [GRAY28, POINTS], ids=["28x28", "points"])
def test_vanilla_with_each_remedy_steps(remedy, info):
    gan = make_gan("vanilla", info, **remedy)
    losses = gan.step(batches(info))
    assert all(math.isfinite(v) for v in losses.values())


def test_label_smoothing_sets_real_targets():
    like = Tensor(np.zeros((4, 1), np.float32))
    assert np.allclose(real_target(like, 0.1).numpy(), 0.9)
    assert np.allclose(real_target(like, 0.0).numpy(), 1.0)


def test_pack_stacks_samples_as_channels():
    gan = make_gan("dcgan", GRAY28, pack=2)
    assert gan.D.features[0].in_channels == 2
    x = Tensor(np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32))
    assert gan.discriminate(x).shape == (2, 1)
    with pytest.raises(ValueError, match="not a multiple of 2"):
        gan.discriminate(x[:3])


def test_minibatch_discrimination_sees_the_batch():
    layer = MinibatchDiscrimination(6, 5, 3)
    f = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    same = layer(Tensor(np.repeat(f[:1], 4, 0))).data[:, 6:]
    assert np.allclose(same, 3.0)  # each sample is at distance 0 from the 3 others
    assert layer(Tensor(f)).data[:, 6:].max() < 3.0


@pytest.mark.parametrize("variant,remedy", [
    ("wgan", dict(label_smoothing=0.1)), ("wgan-gp", dict(label_smoothing=0.1)),
    ("sagan", dict(label_smoothing=0.1)), ("cgan", dict(pack=2))])
def test_inapplicable_remedy_is_a_clear_error(variant, remedy):
    flag = "--" + next(iter(remedy)).replace("_", "-")
    with pytest.raises(ValueError, match=f"{variant}: {flag} does not apply"):
        make_gan(variant, GRAY28, **remedy)


@pytest.mark.parametrize("variant", ["dcgan", "sagan"])
def test_image_only_variants_refuse_points(variant):
    with pytest.raises(ValueError, match="works on images"):
        defaults(variant, POINTS)


def test_cgan_needs_labels():
    with pytest.raises(ValueError, match="labelled data"):
        defaults("cgan", DataInfo("image", (1, 28, 28), 0))


def test_unknown_variant_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid: vanilla, dcgan, wgan, wgan-gp, cgan, sagan"):
        defaults("bigan", GRAY28)


# ------------------------------------------------------------ WGAN-GP's penalty

def small_critic():
    critic = nn.Sequential(nn.Conv2d(2, 3, 3, 1, 1), nn.LeakyReLU(0.2), nn.Flatten(),
                           nn.Linear(3 * 4 * 4, 1)).double()
    return critic


def test_gradient_penalty_parameter_gradients_match_finite_differences():
    critic = small_critic()
    rng = np.random.default_rng(0)
    real = Tensor(rng.standard_normal((3, 2, 4, 4)))
    fake = Tensor(rng.standard_normal((3, 2, 4, 4)))
    params = list(critic.parameters())

    def penalty(*_):
        tinygan.manual_seed(7)  # the same interpolation e in every evaluation
        with enable_grad():  # gradcheck evaluates under no_grad; the penalty needs a graph
            return wgan_gp.gradient_penalty(critic, real, fake)

    assert penalty().dtype == np.float64
    gradcheck(penalty, params, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gradient_penalty_norm_is_per_sample_over_chw():
    # D(x_i) = (w . x_i)^2 / 2, so grad_i = (w . x_i) w and ||grad_i|| = |w . x_i| ||w||,
    # the norms over all of C x H x W; real == fake makes x_hat = real whatever e is.
    rng = np.random.default_rng(1)
    n, shape = 4, (3, 5, 5)
    w = rng.standard_normal(shape) * np.array([0.05, 0.2, 0.6])[:, None, None]
    x = rng.standard_normal((n,) + shape) * np.array([0.5, 1.0, 2.0, 4.0])[:, None, None, None]
    wt = Tensor(w)

    def critic(h):
        s = (h * wt).reshape(h.shape[0], -1).sum(1)
        return (s * s * 0.5).reshape(-1, 1)

    got = wgan_gp.gradient_penalty(critic, Tensor(x), Tensor(x)).item()
    dots = (x * w).reshape(n, -1).sum(1)
    per_sample = np.abs(dots) * np.sqrt((w * w).sum())
    expected = np.mean((per_sample - 1.0) ** 2)
    assert got == pytest.approx(expected, rel=1e-6)

    # the classic mistakes give other numbers
    grads = dots[:, None, None, None] * w
    per_channel = np.mean((np.sqrt((grads ** 2).sum((2, 3))) - 1.0) ** 2)
    over_batch = (np.sqrt((grads ** 2).sum()) - 1.0) ** 2
    assert not np.isclose(expected, per_channel, rtol=1e-3)
    assert not np.isclose(expected, over_batch, rtol=1e-3)


def test_gradient_penalty_of_a_linear_critic():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((2, 3, 3)) * 0.3
    wt = Tensor(w)
    x, y = (Tensor(rng.standard_normal((5, 2, 3, 3))) for _ in range(2))
    penalty = wgan_gp.gradient_penalty(
        lambda h: (h * wt).reshape(h.shape[0], -1).sum(1), x, y).item()
    assert penalty == pytest.approx((np.sqrt((w * w).sum()) - 1.0) ** 2, rel=1e-9)


def test_wgan_gp_critic_has_no_batchnorm():
    for info in (GRAY28, RGB64):
        gan = make_gan("wgan-gp", info)
        assert not [m for m in gan.D.modules() if isinstance(m, nn.BatchNorm2d)]


def test_wgan_gp_builds_only_its_own_networks_and_adam():
    """WGAN's generator, a critic without BatchNorm, and Adam(1e-4, (0, 0.9)), not
    RMSprop: nothing built and thrown away."""
    built = []
    real_init = nn.Module.__init__
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(nn.Module, "__init__", lambda self: (built.append(self),
                                                          real_init(self))[1])
        gan = make_gan("wgan-gp", GRAY28)
    kept = {id(m) for net in (gan.G, gan.D) for m in net.modules()}
    assert all(id(m) in kept for m in built)
    for opt, lr in ((gan.opt_g, 1e-4), (gan.opt_d, 1e-4)):
        assert isinstance(opt, optim.Adam)
        assert opt.param_groups[0]["lr"] == lr and opt.param_groups[0]["betas"] == (0.0, 0.9)


def batchnorms(net) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())


@pytest.mark.parametrize("size", [28, 32, 64])
def test_dcgan_discriminator_has_batchnorm_exactly_when_asked(size):
    convs = {28: 2, 32: 7, 64: 4}[size]  # every convolution but the first gets one
    with_bn = nets.dcgan_discriminator((3, size, size), batchnorm=True)
    without = nets.dcgan_discriminator((3, size, size), batchnorm=False)
    assert batchnorms(with_bn) == convs - 1 and batchnorms(without) == 0
    # the variants' own: BatchNorm in D at 64x64 only (Radford et al.); at 28 and 32 the
    # benchmarks' D, which has none
    for variant in ("dcgan", "wgan", "cgan"):
        gan = make_gan(variant, DataInfo("image", (3, size, size), 2))
        body = gan.D.body if variant == "cgan" else gan.D
        assert batchnorms(body) == (3 if size == 64 else 0), variant


# ------------------------------------------------------------ WGAN's clipping

def test_weight_clipping_follows_every_critic_step(monkeypatch):
    gan = make_gan("wgan", POINTS, n_critic=5)
    events = []
    real_clip = optim.clip_
    monkeypatch.setattr(optim, "clip_", lambda params, lo, hi: (events.append("clip"),
                                                                real_clip(params, lo, hi)))
    d_step, g_step = gan.opt_d.step, gan.opt_g.step
    monkeypatch.setattr(gan.opt_d, "step", lambda: (events.append("d"), d_step()))
    monkeypatch.setattr(gan.opt_g, "step", lambda: (events.append("g"), g_step()))
    gan.step(batches(POINTS, seed=3))
    assert events == ["d", "clip"] * 5 + ["g"]
    for name, p in gan.D.named_parameters():
        assert np.abs(p.data).max() <= 0.01, name


# ------------------------------------------------------------ BatchNorm's arguments

def test_batchnorm_eps_and_momentum_are_pytorchs():
    bn = nn.BatchNorm2d(64, 0.8)  # positional 0.8 is eps, as in PyTorch, not momentum
    assert bn.eps == 0.8 and bn.momentum == 0.1
    nets = []
    for variant, info in [("dcgan", GRAY28), ("dcgan", RGB32), ("dcgan", RGB64),
                          ("wgan", RGB64), ("cgan", GRAY28)]:
        gan = make_gan(variant, info)
        nets += [gan.G, gan.D]
    norms = [m for net in nets for m in net.modules()
             if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    assert len(norms) > 10
    for m in norms:
        assert m.eps == 1e-5 and m.momentum == 0.1


def test_gans_never_pass_batchnorm_arguments_by_position():
    # BatchNorm2d(64, 0.8) is the classic bug: 0.8 meant as momentum is eps
    folder = pathlib.Path(tinygan.__file__).parent / "gans"
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and "BatchNorm" in ast.unparse(node.func):
                assert len(node.args) <= 1, f"{path.name}:{node.lineno}: {ast.unparse(node)}"


# ------------------------------------------------------------ SAGAN

@pytest.mark.parametrize("info", [GRAY28, RGB32, RGB64], ids=["28", "32", "64"])
def test_sagan_attention_starts_as_identity(info):
    gan = make_gan("sagan", info)
    for net in (gan.G, gan.D):
        blocks = [m for m in net.modules() if isinstance(m, nn.SelfAttention)]
        assert len(blocks) == 1
        assert np.array_equal(blocks[0].gamma.data, np.zeros(1, np.float32))
    spectral = [k for k in gan.D.state_dict() if k.endswith("weight_u")]
    assert spectral, "SAGAN's D is spectrally normalised"


def test_dcgan_init_reaches_spectrally_normalised_layers():
    layer = spectral_norm(nn.Linear(300, 200))
    layer.bias.data[...] = 1.0
    nets.init_dcgan_(nn.Sequential(layer))
    assert abs(float(layer.weight_orig.data.std()) - 0.02) < 0.002
    assert not layer.bias.data.any()


# ------------------------------------------------------------ the default recipes

def count(net, kind) -> int:
    return sum(isinstance(m, kind) for m in net.modules())


def test_vanilla_recipe_settings_build_batchnorm_in_g_and_dropout_in_d():
    gan = make_gan("vanilla", GRAY28)  # the defaults: both on
    assert count(gan.G, nn.BatchNorm1d) == 3 and count(gan.G, nn.Dropout) == 0
    drops = [m for m in gan.D.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 3 and all(m.p == 0.3 for m in drops)
    assert count(gan.D, nn.BatchNorm1d) == 0
    plain = make_gan("vanilla", GRAY28, g_batchnorm=False, d_dropout=0.0)
    assert count(plain.G, nn.BatchNorm1d) == 0 and count(plain.D, nn.Dropout) == 0
    # a config written before these settings existed builds the plain MLPs it trained
    old = {k: v for k, v in defaults("vanilla", GRAY28).items()
           if k not in ("g_batchnorm", "d_dropout")}
    old.update(batch_size=4, device="cpu")
    before = build("vanilla", old, GRAY28)
    assert count(before.G, nn.BatchNorm1d) == 0 and count(before.D, nn.Dropout) == 0


def test_the_defaults_table_shows_the_recipe_settings():
    line = next(row for row in _defaults_table().splitlines()
                if row.split()[:2] == ["vanilla", "image"])
    assert "g_batchnorm=True" in line and "d_dropout=0.3" in line and "steps=8400" in line
