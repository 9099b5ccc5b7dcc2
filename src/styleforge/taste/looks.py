"""What a variant looks like: a small picture signature of its renders, and the distances
between a round's variants.

The controls do not weigh alike in a picture: colours kept can change every pixel where a step
of paint size changes little. The search measures closeness as the picture does, rather than
by the four numbers: on the looks of sketches (small renders of any candidate setting, a
:data:`LookFn` the front end gives) or, without them, by a metric on the unit control space
fitted to the rounds' renders (:mod:`styleforge.taste.ideal`).

Numpy only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from styleforge.infer.settings import Settings

__all__ = ["LOOK_SIDE", "LookFn", "cross_distances", "look", "look_distances"]

#: Looks of settings: (k,F) signatures (:func:`look`) of k looks (Settings), each restyled
#: the same way (the front end's sketch of the judged photos).
LookFn = Callable[[Sequence["Settings"]], np.ndarray]

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


def cross_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """RMS distances between (n,F) and (m,F) signatures -> (n,m)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d2 = (a * a).mean(1)[:, None] + (b * b).mean(1)[None, :] - 2.0 * (a @ b.T) / a.shape[1]
    return np.sqrt(np.maximum(d2, 0.0))
