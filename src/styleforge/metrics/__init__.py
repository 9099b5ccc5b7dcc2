"""Evaluation metrics with the project's offline VGG16: style, content, KID, memorization.

Layer: above ``infer``, beside ``video`` (neither imports the other); may import ``features``,
``losses``, ``collection``, ``sheets``, ``images``, ``fileio`` and ``errors``. ``train`` and
the front ends build on it."""

from styleforge.metrics import features
from styleforge.metrics.content import content_error, match_size, ssim
from styleforge.metrics.features import *  # noqa: F403 (its __all__, this package's too)
from styleforge.metrics.kid import kid, polynomial_kernel
from styleforge.metrics.memorization import COPY_THRESHOLD, MemorizationResult, memorization
from styleforge.metrics.style import collection_target, style_distance, style_gain

__all__ = [
    *features.__all__,
    "COPY_THRESHOLD",
    "MemorizationResult",
    "collection_target",
    "content_error",
    "kid",
    "match_size",
    "memorization",
    "polynomial_kernel",
    "ssim",
    "style_distance",
    "style_gain",
]
