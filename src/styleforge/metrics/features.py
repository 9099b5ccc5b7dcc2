"""VGG16 features for evaluation: Gram matrices, content features and a pooled vector.

One frozen encoder (the project's offline VGG16) serves every metric. Images are float RGB
(1, 3, H, W) in [0, 1] (a (3, H, W) tensor is accepted too) or paths to image files; each is
resized so that its long side is ``EvalSettings.size`` before it enters the network. Nothing is
cached on disk and no input tensor is changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from styleforge.errors import UserError
from styleforge.features import VGGEncoder, load_encoder
from styleforge.images import load_image, resize_to
from styleforge.losses.functional import gram_matrix
from styleforge.metrics.content import match_size

__all__ = [
    "POOL_LAYERS",
    "POOL_SCALES",
    "EvalSettings",
    "FeatureBank",
    "ImageFeatures",
    "ImageInput",
    "pooled_vector",
]

ImageInput = Tensor | str | Path
"""An image as a (1, 3, H, W) / (3, H, W) tensor in [0, 1], or a path to an image file."""

POOL_LAYERS: tuple[str, ...] = ("relu2_1", "relu3_1", "relu4_1", "relu5_1")
"""Layers whose per-channel spatial mean and std make up the pooled vector."""

# Per-layer divisors that bring the pooled entries to O(1). Measured once with the offline
# VGG16 on the 24 photos of /work/shared/data/content and the 13 paintings (+3 extra files)
# of /work/shared/data/style_images (40 images), each resized to a 256 px long side: for
# every image, the root mean square over the layer's entries [channel means, channel stds]
# (population std); the constant is the median of that RMS over the images, rounded.
# Measured medians (min..max): relu2_1 222 (149..426), relu3_1 387 (263..663),
# relu4_1 262 (186..462), relu5_1 42.8 (30..68).
POOL_SCALES: dict[str, float] = {
    "relu2_1": 220.0,
    "relu3_1": 390.0,
    "relu4_1": 260.0,
    "relu5_1": 43.0,
}


@dataclass(frozen=True)
class EvalSettings:
    """What the evaluation measures with.

    ``size``: long side (pixels) every image is resized to. ``style_layers``: layers whose Gram
    matrices define style. ``content_layer``: layer whose features define content.
    """

    size: int = 256
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    content_layer: str = "relu4_2"

    def __post_init__(self) -> None:
        if self.size < 16:
            raise UserError(f"evaluation size must be at least 16 pixels, got {self.size}")
        if not self.style_layers:
            raise UserError("evaluation needs at least one style layer")

    @property
    def layers(self) -> tuple[str, ...]:
        """Every layer the encoder must return: style, content and pooled, without repeats."""
        return tuple(dict.fromkeys((*self.style_layers, self.content_layer, *POOL_LAYERS)))


@dataclass(frozen=True)
class ImageFeatures:
    """Everything the metrics need from one image.

    ``grams``: per style layer, a (C_l, C_l) Gram matrix (``gram_matrix``: F Fᵀ/(C·H·W)).
    ``content``: (1, C, H_c, W_c) content-layer features. ``pooled``: (D,) pooled vector
    (see :func:`pooled_vector`). ``size``: (H, W) of the image as it entered the network.
    """

    grams: list[Tensor]
    content: Tensor
    pooled: Tensor
    size: tuple[int, int]


def pooled_vector(feats: dict[str, Tensor]) -> Tensor:
    """Pooled feature vector (D,) from a dict of (1, C_l, H_l, W_l) feature maps.

    Per layer of :data:`POOL_LAYERS`, in that order: the C_l channel spatial means, then the
    C_l channel spatial (population) stds, both divided by ``POOL_SCALES[layer]``.
    D = 2 · (128 + 256 + 512 + 512) = 2816 for VGG16.
    """
    parts: list[Tensor] = []
    for layer in POOL_LAYERS:
        f = feats[layer]
        if f.dim() != 4 or f.shape[0] != 1:
            raise ValueError(f"{layer}: expected (1, C, H, W) features, got {tuple(f.shape)}")
        flat = f[0].float().flatten(1)  # (C, H·W)
        scale = POOL_SCALES[layer]
        parts += [flat.mean(dim=1) / scale, flat.std(dim=1, unbiased=False) / scale]
    return torch.cat(parts)


class FeatureBank:
    """One frozen VGG16 for all evaluation layers; turns images into :class:`ImageFeatures`.

    ``encoder`` may be passed to reuse an already loaded :class:`VGGEncoder` that returns at
    least ``settings.layers``; otherwise the offline VGG16 is loaded on ``device``.
    """

    def __init__(
        self,
        settings: EvalSettings | None = None,
        device: torch.device | str = "cpu",
        encoder: VGGEncoder | None = None,
    ) -> None:
        self.settings = settings or EvalSettings()
        self.device = torch.device(device)
        if encoder is None:
            encoder = load_encoder(self.settings.layers, device=self.device)
        else:
            missing = [name for name in self.settings.layers if name not in encoder.layers]
            if missing:
                raise ValueError(f"encoder does not return layer(s) {', '.join(missing)}")
        self.encoder = encoder

    def prepare(self, image: ImageInput) -> Tensor:
        """Image or path -> (1, 3, H, W) float32 on the bank's device, long side ``size``.

        Paths are decoded (``load_image``), then files and tensors alike are resized with
        ``resize_to`` (the one resize policy: a file and its decoded tensor give the same
        features). A tensor whose long side already is ``size`` keeps its exact pixels (only
        clamped to [0, 1]).
        """
        t = load_image(image) if isinstance(image, (str, Path)) else image
        t = t.unsqueeze(0) if t.dim() == 3 else t
        if t.dim() != 4 or t.shape[0] != 1 or t.shape[1] != 3:
            raise ValueError(f"expected a (1, 3, H, W) or (3, H, W) image, got {tuple(t.shape)}")
        return resize_to(t.detach().float().cpu(), self.settings.size).to(self.device)

    @torch.no_grad()
    def _encode(self, image: ImageInput) -> tuple[dict[str, Tensor], tuple[int, int]]:
        x = self.prepare(image)
        return self.encoder(x), (int(x.shape[-2]), int(x.shape[-1]))

    @torch.no_grad()
    def features(self, image: ImageInput) -> ImageFeatures:
        """All features of one image: Grams, content features, pooled vector (on CPU)."""
        feats, size = self._encode(image)
        grams = [gram_matrix(feats[name].float())[0].cpu() for name in self.settings.style_layers]
        content = feats[self.settings.content_layer].float().cpu()
        return ImageFeatures(
            grams=grams, content=content, pooled=pooled_vector(feats).cpu(), size=size
        )

    def grams(self, image: ImageInput) -> list[Tensor]:
        """Per style layer, the (C_l, C_l) Gram matrix of the image."""
        return self.features(image).grams

    @torch.no_grad()
    def content(self, image: ImageInput) -> Tensor:
        """(1, C, H_c, W_c) content-layer features of the image (resized to ``size``)."""
        feats, _ = self._encode(image)
        return feats[self.settings.content_layer].float().cpu()

    @torch.no_grad()
    def pooled(self, images: Sequence[ImageInput]) -> Tensor:
        """(n, D) pooled vectors of ``n`` images, one row per image, for KID / memorization."""
        if len(images) == 0:
            raise UserError("no images to compute features for")
        rows = [pooled_vector(self._encode(image)[0]).cpu() for image in images]
        return torch.stack(rows)

    @torch.no_grad()
    def content_pair(self, result: ImageInput, photo: ImageInput) -> tuple[Tensor, Tensor]:
        """Content features of a result and of its source photo, at the same size.

        Both are resized to a long side of ``size``; the photo is then resized to exactly the
        result's (H, W) (:func:`~styleforge.metrics.content.match_size`), so a photo of another
        aspect ratio is stretched to the result's. Returns two (1, C, H_c, W_c) tensors.
        """
        r = self.prepare(result)
        p = match_size(self.prepare(photo), r)
        return self.content(r), self.content(p)
