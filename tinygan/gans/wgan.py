"""WGAN (Arjovsky et al. 2017): a critic estimates the Wasserstein-1 distance.

Algorithm 1 of the paper:
  repeat n_critic = 5 times:
      L_critic = mean f(G(z)) - mean f(x)      (f: the critic, no sigmoid)
      RMSprop step on L_critic (lr 5e-5), then clip every critic weight to [-c, c]
  L_G = -mean f(G(z)), RMSprop step
Clipping keeps f K-Lipschitz (crudely); it follows *every* critic step.
"""
from __future__ import annotations

from .. import optim
from .base import CRITIC_REMEDIES, GAN, update
from .nets import (DCGAN_D_BATCHNORM, dcgan_discriminator, dcgan_generator, init_dcgan_,
                   points_discriminator, points_generator)


def defaults(info) -> dict:
    d = dict(z_dim=2 if info.kind == "points" else 100, lr_g=5e-5, lr_d=5e-5, batch_size=64,
             n_critic=5, clip=0.01)
    if info.kind == "points":
        d.update(steps=20000)
    else:  # 28x28: five critic updates a step, about 1.4 s of one core's time: 45 minutes
        d.update(steps=2000) if info.shape[1] == 28 else d.update(epochs=30)
    return d


class WGAN(GAN):
    name = "wgan"
    remedies = CRITIC_REMEDIES

    def build(self):
        mbd = bool(self.config.get("minibatch_discrimination"))
        if self.info.kind == "points":
            return (points_generator(self.z_dim, self.info.shape),
                    points_discriminator(self.d_input_shape, mbd))
        G = dcgan_generator(self.z_dim, self.info.shape)
        D = dcgan_discriminator(self.d_input_shape,
                                batchnorm=DCGAN_D_BATCHNORM[self.info.shape[1]], dropout=0.0,
                                minibatch_discrimination=mbd)
        init_dcgan_(G)
        init_dcgan_(D)
        return G, D

    def optimizers(self):
        cfg = self.config
        return (optim.RMSprop(self.G.parameters(), lr=cfg["lr_g"]),
                optim.RMSprop(self.D.parameters(), lr=cfg["lr_d"]))

    def critic_loss(self, real, fake, labels):
        return self.discriminate(fake, labels).mean() - self.discriminate(real, labels).mean()

    def step(self, next_batch) -> dict:
        cfg = self.config
        for _ in range(int(cfg["n_critic"])):
            real, labels = next_batch()
            fake = self.G(self.sample_z(real.shape[0])).detach()
            loss_d = self.critic_loss(real, fake, labels)
            update(self.opt_d, loss_d)
            optim.clip_(self.D.parameters(), -cfg["clip"], cfg["clip"])

        fake = self.G(self.sample_z(real.shape[0]))
        loss_g = self.critic_generator_loss(real, fake)
        update(self.opt_g, loss_g)
        return {"d_loss": loss_d.item(), "g_loss": loss_g.item(),
                "wasserstein": -loss_d.item()}
