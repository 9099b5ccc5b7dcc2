"""Are generated samples copies of collection images? Nearest-neighbour distance ratios.

Feature vectors are the pooled VGG16 vectors of ``metrics.features`` (any (n, d) features
work). A sample's ratio is its distance to the nearest collection vector divided by the typical
spacing of the collection itself (median leave-one-out nearest-neighbour distance): about 1 or
more for a new image, near 0 for a near-copy.
"""

from __future__ import annotations

import math
from typing import TypedDict

import torch
from torch import Tensor

from styleforge.errors import UserError

__all__ = ["COPY_THRESHOLD", "MemorizationResult", "memorization"]

COPY_THRESHOLD = 0.5
"""A sample whose ratio is below this counts as a copy of a collection image."""


class MemorizationResult(TypedDict):
    """``per_sample``: ratio of each sample; ``median``/``min``: of those ratios;
    ``copies``: how many ratios are below :data:`COPY_THRESHOLD`."""

    per_sample: list[float]
    median: float
    min: float
    copies: int


def memorization(samples: Tensor, collection: Tensor) -> MemorizationResult:
    """Nearest-neighbour distance ratios of samples (k, d) to a collection (m, d).

    For each sample: the Euclidean distance to its nearest collection vector, divided by the
    median over the collection of each vector's distance to its nearest *other* collection
    vector. If that median is 0 (duplicates in the collection), a ratio is 0 for a distance of
    0 and inf otherwise. Needs k >= 1 and m >= 2. Computed in float64.
    """
    if samples.dim() != 2 or collection.dim() != 2:
        raise ValueError(
            f"memorization needs (n, d) feature matrices, got {tuple(samples.shape)} and "
            f"{tuple(collection.shape)}"
        )
    k, m = samples.shape[0], collection.shape[0]
    if m < 2:
        raise UserError(f"memorization needs at least 2 collection images (got {m})")
    if k < 1:
        raise UserError("memorization needs at least 1 sample (got 0)")
    if samples.shape[1] != collection.shape[1]:
        raise ValueError(f"feature sizes differ: {samples.shape[1]} vs {collection.shape[1]}")

    s = samples.detach().double().cpu()
    c = collection.detach().double().cpu()
    nearest = torch.cdist(s, c).min(dim=1).values  # (k,)
    own = torch.cdist(c, c)
    own.fill_diagonal_(math.inf)
    spacing = float(torch.quantile(own.min(dim=1).values, 0.5).item())
    if spacing > 0.0:
        ratios = [float(v) / spacing for v in nearest.tolist()]
    else:
        ratios = [0.0 if v == 0.0 else math.inf for v in nearest.tolist()]
    ordered = sorted(ratios)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return {
        "per_sample": ratios,
        "median": median,
        "min": ordered[0],
        "copies": sum(r < COPY_THRESHOLD for r in ratios),
    }
