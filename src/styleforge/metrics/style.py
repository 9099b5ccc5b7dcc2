"""How close an image's style is to a target style: relative Gram-matrix distance.

Gram matrices are the (C_l, C_l) (or (1, C_l, C_l)) outputs of ``gram_matrix`` per style layer,
as produced by ``FeatureBank``. A collection of style images is summarised by its centroid:
the mean Gram matrix per layer (:func:`collection_target`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from styleforge.errors import UserError

__all__ = ["collection_target", "style_distance", "style_gain"]


def _as_matrix(g: Tensor, what: str) -> Tensor:
    m = g.detach()
    if m.dim() == 3 and m.shape[0] == 1:
        m = m[0]
    if m.dim() != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(
            f"{what}: expected a (C, C) or (1, C, C) Gram matrix, got {tuple(g.shape)}"
        )
    return m.double()


def style_distance(image_grams: Sequence[Tensor], target_grams: Sequence[Tensor]) -> float:
    """Mean over style layers of ‖G_img − G_target‖_F / ‖G_target‖_F.

    ``image_grams`` and ``target_grams``: one Gram matrix per style layer, same order, each
    (C_l, C_l) or (1, C_l, C_l). 0 means the same Gram statistics; 1 is as far as an all-zero
    image would be. With a collection target (:func:`collection_target`) this is the distance
    to the collection's centroid Gram. A layer whose target is all zero counts 0 when the image
    matches it and inf otherwise.
    """
    if len(image_grams) != len(target_grams):
        raise ValueError(
            f"{len(image_grams)} image Gram matrices for {len(target_grams)} target layers"
        )
    if not image_grams:
        raise ValueError("style_distance needs at least one layer")
    total = 0.0
    for i, (g_img, g_tgt) in enumerate(zip(image_grams, target_grams, strict=True)):
        a, b = _as_matrix(g_img, f"image layer {i}"), _as_matrix(g_tgt, f"target layer {i}")
        if a.shape != b.shape:
            raise ValueError(f"layer {i}: Gram shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")
        diff = torch.linalg.matrix_norm(a - b).item()
        ref = torch.linalg.matrix_norm(b).item()
        total += (0.0 if diff == 0.0 else math.inf) if ref == 0.0 else diff / ref
    return total / len(image_grams)


def collection_target(grams_list: Sequence[Sequence[Tensor]]) -> list[Tensor]:
    """The collection's centroid: per style layer, the mean Gram matrix over its images.

    ``grams_list[i][l]`` is image ``i``'s (C_l, C_l) (or (1, C_l, C_l)) Gram matrix at layer
    ``l``. Returns one (C_l, C_l) float64 matrix per layer. ``style_distance(g, target)`` is
    then the distance to this centroid, not the mean distance to the individual images.
    """
    if not grams_list:
        raise UserError("the style collection has no images")
    n_layers = len(grams_list[0])
    if n_layers == 0 or any(len(grams) != n_layers for grams in grams_list):
        raise ValueError("every image needs one Gram matrix per style layer (same layers)")
    target: list[Tensor] = []
    for layer in range(n_layers):
        stack = torch.stack([_as_matrix(grams[layer], f"layer {layer}") for grams in grams_list])
        target.append(stack.mean(dim=0))
    return target


def style_gain(photo_distance: float, result_distance: float) -> float:
    """How many times closer to the style the result is than the photo: photo / result distance.

    > 1: the result moved toward the style; 1: no change; < 1: it moved away. A result distance
    of 0 gives inf (1.0 when the photo's distance is 0 too). Negative or NaN distances raise.
    """
    for name, value in (("photo_distance", photo_distance), ("result_distance", result_distance)):
        if math.isnan(value) or value < 0:
            raise ValueError(f"{name} must be a non-negative number, got {value}")
    if result_distance == 0.0:
        return 1.0 if photo_distance == 0.0 else math.inf
    return photo_distance / result_distance
