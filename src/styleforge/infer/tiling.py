"""Apply an image-to-image function to a large image through overlapping, seamlessly blended tiles.

numpy only: this module must not import torch (the onnxruntime path runs without it).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import numpy as np

__all__ = ["apply_tiled", "blend_window", "tile_starts"]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)``.

    Neighbours share at least ``overlap`` px; starts are spread evenly, the first is 0 and the
    last is ``length - tile``. A single tile ``[0]`` when ``length <= tile``.
    """
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    if tile < 1:
        raise ValueError(f"tile must be >= 1, got {tile}")
    if length <= tile:  # one tile: no neighbour to overlap (a thin banner's short axis)
        return [0]
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile={tile}), got {overlap}")
    span = length - tile
    stride = tile - overlap
    gaps = -(-span // stride)  # fewest gaps with every gap <= stride
    # Rounded even spacing: every gap is floor or ceil of span / gaps, hence <= stride.
    return [(i * span * 2 + gaps) // (2 * gaps) for i in range(gaps + 1)]


def _ramp_profile(n: int, ramp_start: int, ramp_end: int) -> np.ndarray:
    """(n,) float64 weights rising over ``ramp_start`` px and falling over ``ramp_end`` px.

    Raised cosine sampled at pixel centres, ``sin²(π/2 · (k + 0.5) / r)``: strictly positive,
    below 1 inside the ramp, and a rising and a falling ramp of equal length sum to exactly 1.
    """
    prof = np.ones(n, dtype=np.float64)
    if ramp_start > 0:
        k = np.arange(ramp_start, dtype=np.float64)
        prof[:ramp_start] = np.sin(0.5 * np.pi * (k + 0.5) / ramp_start) ** 2
    if ramp_end > 0:
        k = np.arange(ramp_end, dtype=np.float64)
        prof[n - ramp_end :] = np.sin(0.5 * np.pi * (ramp_end - k - 0.5) / ramp_end) ** 2
    return prof


def blend_window(
    h: int, w: int, ramp_top: int, ramp_bottom: int, ramp_left: int, ramp_right: int
) -> np.ndarray:
    """(h, w) float32 tile weight: raised-cosine ramps from ~0 to 1 over the given px per side.

    A ramp of 0 (a side on the image border) keeps weight 1 up to the edge. Every weight is
    strictly positive; the window is the outer product of a vertical and a horizontal profile.
    """
    if h < 1 or w < 1:
        raise ValueError(f"window size must be positive, got {h}x{w}")
    if min(ramp_top, ramp_bottom, ramp_left, ramp_right) < 0:
        raise ValueError("ramps must be >= 0")
    if ramp_top + ramp_bottom > h or ramp_left + ramp_right > w:
        raise ValueError(
            f"ramps ({ramp_top}+{ramp_bottom} vertical, {ramp_left}+{ramp_right} horizontal) "
            f"do not fit a {h}x{w} window"
        )
    wy = _ramp_profile(h, ramp_top, ramp_bottom)
    wx = _ramp_profile(w, ramp_left, ramp_right)
    return np.outer(wy, wx).astype(np.float32)


def _ramps(starts: list[int], size: int) -> list[tuple[int, int]]:
    """(before, after) ramp lengths for tiles of ``size`` px at ``starts`` along one axis.

    A shared boundary ramps over the tiles' actual overlap, capped at ``size // 2`` so the two
    ramps of one tile never meet; image borders get no ramp.
    """
    shared = [min(a + size - b, size // 2) for a, b in pairwise(starts)]
    return list(zip([0, *shared], [*shared, 0], strict=True))


def apply_tiled(
    fn: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    tile: int,
    overlap: int,
    batch: int = 1,
) -> np.ndarray:
    """Apply ``fn`` to ``image`` (1,3,H,W) tile by tile; returns float32 (1,3,H,W).

    ``fn`` maps an (n,3,h,w) float32 batch to an (n,3,h,w) batch. Tiles of at most
    ``tile``×``tile`` px overlapping by at least ``overlap`` px are run up to ``batch`` at a
    time (one batch holds tiles of one shape) and blended as Σ weight·out / Σ weight with
    raised-cosine windows. An image that fits in one tile goes through ``fn`` once, whole.
    Besides the input, only the output and the (H,W) weight sum are full-size.
    """
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    if tile <= 2 * overlap:
        raise ValueError(f"tile must be > 2*overlap, got tile={tile}, overlap={overlap}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise ValueError(f"image must be (1,3,H,W), got shape {image.shape}")
    _, _, height, width = image.shape
    if height < 1 or width < 1:
        raise ValueError(f"image must not be empty, got shape {image.shape}")

    def run(x: np.ndarray) -> np.ndarray:
        y = np.asarray(fn(x), dtype=np.float32)
        if y.shape != x.shape:
            raise ValueError(f"fn changed the tile shape: {x.shape} -> {y.shape}")
        return y

    if height <= tile and width <= tile:
        out = run(image)
        return out.copy() if np.shares_memory(out, image) else out

    th, tw = min(tile, height), min(tile, width)
    ys, xs = tile_starts(height, th, overlap), tile_starts(width, tw, overlap)
    ramps_y, ramps_x = _ramps(ys, th), _ramps(xs, tw)
    # Tiles grouped by crop shape (one batch holds one shape): (y, x, window ramps) each.
    groups: dict[tuple[int, int], list[tuple[int, int, tuple[int, int, int, int]]]] = {}
    for y, (top, bottom) in zip(ys, ramps_y, strict=True):
        for x, (left, right) in zip(xs, ramps_x, strict=True):
            shape = (min(th, height - y), min(tw, width - x))
            groups.setdefault(shape, []).append((y, x, (top, bottom, left, right)))

    out = np.zeros_like(image)
    weight_sum = np.zeros((height, width), dtype=np.float32)
    windows: dict[tuple[int, int, int, int, int, int], np.ndarray] = {}
    for (h, w), tiles in groups.items():
        for i in range(0, len(tiles), batch):
            chunk = tiles[i : i + batch]
            result = run(np.stack([image[0, :, y : y + h, x : x + w] for y, x, _ in chunk]))
            for (y, x, ramps), tile_out in zip(chunk, result, strict=True):
                key = (h, w, *ramps)
                if key not in windows:
                    windows[key] = blend_window(h, w, *ramps)
                win = windows[key]
                out[0, :, y : y + h, x : x + w] += win * tile_out
                weight_sum[y : y + h, x : x + w] += win
    out /= weight_sum
    return out
