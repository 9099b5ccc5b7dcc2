"""The pretrained perceptual network (VGG) and its preprocessing."""

from styleforge.features.encoder import EncoderSpec, VGGEncoder, layer_names, load_encoder

__all__ = ["EncoderSpec", "VGGEncoder", "layer_names", "load_encoder"]
