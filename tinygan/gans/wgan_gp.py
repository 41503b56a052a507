"""WGAN-GP (Gulrajani et al. 2017): the critic's Lipschitz constraint as a penalty.

Algorithm 1 of the paper (lambda = 10, n_critic = 5, Adam(1e-4, 0, 0.9)):
  x_hat = e x + (1 - e) G(z),  e ~ U[0, 1] per sample
  L = mean D(G(z)) - mean D(x) + lambda mean (||grad_x_hat D(x_hat)||_2 - 1)^2
The norm is taken per sample over C x H x W. Its gradient with respect to D's
parameters is a second derivative: tinygan.grad(..., create_graph=True) builds the graph
of the first one. No BatchNorm in the critic (sec. 4): the penalty is per sample, and
BatchNorm would couple the samples of a batch.
"""
from __future__ import annotations

from ..autograd import grad
from ..creation import rand
from .base import CRITIC_REMEDIES, GAN, update
from .nets import (dcgan_discriminator, dcgan_generator, init_dcgan_, points_discriminator,
                   points_generator)


def defaults(info) -> dict:
    d = dict(z_dim=2 if info.kind == "points" else 100, lr_g=1e-4, lr_d=1e-4,
             betas=(0.0, 0.9), batch_size=64, n_critic=5, gp_lambda=10.0)
    if info.kind == "points":
        d.update(steps=20000)
    else:  # 28x28: five critic updates with their penalty a step, about 1.9 s of one
        d.update(steps=1600) if info.shape[1] == 28 else d.update(epochs=30)  # core: 50 min
    return d


def gradient_penalty(critic, real, fake, pack=lambda x: x, e=None):
    """mean over samples of (||d critic(x_hat) / d x_hat||_2 - 1)^2, norm over C x H x W,
    at x_hat = e real + (1 - e) fake, e ~ U(0, 1) per sample (drawn here unless given)."""
    n = real.shape[0]
    if e is None:
        e = rand(*((n,) + (1,) * (real.ndim - 1)), dtype=real.dtype, device=real.device)
    x_hat = (e * real + (1.0 - e) * fake).detach().requires_grad_()
    scores = critic(pack(x_hat))
    g, = grad(scores.sum(), x_hat, create_graph=True)
    norms = ((g * g).reshape(n, -1).sum(1) + 1e-12).sqrt()  # eps: sqrt has no slope at 0
    return ((norms - 1.0) ** 2).mean()


class WGANGP(GAN):
    """WGAN's networks (its critic without BatchNorm) and Adam(1e-4, betas (0, 0.9)), the
    optimiser every GAN gets unless its paper says otherwise (WGAN's RMSprop)."""

    name = "wgan-gp"
    remedies = CRITIC_REMEDIES

    def build(self):
        mbd = bool(self.config.get("minibatch_discrimination"))
        if self.info.kind == "points":
            return (points_generator(self.z_dim, self.info.shape),
                    points_discriminator(self.d_input_shape, mbd))
        G = dcgan_generator(self.z_dim, self.info.shape)
        D = dcgan_discriminator(self.d_input_shape, batchnorm=False, dropout=0.0,
                                minibatch_discrimination=mbd)
        init_dcgan_(G)  # the critic keeps its layers' default initialisation
        return G, D

    def sample_mixing(self, real):
        """The penalty's e ~ U(0, 1), one per sample: with data parallelism this rank's
        rows of the e drawn for the global batch, as for z."""
        n = real.shape[0]
        return self._share_of(rand(n * self.world, *(1,) * (real.ndim - 1), dtype=real.dtype,
                                   device=real.device))

    def step(self, next_batch) -> dict:
        cfg = self.config
        for _ in range(int(cfg["n_critic"])):
            real, labels = next_batch()
            fake = self.G(self.sample_z(real.shape[0])).detach()
            wasserstein = self.discriminate(real).mean() - self.discriminate(fake).mean()
            penalty = gradient_penalty(self.D, real, fake, self.packed,
                                       self.sample_mixing(real))
            loss_d = -wasserstein + cfg["gp_lambda"] * penalty
            update(self.opt_d, loss_d)

        fake = self.G(self.sample_z(real.shape[0]))
        loss_g = self.critic_generator_loss(real, fake)
        update(self.opt_g, loss_g)
        return {"d_loss": loss_d.item(), "g_loss": loss_g.item(),
                "wasserstein": wasserstein.item(), "gp": penalty.item()}
