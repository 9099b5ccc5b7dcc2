"""The painter prior as a library: style vectors of pictures, and a ready stylizer for a collection.

``painter_for(style_images)`` gives a :class:`~styleforge.nets.PainterNet` whose style is the
mean style vector of the pictures (no training): the zero-training preview of ``styleforge
apply --style-from DIR``, and the starting point of ``styleforge train``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from styleforge.images import centre_square, pil_to_array
from styleforge.nets.painter import PREDICTOR_SIZE, PainterConfig, PainterNet, StylePredictor
from styleforge.nets.prior_weights import prior_state

__all__ = [
    "load_predictor",
    "neutral_vector",
    "painter_for",
    "prior_painter",
    "style_vectors",
]


@functools.lru_cache(maxsize=1)
def _states() -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    # Read once a process; building the networks it reads into must not move the global RNG,
    # or a second training in the same process would draw other initial weights than the
    # first (issue #45): every loader here leaves the RNG as it found it.
    with torch.random.fork_rng(devices=[]):
        return prior_state()


def load_predictor() -> StylePredictor:
    """The pretrained style predictor (CPU, float32, eval, frozen); the global RNG is left as
    it was."""
    with torch.random.fork_rng(devices=[]):
        net = StylePredictor()
    net.load_state_dict(_states()[1])
    return net.eval().requires_grad_(False)


def prior_painter(style: Tensor, neutral: Tensor) -> PainterNet:
    """A :class:`PainterNet`: the pretrained transformer, ``style`` (D,), ``neutral`` (D,);
    the global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        net = PainterNet(PainterConfig())
    net.transformer.load_state_dict(_states()[0])
    with torch.no_grad():
        net.style.copy_(style.reshape(-1))
        net.neutral.copy_(neutral.reshape(-1))
    return net


@torch.inference_mode()
def style_vectors(pictures: Sequence[Image.Image], batch: int = 16) -> Tensor:
    """Style vectors of ``pictures`` (each judged by its centre square, as
    apply cuts it from a photo for the predictor): (N,D) float32."""
    if not pictures:
        raise ValueError("style_vectors needs at least one picture")
    predictor = load_predictor()
    out = []
    for start in range(0, len(pictures), batch):
        part = pictures[start : start + batch]
        chunk = np.concatenate([centre_square(pil_to_array(p), PREDICTOR_SIZE) for p in part])
        out.append(predictor(torch.from_numpy(chunk)))
    return torch.cat(out)


#: The sample photos the neutral is the mean of (those the prior was calibrated with).
NEUTRAL_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


@functools.lru_cache(maxsize=1)
def _sample_photo_vectors() -> Tensor:
    from styleforge.images import sample_pictures

    return style_vectors(list(sample_pictures(NEUTRAL_PHOTOS).values()))


def neutral_vector(photos: Sequence[Image.Image] | None = None) -> Tensor:
    """The mean style vector of ordinary photos, (D,): of ``photos``, or of scikit-image's
    bundled sample photos. Conditioning on it, the prior gives back roughly the photo."""
    vectors = style_vectors(photos) if photos else _sample_photo_vectors()
    return vectors.mean(dim=0)


def painter_for(
    style_pictures: Sequence[Image.Image], photos: Sequence[Image.Image] | None = None
) -> PainterNet:
    """The zero-training stylizer of a collection: the prior with the mean of the pictures'
    style vectors as its style and :func:`neutral_vector` of ``photos`` as its neutral."""
    style = style_vectors(style_pictures).mean(dim=0)
    return prior_painter(style, neutral_vector(photos)).eval()
