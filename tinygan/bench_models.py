"""The five benchmark workloads of BENCHMARKS.md, written once for any PyTorch-shaped library.

tinygan uses PyTorch's names, argument orders and layouts, so the same source builds the
networks, losses and optimisers in both: `Framework` holds the handful of entry points
that differ only by module (`nn`, `F`, `optim`, `grad`, `randn`, ...), and every workload
below is written against it. That is what makes the comparison fair by construction: the
shapes, the losses and the update order cannot drift apart between the two. The networks
are those the GAN variants train (gans/nets.py): tests/test_bench.py builds both and checks
that they have the same layers and give the same outputs for the same weights.

PyTorch is never imported here; `torch_framework()` imports it when it is asked for.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable

from . import creation, nn, optim
from . import functional as F
from .autograd import grad

WORKLOADS = ("vanilla-mnist", "dcgan-mnist", "wgan-gp-mnist", "dcgan-cifar10", "sagan-cifar10")


@dataclass
class Framework:
    """The entry points a workload needs, taken from one library."""
    name: str            # "tinygan" or "torch"
    device: str          # "cpu" or "cuda"
    nn: Any
    F: Any
    optim: Any
    grad: Callable       # tinygan.grad / torch.autograd.grad
    randn: Callable
    rand: Callable
    zeros: Callable
    zeros_like: Callable
    ones_like: Callable
    manual_seed: Callable
    layers: Any = field(default=None)  # Reshape, SelfAttention built on this nn


def tinygan_framework(device: str = "cpu") -> Framework:
    fw = Framework("tinygan", device, nn, F, optim, grad, creation.randn, creation.rand,
                   creation.zeros, creation.zeros_like, creation.ones_like,
                   creation.manual_seed)
    fw.layers = _layers(fw)
    return fw


def torch_framework(device: str = "cpu") -> Framework:
    import torch  # only when asked for: PyTorch is never a dependency of tinygan
    fw = Framework("torch", device, torch.nn, torch.nn.functional, torch.optim,
                   torch.autograd.grad, torch.randn, torch.rand, torch.zeros, torch.zeros_like,
                   torch.ones_like,
                   torch.manual_seed)
    fw.layers = _layers(fw)
    return fw


class _Layers:
    """Reshape and SelfAttention as modules of one library's nn (classes made per library)."""


def _layers(fw: Framework) -> _Layers:
    return _layer_classes(fw.nn, fw.zeros)


