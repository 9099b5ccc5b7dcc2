"""Networks: the feed-forward stylizers (trained from scratch, or on the painter prior), the
PatchGAN discriminator and their building blocks; the sampler's generator and discriminator
are in :mod:`styleforge.nets.sampler`, the painter prior's offline weights in
:mod:`styleforge.nets.prior_weights`.

Layer: above ``features`` and ``losses``; may import ``features`` (the frozen networks a
projected discriminator reads, the weight caches), ``runtime``, ``configs``, ``fileio`` and
``errors``. ``infer`` and ``train`` build on it."""

from collections.abc import Mapping
from typing import Any, get_args

from styleforge import configs
from styleforge.nets.blocks import ConvLayer, Norm, ResidualBlock, UpsampleConv, make_norm
from styleforge.nets.discriminator import DiscriminatorConfig, PatchDiscriminator
from styleforge.nets.painter import PainterConfig, PainterNet, StylePredictor
from styleforge.nets.stylizer import MIN_SIDE, StylizerConfig, StylizerNet

#: The config of either stylizer architecture (what a model file's ``net`` field holds).
AnyStylizerConfig = StylizerConfig | PainterConfig
#: Either stylizer network: (N,3,H,W) in [0,1] -> (N,3,H,W) in [0,1].
AnyStylizer = StylizerNet | PainterNet

__all__ = [
    "MIN_SIDE",
    "AnyStylizer",
    "AnyStylizerConfig",
    "ConvLayer",
    "DiscriminatorConfig",
    "Norm",
    "PainterConfig",
    "PainterNet",
    "PatchDiscriminator",
    "ResidualBlock",
    "StylePredictor",
    "StylizerConfig",
    "StylizerNet",
    "UpsampleConv",
    "build_stylizer",
    "make_norm",
    "stylizer_config_from_dict",
]


def stylizer_config_from_dict(d: Mapping[str, Any]) -> AnyStylizerConfig:
    """The config a model file's ``net`` JSON describes: ``arch: painter`` or the classic net."""
    return configs.from_dict(configs.pick_config(get_args(AnyStylizerConfig), d), d)


def build_stylizer(config: AnyStylizerConfig) -> AnyStylizer:
    """A fresh (untrained) network of the architecture ``config`` describes."""
    if isinstance(config, PainterConfig):
        return PainterNet(config)
    return StylizerNet(config)
