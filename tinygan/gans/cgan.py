"""Conditional GAN (Mirza & Osindero 2014), convolutional, with an optional projection D.

G(z, y): the label's embedding is concatenated to z. D(x, y) either sees the label as
an extra input channel (an embedding of size H*W, reshaped to an image: the paper's
concatenation), or, with projection=True (Miyato & Koyama 2018, eq. 3),
  D(x, y) = psi(phi(x)) + embed(y) . phi(x)
The game is the vanilla GAN's (binary cross-entropy, non-saturating G loss); fake
samples are drawn for the same labels as the real batch, so classes stay balanced.
"""
from __future__ import annotations

from .. import functional as F
from .. import nn
from ..creation import ones_like
from .base import frozen, update
from .nets import (DCGAN_D_BATCHNORM, dcgan_discriminator, dcgan_generator, init_dcgan_,
                   points_discriminator, points_generator)
from .remedies import feature_matching_loss
from .dcgan import defaults as dcgan_defaults
from .vanilla import VanillaGAN, discriminator_loss
from .vanilla import defaults as vanilla_defaults

# Without projection, D sees the label as one more input: an image as an extra channel
# (an embedding of H*W values), a 2D point as this many extra learnt features.
POINT_LABEL_FEATURES = 8


def defaults(info) -> dict:
    """DCGAN's settings for images (its networks are DCGAN's), the vanilla GAN's for 2D
    points (PacGAN's networks). G's label embedding: as many numbers as classes for
    images (PyTorch-GAN's implementations/cgan/cgan.py; with 50, G ignored z within each
    class on the MNIST sample, one image per class, recall 0.000 at 2,500 steps; with 10,
    the default runs in benchmarks/gallery reach recall 0.81 on the MNIST sample and 0.39
    on Fashion-MNIST), 50 for points."""
    if not info.num_classes:
        raise ValueError("cgan needs labelled data (mnist, fashion-mnist, cifar10, flowers, "
                         "ring8, grid25, or a folder: with one sub-folder per class)")
    d = vanilla_defaults(info) if info.kind == "points" else dcgan_defaults(info)
    d.update(embed_dim=50 if info.kind == "points" else info.num_classes, projection=False)
    return d


class ConditionalGenerator(nn.Module):
    """G(z, y) = body([z, embed(y)])."""

    def __init__(self, body: nn.Module, num_classes: int, embed_dim: int):
        super().__init__()
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.body = body

    def forward(self, z, y):
        return self.body(F.cat([z, self.embed(y)], 1))


class ConditionalDiscriminator(nn.Module):
    """D(x, y): the label as an extra channel (or feature), or by projection."""

    def __init__(self, body, num_classes: int, in_shape: tuple, projection: bool,
                 feature_dim: int):
        super().__init__()
        self.body, self.projection, self.in_shape = body, projection, in_shape
        if projection:
            self.embed = nn.Embedding(num_classes, feature_dim)
        else:
            per_sample = (in_shape[1] * in_shape[2] if len(in_shape) == 3
                          else POINT_LABEL_FEATURES)
            self.embed = nn.Embedding(num_classes, per_sample)

    def _with_label(self, x, y):
        if self.projection:
            return x
        e = self.embed(y)
        if x.ndim == 4:
            e = e.reshape(x.shape[0], 1, x.shape[2], x.shape[3])
        return F.cat([x, e], 1)

    def features(self, x, y):
        return self.body.features(self._with_label(x, y))

    def forward(self, x, y):
        h = self.features(x, y)
        if self.body.minibatch is not None:
            h = self.body.minibatch(h)
        out = self.body.head(h)
        if self.projection:
            out = out + (self.embed(y) * h[:, :self.embed.embedding_dim]).sum(1, keepdim=True)
        return out


class ConditionalGAN(VanillaGAN):
    name = "cgan"
    remedies = ("feature_matching", "minibatch_discrimination", "label_smoothing")
    conditional = True

    def build(self):
        cfg, info = self.config, self.info
        k, e = info.num_classes, int(cfg["embed_dim"])
        projection = bool(cfg.get("projection"))
        mbd = bool(cfg.get("minibatch_discrimination"))
        if info.kind == "points":
            body_g = points_generator(self.z_dim + e, info.shape)
            d_in = info.shape if projection else (info.shape[0] + POINT_LABEL_FEATURES,)
            body_d = points_discriminator(d_in, mbd)
        else:
            size = info.shape[1]
            body_g = dcgan_generator(self.z_dim + e, info.shape)
            c = info.shape[0] + (0 if projection else 1)
            body_d = dcgan_discriminator((c,) + tuple(info.shape[1:]),
                                         batchnorm=DCGAN_D_BATCHNORM[size],
                                         dropout=0.3 if size == 28 else 0.0,
                                         minibatch_discrimination=mbd)
            init_dcgan_(body_g)
            init_dcgan_(body_d)
        G = ConditionalGenerator(body_g, k, e)
        D = ConditionalDiscriminator(body_d, k, info.shape, projection, body_d.feature_dim)
        return G, D

    def discriminate(self, x, labels=None):
        return self.D(x, labels)

    def features_of(self, D, x, labels=None):
        return D.features(x, labels)


    def step(self, next_batch) -> dict:
        cfg = self.config
        real, labels = next_batch()
        n = real.shape[0]

        # 1. discriminator on (x, y) pairs: real pairs -> 1, generated pairs -> 0
        fake = self.G(self.sample_z(n), labels).detach()
        real_logits = self.D(real, labels)
        fake_logits = self.D(fake, labels)
        loss_d = discriminator_loss(real_logits, fake_logits, cfg.get("label_smoothing", 0.0))
        update(self.opt_d, loss_d)

        # 2. generator: make D call (G(z, y), y) real
        fake = self.G(self.sample_z(n), labels)
        if cfg.get("feature_matching"):
            loss_g = feature_matching_loss(self.d_features(real, labels).detach(),
                                           self.d_features(fake, labels))
        else:
            with frozen(self.D):
                logits = self.D(fake, labels)
            loss_g = F.binary_cross_entropy_with_logits(logits, ones_like(logits))
        update(self.opt_g, loss_g)
        return {"d_loss": loss_d.item(), "g_loss": loss_g.item()}
