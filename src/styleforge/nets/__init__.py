"""Networks: the feed-forward stylizer, the PatchGAN discriminator and their building blocks."""

from styleforge.nets.blocks import ConvLayer, Norm, ResidualBlock, UpsampleConv, make_norm
from styleforge.nets.discriminator import DiscriminatorConfig, PatchDiscriminator
from styleforge.nets.stylizer import MIN_SIDE, StylizerConfig, StylizerNet

__all__ = [
    "MIN_SIDE",
    "ConvLayer",
    "DiscriminatorConfig",
    "Norm",
    "PatchDiscriminator",
    "ResidualBlock",
    "StylizerConfig",
    "StylizerNet",
    "UpsampleConv",
    "make_norm",
]
