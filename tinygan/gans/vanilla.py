"""The original GAN (Goodfellow et al. 2014): MLPs and binary cross-entropy.

Algorithm 1 of the paper, with the non-saturating generator loss of its section 3:
  D ascends   log D(x) + log(1 - D(G(z)))
  G descends  -log D(G(z))          (the minimax form, log(1 - D(G(z))), as an option:
                                      it saturates when D wins early, which is why it
                                      is not the default)
D outputs a logit; sigmoid and log are fused in binary_cross_entropy_with_logits.
"""
from __future__ import annotations

from .. import functional as F
from ..creation import ones_like, zeros_like
from .base import GAN, update
from .nets import mlp_discriminator, mlp_generator, points_discriminator, points_generator
from .remedies import feature_matching_loss, real_target


def defaults(info) -> dict:
    if info.kind == "points":  # PacGAN's 2D protocol (Lin et al. 2018, sec. 5.1)
        return dict(z_dim=2, lr_g=1e-4, lr_d=1e-4, betas=(0.5, 0.999), batch_size=100,
                    steps=20000, n_critic=1)
    # the seeds' dense GAN on 28x28 (../shared/BENCHMARKS.md, vanilla-mnist)
    return dict(z_dim=100, lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999), batch_size=64,
                epochs=30, n_critic=1)


def discriminator_loss(real_logits, fake_logits, smoothing: float = 0.0):
    """BCE(D(x), 1 - smoothing) + BCE(D(G(z)), 0): D ascends log D(x) + log(1 - D(G(z)))."""
    return (F.binary_cross_entropy_with_logits(real_logits, real_target(real_logits, smoothing))
            + F.binary_cross_entropy_with_logits(fake_logits, zeros_like(fake_logits)))


class VanillaGAN(GAN):
    name = "vanilla"

    def build(self):
        info = self.info
        mbd = bool(self.config.get("minibatch_discrimination"))
        if info.kind == "points":
            return (points_generator(self.z_dim, info.shape),
                    points_discriminator(self.d_input_shape, mbd))
        return (mlp_generator(self.z_dim, info.shape),
                mlp_discriminator(self.d_input_shape, minibatch_discrimination=mbd))

    def step(self, next_batch) -> dict:
        cfg = self.config
        real, labels = next_batch()
        n = real.shape[0]

        # 1. discriminator: real -> 1 (or 1 - smoothing), fake -> 0
        fake = self.G(self.sample_z(n)).detach()
        real_logits = self.discriminate(real, labels)
        fake_logits = self.discriminate(fake, labels)
        loss_d = discriminator_loss(real_logits, fake_logits, cfg.get("label_smoothing", 0.0))
        update(self.opt_d, loss_d)

        # 2. generator
        fake = self.G(self.sample_z(n))
        loss_g = self.generator_loss(real, fake, labels)
        update(self.opt_g, loss_g)
        return {"d_loss": loss_d.item(), "g_loss": loss_g.item(),
                "d_real": F.sigmoid(real_logits).mean().item(),
                "d_fake": F.sigmoid(fake_logits).mean().item()}

    def generator_loss(self, real, fake, labels=None):
        if self.config.get("feature_matching"):
            return feature_matching_loss(self.d_features(real, labels).detach(),
                                         self.d_features(fake, labels))
        logits = self.discriminate(fake, labels)
        if self.config.get("minimax"):
            # minimise log(1 - D(G(z))) = -BCE(logits, 0)
            return -F.binary_cross_entropy_with_logits(logits, zeros_like(logits))
        return F.binary_cross_entropy_with_logits(logits, ones_like(logits))
