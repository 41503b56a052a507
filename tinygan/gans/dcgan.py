"""DCGAN (Radford et al. 2016): the vanilla GAN's game, played by convolutional networks.

The paper's guidelines, section 3: strided convolutions instead of pooling, transposed
convolutions in G, BatchNorm in G (and in D at 64x64), ReLU in G with tanh out,
LeakyReLU(0.2) in D, weights ~ N(0, 0.02), Adam(lr 2e-4, beta1 0.5). The training step
is the vanilla GAN's (Goodfellow et al. 2014, non-saturating G loss).
"""
from __future__ import annotations

from .nets import DCGAN_D_BATCHNORM, dcgan_discriminator, dcgan_generator, init_dcgan_
from .vanilla import VanillaGAN


def defaults(info) -> dict:
    if info.kind != "image":
        raise ValueError("dcgan works on images; for 2D points use vanilla, wgan, wgan-gp "
                         "or cgan")
    d = dict(z_dim=128 if info.shape[1] == 32 else 100, lr_g=2e-4, lr_d=2e-4,
             betas=(0.5, 0.999), batch_size=64 if info.shape[1] != 64 else 128, n_critic=1)
    # 28x28: a length in steps, the same on the 9,000-digit sample and on Fashion-MNIST's
    # 60,000 (20 epochs of those would take hours): 5,000 steps at about 0.5 s of one
    # core's time each is 45 minutes on one thread (benchmarks/gallery: the scores)
    d.update(steps=5000) if info.shape[1] == 28 else d.update(epochs=30)
    return d


class DCGAN(VanillaGAN):
    name = "dcgan"

    def build(self):
        size = self.info.shape[1]
        G = dcgan_generator(self.z_dim, self.info.shape)
        D = dcgan_discriminator(self.d_input_shape, batchnorm=DCGAN_D_BATCHNORM[size],
                                dropout=0.3 if size == 28 else 0.0,
                                minibatch_discrimination=bool(
                                    self.config.get("minibatch_discrimination")))
        init_dcgan_(G)
        init_dcgan_(D)
        return G, D
