"""The networks the GAN variants are built from: MLPs, DCGAN's and SAGAN's.

Every discriminator is `features` (an image or point -> a vector) followed by `head`
(a Linear to one logit), so that feature matching can read the features and minibatch
discrimination can be slotted in between. Architectures for 28x28 and 32x32 are those
of ../shared/BENCHMARKS.md (dcgan-mnist, dcgan-cifar10, sagan-cifar10); 64x64 is
Radford et al. 2016's DCGAN.
"""
from __future__ import annotations

import math

from .. import nn
from ..nn.utils import spectral_norm
from .remedies import MinibatchDiscrimination


class Discriminator(nn.Module):
    """D(x) = head(features(x)), with optional minibatch discrimination before the head."""

    def __init__(self, features: nn.Module, feature_dim: int, minibatch_discrimination=False,
                 sn=False):
        super().__init__()
        self.features = features
        self.feature_dim = feature_dim  # the width of features(x)
        self.minibatch = None
        head_in = feature_dim
        if minibatch_discrimination:
            self.minibatch = MinibatchDiscrimination(feature_dim)
            head_in += self.minibatch.out_features
        self.head = _sn(nn.Linear(head_in, 1), sn)

    def forward(self, x):
        h = self.features(x)
        if self.minibatch is not None:
            h = self.minibatch(h)
        return self.head(h)


def _sn(module, on: bool):
    return spectral_norm(module) if on else module


# ----------------------------------------------------------------------------- MLPs


def mlp_generator(z_dim: int, out_shape: tuple, hidden=(256, 512, 1024), slope=0.2,
                  batchnorm=False, tanh=True) -> nn.Module:
    """z -> Linear/LReLU stack -> Linear(prod(out_shape)) [-> tanh] -> reshape."""
    layers, width = [], z_dim
    for h in hidden:
        layers.append(nn.Linear(width, h))
        if batchnorm:
            layers.append(nn.BatchNorm1d(h))
        layers.append(nn.LeakyReLU(slope) if slope else nn.ReLU())
        width = h
    layers.append(nn.Linear(width, math.prod(out_shape)))
    if tanh:
        layers.append(nn.Tanh())
    if len(out_shape) > 1:
        layers.append(nn.Unflatten(1, tuple(out_shape)))
    return nn.Sequential(*layers)


