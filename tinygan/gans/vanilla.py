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
from .base import GAN, frozen, update
from .nets import mlp_discriminator, mlp_generator, points_discriminator, points_generator
from .remedies import feature_matching_loss, real_target


def defaults(info) -> dict:
    """What `python -m tinygan.train vanilla DATA` trains.

    2D points: PacGAN's protocol (Lin et al. 2018, sec. 5.1) and its networks.
    Images: the MLPs of the vanilla-mnist benchmark (G 256-512-1024, D 1024-512-256,
    LeakyReLU 0.2; ../shared/BENCHMARKS.md) with the two settings the recipe search
    measured (benchmarks/recipes/results.md): BatchNorm1d after each hidden layer of G
    (g_batchnorm, as PyTorch-GAN's implementations/gan/gan.py) and Dropout(0.3) after each
    hidden layer of D (d_dropout: Goodfellow et al. 2014 trained their MNIST D with
    dropout; 0.3 as TensorFlow's DCGAN tutorial). Without both, G collapses onto a few
    digits; with both, three seeds on the MNIST sample reach FID 39 (tinygan's LeNet
    features), precision 0.86, recall 0.75 and all ten classes at 8,400 steps.
    Adam(2e-4, betas (0.5, 0.999)) and batch 64 as Radford et al. 2016. Length: 8,400
    steps at 28x28 (60 epochs of the 9,000-digit sample, 9 of Fashion-MNIST; a few
    minutes on two cores), 30 epochs at other sizes.
    """
    if info.kind == "points":
        return dict(z_dim=2, lr_g=1e-4, lr_d=1e-4, betas=(0.5, 0.999), batch_size=100,
                    steps=20000, n_critic=1)
    d = dict(z_dim=100, lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999), batch_size=64,
             n_critic=1, g_batchnorm=True, d_dropout=0.3)
    d.update(steps=8400) if info.shape[1:] == (28, 28) else d.update(epochs=30)
    return d


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
        cfg = self.config
        return (mlp_generator(self.z_dim, info.shape, batchnorm=bool(cfg.get("g_batchnorm"))),
                mlp_discriminator(self.d_input_shape, dropout=float(cfg.get("d_dropout", 0.0)),
                                  minibatch_discrimination=mbd))

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
        with frozen(self.D):  # G's loss: no weight gradients of D's recorded
            logits = self.discriminate(fake, labels)
        if self.config.get("minimax"):
            # minimise log(1 - D(G(z))) = -BCE(logits, 0)
            return -F.binary_cross_entropy_with_logits(logits, zeros_like(logits))
        return F.binary_cross_entropy_with_logits(logits, ones_like(logits))
