"""The pretrained perceptual networks (VGG16 with named layers, EfficientNet-Lite0), their
preprocessing and their offline weight sources.

Layer: above the bottom modules, beside ``losses`` (neither imports the other); may import
``fileio`` and ``errors`` only. ``nets`` and everything above build on it."""

from styleforge.features.encoder import (
    EncoderSpec,
    VGGEncoder,
    layer_names,
    load_encoder,
    loss_encoder,
)

__all__ = ["EncoderSpec", "VGGEncoder", "layer_names", "load_encoder", "loss_encoder"]