def mlp_discriminator(in_shape: tuple, hidden=(1024, 512, 256), slope=0.2, dropout=0.0,
                      minibatch_discrimination=False, sn=False) -> Discriminator:
    """x -> flatten -> Linear/LReLU stack -> (features) -> Linear(1)."""
    layers, width = [nn.Flatten()], math.prod(in_shape)
    for h in hidden:
        layers += [_sn(nn.Linear(width, h), sn), nn.LeakyReLU(slope)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    return Discriminator(nn.Sequential(*layers), width, minibatch_discrimination, sn)


# The networks for 2D mixtures, of the sizes of PacGAN's experiments (Lin et al. 2018,
# sec. 5.1): G four ReLU layers of 400 units with BatchNorm, then a linear output; D three
# layers of 200. Every variant that trains on points uses these.
POINTS_G_HIDDEN = (400, 400, 400, 400)
POINTS_D_HIDDEN = (200, 200, 200)


def points_generator(z_dim: int, out_shape: tuple) -> nn.Module:
    """G for 2D points: z -> 4 x (Linear(400), BatchNorm, ReLU) -> Linear(2)."""
    return mlp_generator(z_dim, out_shape, hidden=POINTS_G_HIDDEN, slope=0, batchnorm=True,
                         tanh=False)


def points_discriminator(in_shape: tuple, minibatch_discrimination=False) -> Discriminator:
    """D for 2D points (or packs of them): 3 x (Linear(200), LeakyReLU(0.2)) -> Linear(1)."""
    return mlp_discriminator(in_shape, hidden=POINTS_D_HIDDEN,
                             minibatch_discrimination=minibatch_discrimination)


# ---------------------------------------------------------------------------- DCGAN


def dcgan_generator(z_dim: int, image_shape: tuple) -> nn.Module:
    """Transposed convolutions with BatchNorm (Radford et al. 2016), per image size."""
    c, size = image_shape[0], image_shape[1]
    if size == 28:  # dcgan-mnist
        return nn.Sequential(
            nn.Linear(z_dim, 7 * 7 * 256, bias=False), nn.Unflatten(1, (256, 7, 7)),
            nn.BatchNorm2d(256), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(256, 128, 5, 1, 2, bias=False), nn.BatchNorm2d(128),
            nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(128, 64, 5, 2, 2, output_padding=1, bias=False),
            nn.BatchNorm2d(64), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(64, c, 5, 2, 2, output_padding=1), nn.Tanh())
    if size == 32:  # dcgan-cifar10
        return nn.Sequential(
            nn.Linear(z_dim, 4 * 4 * 512), nn.Unflatten(1, (512, 4, 4)),
            nn.BatchNorm2d(512), nn.ReLU(),
            nn.ConvTranspose2d(512, 256, 4, 2, 1), nn.BatchNorm2d(256), nn.ReLU(),
            nn.ConvTranspose2d(256, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.ReLU(),
            nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.Conv2d(64, c, 3, 1, 1), nn.Tanh())
    if size == 64:  # Radford et al. 2016, figure 1
        return nn.Sequential(
            nn.Unflatten(1, (z_dim, 1, 1)),
            nn.ConvTranspose2d(z_dim, 512, 4, 1, 0, bias=False), nn.BatchNorm2d(512), nn.ReLU(),
            nn.ConvTranspose2d(512, 256, 4, 2, 1, bias=False), nn.BatchNorm2d(256), nn.ReLU(),
            nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
            nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            nn.ConvTranspose2d(64, c, 4, 2, 1, bias=False), nn.Tanh())
    raise ValueError(f"dcgan: no generator for images of size {size} (28, 32 or 64)")


# Which DCGAN discriminators have BatchNorm, by image size: Radford et al.'s 64x64 one; not
# the 28x28 and 32x32 ones of BENCHMARKS.md (dcgan-mnist has dropout instead).
DCGAN_D_BATCHNORM = {28: False, 32: False, 64: True}


def dcgan_discriminator(image_shape: tuple, *, batchnorm: bool, dropout=0.3,
                        minibatch_discrimination=False, slope=None) -> Discriminator:
    """Strided convolutions (Radford et al. 2016); batchnorm=True puts BatchNorm after every
    convolution but the first (the paper's guideline: none at D's input)."""
    c, size = image_shape[0], image_shape[1]

    def norm(ch):
        return [nn.BatchNorm2d(ch)] if batchnorm else []

    def drop():
        return [nn.Dropout(dropout)] if dropout else []

    if size == 28:  # dcgan-mnist
        feats = nn.Sequential(
            nn.Conv2d(c, 64, 5, 2, 2), nn.LeakyReLU(slope or 0.2), *drop(),
            nn.Conv2d(64, 128, 5, 2, 2), *norm(128), nn.LeakyReLU(slope or 0.2), *drop(),
            nn.Flatten())
        return Discriminator(feats, 128 * 7 * 7, minibatch_discrimination)
    if size == 32:  # dcgan-cifar10
        a = slope or 0.1
        layers, ch = [], c
        for out, k, s, p in [(64, 3, 1, 1), (64, 4, 2, 1), (128, 3, 1, 1), (128, 4, 2, 1),
                             (256, 3, 1, 1), (256, 4, 2, 1), (512, 3, 1, 1)]:
            layers += [nn.Conv2d(ch, out, k, s, p), *(norm(out) if layers else []),
                       nn.LeakyReLU(a)]
            ch = out
        return Discriminator(nn.Sequential(*layers, nn.Flatten()), 512 * 4 * 4,
                             minibatch_discrimination)
    if size == 64:  # Radford et al. 2016
        a = slope or 0.2
        feats = nn.Sequential(
            nn.Conv2d(c, 64, 4, 2, 1, bias=False), nn.LeakyReLU(a),
            nn.Conv2d(64, 128, 4, 2, 1, bias=False), *norm(128), nn.LeakyReLU(a),
            nn.Conv2d(128, 256, 4, 2, 1, bias=False), *norm(256), nn.LeakyReLU(a),
            nn.Conv2d(256, 512, 4, 2, 1, bias=False), *norm(512), nn.LeakyReLU(a),
            nn.Flatten())
        return Discriminator(feats, 512 * 4 * 4, minibatch_discrimination)
    raise ValueError(f"dcgan: no discriminator for images of size {size} (28, 32 or 64)")


def init_dcgan_(module: nn.Module) -> None:
    """Weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02), biases 0 (Radford et al. 2016)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            weight = getattr(m, "weight_orig", None)  # spectral norm keeps the raw one here
            if weight is None:  # (not `or`: a Tensor has no truth value)
                weight = m.weight
            nn.init.normal_(weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------------- SAGAN


def sn_attention(channels: int) -> nn.SelfAttention:
    """SAGAN's attention block with its f, g and h convolutions spectrally normalised, as
    every layer of SAGAN's G and D is (Zhang et al. 2019, sec. 4)."""
    block = nn.SelfAttention(channels)
    for name in ("f", "g", "h"):
        setattr(block, name, spectral_norm(getattr(block, name)))
    return block


def sagan_generator(z_dim: int, image_shape: tuple) -> nn.Module:
    """Spectrally normalised DCGAN-style G with self-attention (Zhang et al. 2019)."""
    c, size = image_shape[0], image_shape[1]
    sn = spectral_norm
    if size == 32:  # sagan-cifar10: attention at 16x16
        return nn.Sequential(
            sn(nn.Linear(z_dim, 4 * 4 * 256)), nn.Unflatten(1, (256, 4, 4)),
            nn.BatchNorm2d(256), nn.ReLU(),
            sn(nn.ConvTranspose2d(256, 128, 4, 2, 1)), nn.BatchNorm2d(128), nn.ReLU(),
            sn(nn.ConvTranspose2d(128, 64, 4, 2, 1)), nn.BatchNorm2d(64), nn.ReLU(),
            sn_attention(64),
            sn(nn.ConvTranspose2d(64, 32, 4, 2, 1)), nn.BatchNorm2d(32), nn.ReLU(),
            sn(nn.Conv2d(32, c, 3, 1, 1)), nn.Tanh())
    if size == 28:  # attention at 14x14, the nearest map to 16x16
        return nn.Sequential(
            sn(nn.Linear(z_dim, 7 * 7 * 256)), nn.Unflatten(1, (256, 7, 7)),
            nn.BatchNorm2d(256), nn.ReLU(),
            sn(nn.ConvTranspose2d(256, 128, 4, 2, 1)), nn.BatchNorm2d(128), nn.ReLU(),
            sn_attention(128),
            sn(nn.ConvTranspose2d(128, 64, 4, 2, 1)), nn.BatchNorm2d(64), nn.ReLU(),
            sn(nn.Conv2d(64, c, 3, 1, 1)), nn.Tanh())
    if size == 64:  # attention at 16x16
        return nn.Sequential(
            sn(nn.Linear(z_dim, 4 * 4 * 512)), nn.Unflatten(1, (512, 4, 4)),
            nn.BatchNorm2d(512), nn.ReLU(),
            sn(nn.ConvTranspose2d(512, 256, 4, 2, 1)), nn.BatchNorm2d(256), nn.ReLU(),
            sn(nn.ConvTranspose2d(256, 128, 4, 2, 1)), nn.BatchNorm2d(128), nn.ReLU(),
            sn_attention(128),
            sn(nn.ConvTranspose2d(128, 64, 4, 2, 1)), nn.BatchNorm2d(64), nn.ReLU(),
            sn(nn.ConvTranspose2d(64, 32, 4, 2, 1)), nn.BatchNorm2d(32), nn.ReLU(),
            sn(nn.Conv2d(32, c, 3, 1, 1)), nn.Tanh())
    raise ValueError(f"sagan: no generator for images of size {size} (28, 32 or 64)")


def sagan_discriminator(image_shape: tuple, minibatch_discrimination=False) -> Discriminator:
    """Spectrally normalised strided convolutions with self-attention (Zhang et al. 2019)."""
    c, size = image_shape[0], image_shape[1]
    sn = spectral_norm
    if size in (28, 32):  # sagan-cifar10; for 28x28 the maps are 14, 7, 4
        last = 4
        feats = nn.Sequential(
            sn(nn.Conv2d(c, 64, 4, 2, 1)), nn.LeakyReLU(0.1), sn_attention(64),
            sn(nn.Conv2d(64, 128, 4, 2, 1)), nn.LeakyReLU(0.1),
            sn(nn.Conv2d(128, 256, 4, 2, 1 if size == 32 else 2)), nn.LeakyReLU(0.1),
            nn.Flatten())
        return Discriminator(feats, 256 * last * last, minibatch_discrimination, sn=True)
    if size == 64:
        feats = nn.Sequential(
            sn(nn.Conv2d(c, 64, 4, 2, 1)), nn.LeakyReLU(0.1),
            sn(nn.Conv2d(64, 128, 4, 2, 1)), nn.LeakyReLU(0.1), sn_attention(128),
            sn(nn.Conv2d(128, 256, 4, 2, 1)), nn.LeakyReLU(0.1),
            sn(nn.Conv2d(256, 512, 4, 2, 1)), nn.LeakyReLU(0.1), nn.Flatten())
        return Discriminator(feats, 512 * 4 * 4, minibatch_discrimination, sn=True)
    raise ValueError(f"sagan: no discriminator for images of size {size} (28, 32 or 64)")
