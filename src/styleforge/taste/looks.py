"""What a variant looks like: a small picture signature of its renders, the distances between
a round's variants, and the per-control scale those distances imply.

The controls do not weigh alike in a picture: colours kept can change every pixel where a step
of paint size changes little. A round's renders show by how much each control moved the
picture, so the preference model measures closeness as the picture does (a diagonal metric on
the unit control space, fitted to the renders' distances) rather than by the four numbers.

Numpy only.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from styleforge.taste.controls import AXES

__all__ = ["LOOK_SIDE", "look", "look_distances", "look_scales"]

#: Long side (px) of the colour thumbnail in a look.
LOOK_SIDE = 32


def _pool(x: np.ndarray, side: int) -> np.ndarray:
    """Area-average a (3,H,W) array to about ``side`` px on its long side -> (3,h,w)."""
    h, w = x.shape[-2:]
    k = max(1, round(max(h, w) / side))
    hh, ww = (h // k) * k, (w // k) * k
    return x[:, :hh, :ww].reshape(3, hh // k, k, ww // k, k).mean(axis=(2, 4))


def look(renders: Sequence[np.ndarray]) -> np.ndarray:
    """A variant's signature from its renders on the round's photos ((1,3,H,W) each, in
    [0,1]) -> float64 (F,): per photo, a colour thumbnail (tone, colour, how much paint) and a
    map of local detail (the mean absolute difference to the 2×2-pooled picture: strokes and
    their size). Euclidean distances between signatures, divided by √F, are RMS differences
    of those pictures."""
    parts = []
    for r in renders:
        height, width = int(r.shape[-2]), int(r.shape[-1])
        x = np.asarray(r, dtype=np.float64).reshape(3, height, width)
        parts.append(_pool(x, LOOK_SIDE).ravel())
        h, w = (height // 2) * 2, (width // 2) * 2
        coarse = _pool(x[:, :h, :w], max(h, w) // 2)
        detail = np.abs(x[:, :h, :w] - np.repeat(np.repeat(coarse, 2, 1), 2, 2))
        parts.append(_pool(detail, LOOK_SIDE // 2).ravel())
    return np.concatenate(parts)


def look_distances(looks: Sequence[np.ndarray]) -> np.ndarray:
    """RMS distances between signatures (:func:`look`): (n,F) -> symmetric (n,n)."""
    v = np.asarray(looks, dtype=np.float64)
    d2 = ((v[:, None, :] - v[None, :, :]) ** 2).mean(-1)
    return np.sqrt(np.maximum(d2, 0.0))


def _nnls(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """min ‖A w − b‖ over w ≥ 0 for a few columns: the best over every support (exact)."""
    k = a.shape[1]
    best, best_err = np.zeros(k), float(b @ b)
    for size in range(1, k + 1):
        for support in itertools.combinations(range(k), size):
            cols = list(support)
            w, *_ = np.linalg.lstsq(a[:, cols], b, rcond=None)
            if (w < 0).any():
                continue
            err = float(((a[:, cols] @ w - b) ** 2).sum())
            if err < best_err:
                best = np.zeros(k)
                best[cols] = w
                best_err = err
    return best


#: A control's scale never falls below this share of the mean (it stays searchable).
MIN_SCALE = 0.05


def look_scales(
    vectors: Sequence[np.ndarray], distances: Sequence[np.ndarray]
) -> np.ndarray | None:
    """Per-control weights (d,) from rounds of renders: ``vectors[i]`` (n_i,d) a round's
    variants in the unit control space, ``distances[i]`` (n_i,n_i) their picture distances.

    Fits D_ab² ≈ Σ_k w_k (a_k − b_k)² over every pair of every round (w ≥ 0), then scales w to
    a mean of 1 (the kernel's length scale keeps its meaning) with each weight at least
    :data:`MIN_SCALE`. ``None`` when the rounds say nothing (no pair differs)."""
    rows, target = [], []
    for x, d in zip(vectors, distances, strict=True):
        x = np.asarray(x, dtype=np.float64)
        for a, b in itertools.combinations(range(len(x)), 2):
            rows.append((x[a] - x[b]) ** 2)
            target.append(float(d[a, b]) ** 2)
    if not rows:
        return None
    a_mat, b_vec = np.array(rows), np.array(target)
    if not a_mat.any() or not b_vec.any():
        return None
    # each pair counts by how far apart its controls are, so near pairs do not dominate
    w = _nnls(a_mat, b_vec)
    if not w.any():
        return None
    w = w / w.mean()
    w = np.maximum(w, MIN_SCALE)
    return w / w.mean()


assert len(AXES) <= 8  # _nnls enumerates every support: few controls only