@functools.lru_cache(maxsize=None)
def _layer_classes(nn, zeros) -> _Layers:
    class Reshape(nn.Module):
        """(N, prod(shape)) -> (N, *shape): the step from G's Linear to its feature maps."""

        def __init__(self, *shape):
            super().__init__()
            self.shape = shape

        def forward(self, x):
            return x.reshape(x.shape[0], *self.shape)

    class SelfAttention(nn.Module):
        """SAGAN's attention block (Zhang et al. 2019, eqs. 1-3), for libraries without one.

        s_ij = f(x_i)^T g(x_j); beta = softmax over positions i; o_j = sum_i beta_ij h(x_i);
        y = x + gamma o, gamma a learnt scalar that starts at 0.
        """

        def __init__(self, channels):
            super().__init__()
            self.f = nn.Conv2d(channels, channels // 8, 1)
            self.g = nn.Conv2d(channels, channels // 8, 1)
            self.h = nn.Conv2d(channels, channels, 1)
            self.gamma = nn.Parameter(zeros(1))

        def forward(self, x):
            n, c, height, width = x.shape
            f = self.f(x).reshape(n, -1, height * width)             # (N, C/8, P)
            g = self.g(x).reshape(n, -1, height * width)             # (N, C/8, P)
            h = self.h(x).reshape(n, c, height * width)              # (N, C, P)
            beta = (f.transpose(1, 2) @ g).softmax(1)               # (N, P_i, P_j)
            o = (h @ beta).reshape(n, c, height, width)
            return x + self.gamma * o

    layers = _Layers()
    layers.Reshape, layers.SelfAttention = Reshape, SelfAttention
    return layers


# ------------------------------------------------------------------------ the networks


def _vanilla_mnist(fw: Framework, sn):
    nn = fw.nn
    G = nn.Sequential(
        nn.Linear(100, 256), nn.LeakyReLU(0.2),
        nn.Linear(256, 512), nn.LeakyReLU(0.2),
        nn.Linear(512, 1024), nn.LeakyReLU(0.2),
        nn.Linear(1024, 784), nn.Tanh())
    D = nn.Sequential(
        nn.Linear(784, 1024), nn.LeakyReLU(0.2),
        nn.Linear(1024, 512), nn.LeakyReLU(0.2),
        nn.Linear(512, 256), nn.LeakyReLU(0.2),
        nn.Linear(256, 1))
    return G, D


def _dcgan_mnist_generator(fw: Framework):
    nn = fw.nn
    return nn.Sequential(
        nn.Linear(100, 7 * 7 * 256, bias=False), fw.layers.Reshape(256, 7, 7),
        nn.BatchNorm2d(256), nn.LeakyReLU(0.2),
        nn.ConvTranspose2d(256, 128, 5, 1, 2, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
        nn.ConvTranspose2d(128, 64, 5, 2, 2, output_padding=1, bias=False),
        nn.BatchNorm2d(64), nn.LeakyReLU(0.2),
        nn.ConvTranspose2d(64, 1, 5, 2, 2, output_padding=1), nn.Tanh())


def _dcgan_mnist(fw: Framework, sn):
    nn = fw.nn
    D = nn.Sequential(
        nn.Conv2d(1, 64, 5, 2, 2), nn.LeakyReLU(0.2), nn.Dropout(0.3),
        nn.Conv2d(64, 128, 5, 2, 2), nn.LeakyReLU(0.2), nn.Dropout(0.3),
        nn.Flatten(), nn.Linear(6272, 1))
    return _dcgan_mnist_generator(fw), D


def _wgan_gp_mnist(fw: Framework, sn):
    nn = fw.nn
    critic = nn.Sequential(
        nn.Conv2d(1, 64, 5, 2, 2), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 5, 2, 2), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(6272, 1))
    return _dcgan_mnist_generator(fw), critic


def _dcgan_cifar10(fw: Framework, sn):
    nn = fw.nn
    G = nn.Sequential(
        nn.Linear(128, 4 * 4 * 512), fw.layers.Reshape(512, 4, 4), nn.BatchNorm2d(512), nn.ReLU(),
        nn.ConvTranspose2d(512, 256, 4, 2, 1), nn.BatchNorm2d(256), nn.ReLU(),
        nn.ConvTranspose2d(256, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.ReLU(),
        nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 3, 3, 1, 1), nn.Tanh())
    D = nn.Sequential(
        nn.Conv2d(3, 64, 3, 1, 1), nn.LeakyReLU(0.1),
        nn.Conv2d(64, 64, 4, 2, 1), nn.LeakyReLU(0.1),
        nn.Conv2d(64, 128, 3, 1, 1), nn.LeakyReLU(0.1),
        nn.Conv2d(128, 128, 4, 2, 1), nn.LeakyReLU(0.1),
        nn.Conv2d(128, 256, 3, 1, 1), nn.LeakyReLU(0.1),
        nn.Conv2d(256, 256, 4, 2, 1), nn.LeakyReLU(0.1),
        nn.Conv2d(256, 512, 3, 1, 1), nn.LeakyReLU(0.1),
        nn.Flatten(), nn.Linear(8192, 1))
    return G, D


def _self_attention(fw: Framework, channels: int, sn):
    """The library's own SelfAttention where it has one, with its convolutions normalised."""
    cls = getattr(fw.nn, "SelfAttention", None) or fw.layers.SelfAttention
    block = cls(channels)
    for name in _conv_children(fw, block):
        setattr(block, name, sn(getattr(block, name)))
    return block


def _conv_children(fw: Framework, module):
    """Names of the direct Linear/Conv2d/ConvTranspose2d children of a module."""
    kinds = (fw.nn.Linear, fw.nn.Conv2d, fw.nn.ConvTranspose2d)
    children = dict(vars(module))
    children.update(getattr(module, "_modules", None) or {})
    return [name for name, child in children.items() if isinstance(child, kinds)]


def _sagan_cifar10(fw: Framework, sn):
    nn = fw.nn
    G = nn.Sequential(
        sn(nn.Linear(128, 4 * 4 * 256)), fw.layers.Reshape(256, 4, 4), nn.BatchNorm2d(256),
        nn.ReLU(),
        sn(nn.ConvTranspose2d(256, 128, 4, 2, 1)), nn.BatchNorm2d(128), nn.ReLU(),
        sn(nn.ConvTranspose2d(128, 64, 4, 2, 1)), nn.BatchNorm2d(64), nn.ReLU(),
        _self_attention(fw, 64, sn),
        sn(nn.ConvTranspose2d(64, 32, 4, 2, 1)), nn.BatchNorm2d(32), nn.ReLU(),
        sn(nn.Conv2d(32, 3, 3, 1, 1)), nn.Tanh())
    D = nn.Sequential(
        sn(nn.Conv2d(3, 64, 4, 2, 1)), nn.LeakyReLU(0.1),
        _self_attention(fw, 64, sn),
        sn(nn.Conv2d(64, 128, 4, 2, 1)), nn.LeakyReLU(0.1),
        sn(nn.Conv2d(128, 256, 4, 2, 1)), nn.LeakyReLU(0.1),
        nn.Flatten(), sn(nn.Linear(4096, 1)))
    return G, D


# ---------------------------------------------------------------------------- the losses


def _bce_d(fw, D, real, fake):
    """Goodfellow et al. 2014: -log D(x) - log(1 - D(G(z))), on logits."""
    d_real, d_fake = D(real), D(fake)
    return (fw.F.binary_cross_entropy_with_logits(d_real, fw.ones_like(d_real))
            + fw.F.binary_cross_entropy_with_logits(d_fake, fw.zeros_like(d_fake)))


def _bce_g(fw, d_fake):
    """The non-saturating generator loss: -log D(G(z)) (fake labelled 1)."""
    return fw.F.binary_cross_entropy_with_logits(d_fake, fw.ones_like(d_fake))


def _wgan_gp_d(fw, D, real, fake, penalty_weight=10.0):
    """Gulrajani et al. 2017, Algorithm 1: D(x~) - D(x) + lambda (||grad D(x^)||_2 - 1)^2."""
    n = real.shape[0]
    e = fw.rand(n, 1, 1, 1, device=fw.device)
    x_hat = (e * real + (1 - e) * fake).requires_grad_(True)
    (grad_x,) = fw.grad(D(x_hat).sum(), x_hat, create_graph=True)
    grad_norm = (grad_x.reshape(n, -1) ** 2).sum(1).sqrt()      # per sample, over C x H x W
    penalty = ((grad_norm - 1) ** 2).mean()
    return D(fake).mean() - D(real).mean() + penalty_weight * penalty


def _critic_g(fw, d_fake):
    """-E[D(G(z))]: the generator loss of WGAN and of the hinge GAN."""
    return -d_fake.mean()


def _hinge_d(fw, D, real, fake):
    """Lim & Ye 2017; Zhang et al. 2019: E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]."""
    return fw.F.relu(1 - D(real)).mean() + fw.F.relu(1 + D(fake)).mean()


# ------------------------------------------------------------------------- the workloads


@dataclass(frozen=True)
class Workload:
    name: str
    build: Callable               # (fw, sn) -> (G, D)
    z_dim: int
    image_shape: tuple
    d_loss: Callable              # (fw, D, real, fake) -> loss
    g_loss: Callable              # (fw, D(G(z))) -> loss
    lr_g: float
    lr_d: float
    betas: tuple
    spectral_norm: bool = False


_MNIST = (1, 28, 28)
_CIFAR = (3, 32, 32)

WORKLOAD_SPECS = {
    "vanilla-mnist": Workload("vanilla-mnist", _vanilla_mnist, 100, (784,), _bce_d, _bce_g,
                              2e-4, 2e-4, (0.5, 0.999)),
    "dcgan-mnist": Workload("dcgan-mnist", _dcgan_mnist, 100, _MNIST, _bce_d, _bce_g,
                            2e-4, 2e-4, (0.5, 0.999)),
    "wgan-gp-mnist": Workload("wgan-gp-mnist", _wgan_gp_mnist, 100, _MNIST, _wgan_gp_d,
                              _critic_g, 1e-4, 1e-4, (0.0, 0.9)),
    "dcgan-cifar10": Workload("dcgan-cifar10", _dcgan_cifar10, 128, _CIFAR, _bce_d, _bce_g,
                              2e-4, 2e-4, (0.5, 0.999)),
    "sagan-cifar10": Workload("sagan-cifar10", _sagan_cifar10, 128, _CIFAR, _hinge_d,
                              _critic_g, 1e-4, 4e-4, (0.0, 0.9), spectral_norm=True),
}


@dataclass
class Setup:
    """Everything a step touches, built once: networks, optimisers, one real batch."""
    fw: Framework
    workload: Workload
    G: Any
    D: Any
    opt_g: Any
    opt_d: Any
    real: Any


def build(fw: Framework, name: str, batch: int, seed: int = 0) -> Setup:
    """Networks, Adam optimisers and a random real batch in [-1, 1] (loading is not timed)."""
    if name not in WORKLOAD_SPECS:
        raise ValueError(f"unknown workload {name!r}: expected one of {', '.join(WORKLOADS)}")
    w = WORKLOAD_SPECS[name]
    fw.manual_seed(seed)
    sn = fw.nn.utils.spectral_norm if w.spectral_norm else (lambda module: module)
    G, D = w.build(fw, sn)
    G, D = G.to(fw.device), D.to(fw.device)
    G.train()
    D.train()
    opt_g = fw.optim.Adam(G.parameters(), lr=w.lr_g, betas=w.betas)
    opt_d = fw.optim.Adam(D.parameters(), lr=w.lr_d, betas=w.betas)
    real = fw.rand(batch, *w.image_shape, device=fw.device) * 2 - 1
    return Setup(fw, w, G, D, opt_g, opt_d, real)


def train_step(s: Setup):
    """One discriminator (critic) update on a real and a fake batch, then one generator update.

    The fake batch made for D's update is reused for G's: one G forward per step, as the
    PyTorch DCGAN tutorial does. Returns the two losses (tensors, not synchronised).
    """
    fw, w = s.fw, s.workload
    z = fw.randn(s.real.shape[0], w.z_dim, device=fw.device)
    fake = s.G(z)

    s.opt_d.zero_grad()
    loss_d = w.d_loss(fw, s.D, s.real, fake.detach())
    loss_d.backward()
    s.opt_d.step()

    s.opt_g.zero_grad()
    loss_g = w.g_loss(fw, s.D(fake))
    loss_g.backward()
    s.opt_g.step()
    return loss_d, loss_g
