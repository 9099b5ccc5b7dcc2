"""Evaluation metrics with the project's offline VGG16: style, content, KID, memorization."""

from styleforge.metrics.content import content_error, match_size, ssim
from styleforge.metrics.features import (
    POOL_LAYERS,
    POOL_SCALES,
    EvalSettings,
    FeatureBank,
    ImageFeatures,
    ImageInput,
    pooled_vector,
)
from styleforge.metrics.kid import kid, polynomial_kernel
from styleforge.metrics.memorization import COPY_THRESHOLD, MemorizationResult, memorization
from styleforge.metrics.style import collection_target, style_distance, style_gain

__all__ = [
    "COPY_THRESHOLD",
    "POOL_LAYERS",
    "POOL_SCALES",
    "EvalSettings",
    "FeatureBank",
    "ImageFeatures",
    "ImageInput",
    "MemorizationResult",
    "collection_target",
    "content_error",
    "kid",
    "match_size",
    "memorization",
    "polynomial_kernel",
    "pooled_vector",
    "ssim",
    "style_distance",
    "style_gain",
]
