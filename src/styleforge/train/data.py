"""What the training loops draw from: pools of images, random crops, Gram targets.

Images are float (1,3,H,W) tensors in [0,1]. A job reads each folder once
(:func:`load_pool`): every image is decoded once, by the check that the collection does, and
only what the job keeps of it (the image resized for its pool, and for the evaluation) is held.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import torch
from torch import Tensor, nn

from styleforge import collection, images
from styleforge.distributed import World
from styleforge.losses import gram_matrix
from styleforge.runtime import autocast

__all__ = [
    "center_square",
    "image_grams",
    "load_pool",
    "random_crops",
    "resize_pool",
    "sample_photos",
]

T = TypeVar("T")


def sample_photos() -> dict[str, Tensor]:
    """scikit-image's bundled photos (:data:`styleforge.images.SAMPLE_PHOTOS`) as (1,3,H,W)
    in [0,1]."""
    return {name: images.pil_to_tensor(p) for name, p in images.sample_pictures().items()}


def resize_pool(tensors: Sequence[Tensor], short_side: int) -> list[Tensor]:
    """Resize each image so its short side is ``short_side`` px (up or down)."""
    return [images.resize_to(t, short_side, "short") for t in tensors]


def center_square(t: Tensor, side: int) -> Tensor:
    """(1,3,side,side): ``t`` resized to a short side of ``side``, its middle square."""
    t = images.resize_to(t, side, "short")
    h, w = t.shape[-2:]
    top, left = (h - side) // 2, (w - side) // 2
    return t[..., top : top + side, left : left + side]


def load_pool(
    folder: Path,
    what: str,
    keep: Callable[[Tensor], T],
    max_pixels: int,
    world: World,
    check: Callable[[collection.Collection], None] | None = None,
) -> tuple[collection.Collection, list[T]]:
    """The usable images of ``folder`` and what ``keep`` makes of each ((1,3,H,W) in [0,1]).

    Process 0 scans the folder (printing the audit; ``what`` names the task in the error when
    nothing is usable, and ``check`` may refuse the collection): each file is hashed once and
    decoded once, by the scan's own check. Under torchrun the other processes get the listing
    and decode the listed files, once each."""
    kept: list[T] = []

    def scan() -> collection.Collection:
        coll, mine = collection.load_for(folder, 1, what, keep, max_pixels)
        if check is not None:
            check(coll)
        kept.extend(mine)
        return coll

    coll = world.on_main(scan)
    if not world.is_main:
        kept = [keep(images.load_image(p, max_pixels)) for p in coll.images]
    return coll, kept


def random_crops(
    pool: Sequence[Tensor],
    n: int,
    size: int,
    gen: torch.Generator,
    keep: slice | None = None,
    weights: Tensor | None = None,
) -> Tensor:
    """``n`` random ``size``×``size`` crops, each from a random image of ``pool`` (each
    (1,3,H,W) with both sides ≥ size), with random horizontal flips. Returns (n,3,size,size),
    or with ``keep`` only those rows (one process's share: the draws are made for all ``n``, so
    every process's generator stays in step). ``weights``: (len(pool),) how often each image
    is drawn (default: all alike)."""
    kept = range(n)[keep] if keep is not None else range(n)
    crops = []
    for i in range(n):
        if weights is None:
            img = pool[int(torch.randint(len(pool), (1,), generator=gen))]
        else:
            img = pool[int(torch.multinomial(weights, 1, generator=gen))]
        h, w = img.shape[-2:]
        top = int(torch.randint(h - size + 1, (1,), generator=gen))
        left = int(torch.randint(w - size + 1, (1,), generator=gen))
        flip = float(torch.rand(1, generator=gen)) < 0.5
        if i in kept:
            crop = img[..., top : top + size, left : left + size]
            crops.append(crop.flip(-1) if flip else crop)
    return torch.cat(crops)


@torch.no_grad()
def image_grams(
    encoder: nn.Module, pool: Sequence[Tensor], layers: Sequence[str], device: torch.device
) -> list[Tensor]:
    """Per layer of ``layers``, the Gram matrices of every whole image of ``pool`` (each
    (1,3,H,W)): a list of (len(pool), C_l, C_l) float32 tensors."""
    per_image = []
    for image in pool:
        with autocast(device):
            feats = encoder(image.to(device))
        per_image.append([gram_matrix(feats[n])[0] for n in layers])
    return [torch.stack(layer) for layer in zip(*per_image, strict=True)]
