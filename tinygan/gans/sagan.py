"""SAGAN (Zhang et al. 2019): self-attention, spectral norm everywhere, hinge loss.

- Spectral normalisation (Miyato et al. 2018) on every layer of G and D.
- Self-attention at the 16x16 feature maps (or the nearest: 14x14 at 28x28), with its
  gamma starting at 0 so the network first relies on local convolutions.
- Hinge loss (sec. 4): L_D = mean relu(1 - D(x)) + mean relu(1 + D(G(z))),
                        L_G = -mean D(G(z)).
- Two time-scale update rule: lr 1e-4 for G, 4e-4 for D, Adam betas (0, 0.9).
"""
from __future__ import annotations

from .. import functional as F
from .base import CRITIC_REMEDIES, GAN, update
from .nets import sagan_discriminator, sagan_generator


def defaults(info) -> dict:
    if info.kind != "image":
        raise ValueError("sagan works on images; for 2D points use vanilla, wgan, wgan-gp "
                         "or cgan")
    d = dict(z_dim=128, lr_g=1e-4, lr_d=4e-4, betas=(0.0, 0.9), batch_size=64, n_critic=1)
    # 28x28: about 1.0 s of one core's time a step, so 3,000 steps are 50 minutes
    d.update(steps=3000) if info.shape[1] == 28 else d.update(epochs=30)
    return d


class SAGAN(GAN):
    name = "sagan"
    remedies = CRITIC_REMEDIES

    def build(self):
        G = sagan_generator(self.z_dim, self.info.shape)
        D = sagan_discriminator(self.d_input_shape,
                                bool(self.config.get("minibatch_discrimination")))
        return G, D

    def step(self, next_batch) -> dict:
        cfg = self.config
        for _ in range(int(cfg.get("n_critic", 1))):
            real, labels = next_batch()
            fake = self.G(self.sample_z(real.shape[0])).detach()
            loss_d = (F.relu(1.0 - self.discriminate(real)).mean()
                      + F.relu(1.0 + self.discriminate(fake)).mean())
            update(self.opt_d, loss_d)

        fake = self.G(self.sample_z(real.shape[0]))
        loss_g = self.critic_generator_loss(real, fake)
        update(self.opt_g, loss_g)
        return {"d_loss": loss_d.item(), "g_loss": loss_g.item()}
