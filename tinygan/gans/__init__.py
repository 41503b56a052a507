"""The GAN zoo: one file per variant, each readable beside its paper's algorithm."""
from . import cgan, dcgan, vanilla, wgan, wgan_gp, sagan
from .base import GAN, DataInfo

#: variant name -> (module with defaults(info), GAN class)
VARIANTS = {
    "vanilla": (vanilla, vanilla.VanillaGAN),
    "dcgan": (dcgan, dcgan.DCGAN),
    "wgan": (wgan, wgan.WGAN),
    "wgan-gp": (wgan_gp, wgan_gp.WGANGP),
    "cgan": (cgan, cgan.ConditionalGAN),
    "sagan": (sagan, sagan.SAGAN),
}


def defaults(variant: str, info: DataInfo) -> dict:
    """The paper's settings for this variant on this kind of data."""
    return VARIANTS[_check(variant)][0].defaults(info)


def build(variant: str, config: dict, info: DataInfo) -> GAN:
    return VARIANTS[_check(variant)][1](config, info)


def _check(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    return variant


__all__ = ["VARIANTS", "GAN", "DataInfo", "defaults", "build"]
