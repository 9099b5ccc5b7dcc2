"""Optical flow between frames (OpenCV's DIS), backward warping and occlusion masks.

Frames are numpy arrays (H, W, 3) RGB ``uint8`` (or (H, W) grey ``uint8``); a flow field is
float32 (H, W, 2) of (dx, dy) in pixels. Conventions, for frames ``a`` and ``b``:

- ``flow(a, b)``: for each pixel x of ``a``, ``a(x) ≈ b(x + flow(x))``;
- ``warp(b, flow)``: ``b`` resampled at ``x + flow(x)``, so aligned with ``a``;
- ``consistency_mask(flow_ab, flow_ba)``: 1 where x's match in ``b`` maps back to x
  (Sundaram et al. ECCV 2010, as in Ruder et al. GCPR 2016), 0 where x is occluded in ``b``,
  leaves the frame, or (optionally) lies on a motion boundary.

Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

__all__ = [
    "FlowEstimator",
    "FlowSettings",
    "consistency_mask",
    "resize_flow",
    "to_grey",
    "warp",
]

Preset = Literal["ultrafast", "fast", "medium"]
_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


@dataclass(frozen=True)
class FlowSettings:
    """How flow is estimated.

    Args:
        preset: DIS preset; ``fast`` is 3–4× quicker than ``medium`` at a small loss of
            accuracy (see bench/video.py).
        max_side: estimate at most at this long side (frames are shrunk with an area filter,
            the field scaled back up); ``None``: full size.
        motion_boundaries: also mask pixels on motion boundaries (Ruder et al.:
            |∇u|² + |∇v|² > 0.01 |w|² + 0.002).
    """

    preset: Preset = "fast"
    max_side: int | None = 320
    motion_boundaries: bool = False

    def __post_init__(self) -> None:
        if self.preset not in _PRESETS:
            raise ValueError(f"preset must be one of {', '.join(_PRESETS)}, got {self.preset!r}")
        if self.max_side is not None and self.max_side < 16:
            raise ValueError(f"max_side must be at least 16 px, got {self.max_side}")


def to_grey(frame: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> grey uint8 (H, W); a grey (H, W) frame is returned as is."""
    if frame.ndim == 2:
        return frame
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) or (H, W) frame, got {frame.shape}")
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return xs, ys


def warp(image: np.ndarray, flow: np.ndarray, *, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """Backward warp: ``image`` (H, W[, C], any dtype OpenCV remaps) sampled bilinearly at
    ``x + flow(x)``; same shape and dtype. ``flow``: float32 (H, W, 2)."""
    h, w = flow.shape[:2]
    if image.shape[:2] != (h, w):
        raise ValueError(f"image {image.shape[:2]} and flow {flow.shape[:2]} sizes differ")
    xs, ys = _grid(h, w)
    map_x, map_y = xs + flow[..., 0], ys + flow[..., 1]
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=border)


def resize_flow(flow: np.ndarray, height: int, width: int) -> np.ndarray:
    """A flow field (h, w, 2) scaled to (height, width, 2): resampled bilinearly and its
    vectors multiplied by the size ratio."""
    h, w = flow.shape[:2]
    if (h, w) == (height, width):
        return flow
    out = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
    out[..., 0] *= width / w
    out[..., 1] *= height / h
    return out


def consistency_mask(
    flow_ab: np.ndarray, flow_ba: np.ndarray, *, motion_boundaries: bool = False
) -> np.ndarray:
    """float32 (H, W) over ``a``'s pixels: 1 where the forward-backward check passes, 0 where
    ``|w + ŵ|² > 0.01 (|w|² + |ŵ|²) + 0.5`` with ``w = flow_ab(x)`` and ``ŵ = flow_ba(x + w)``
    (an occlusion), where ``x + w`` leaves the frame, and with ``motion_boundaries`` where
    ``|∇u|² + |∇v|² > 0.01 |w|² + 0.002``."""
    h, w = flow_ab.shape[:2]
    back = warp(flow_ba, flow_ab)
    total = flow_ab + back
    lhs = np.sum(total * total, axis=2)
    rhs = 0.01 * (np.sum(flow_ab * flow_ab, axis=2) + np.sum(back * back, axis=2)) + 0.5
    valid = lhs <= rhs
    xs, ys = _grid(h, w)
    tx, ty = xs + flow_ab[..., 0], ys + flow_ab[..., 1]
    valid &= (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    if motion_boundaries:
        gy_u, gx_u = np.gradient(flow_ab[..., 0])
        gy_v, gx_v = np.gradient(flow_ab[..., 1])
        grad = gx_u**2 + gy_u**2 + gx_v**2 + gy_v**2
        valid &= grad <= 0.01 * np.sum(flow_ab * flow_ab, axis=2) + 0.002
    return valid.astype(np.float32)


class FlowEstimator:
    """DIS optical flow with the settings given; one estimator per stream of frames (it holds
    an OpenCV object and is not thread-safe)."""

    def __init__(self, settings: FlowSettings | None = None) -> None:
        self.settings = settings or FlowSettings()
        self._dis = cv2.DISOpticalFlow.create(_PRESETS[self.settings.preset])

    def _small(self, grey: np.ndarray) -> np.ndarray:
        side = self.settings.max_side
        h, w = grey.shape
        if side is None or max(h, w) <= side:
            return grey
        scale = side / max(h, w)
        size = (max(8, round(w * scale)), max(8, round(h * scale)))
        return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)

    def flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """float32 (H, W, 2): ``a(x) ≈ b(x + flow(x))``, at ``a``'s full size."""
        return resize_flow(self._flow_small(a, b), *a.shape[:2])

    def _flow_small(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The flow a→b at the estimation size."""
        ga, gb = self._small(to_grey(a)), self._small(to_grey(b))
        if ga.shape != gb.shape:
            raise ValueError(f"frames differ in size: {a.shape[:2]} and {b.shape[:2]}")
        flow = np.zeros((*ga.shape, 2), dtype=np.float32)
        return np.asarray(self._dis.calc(ga, gb, flow), dtype=np.float32)

    def flow_and_mask(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flow a→b (H, W, 2), mask (H, W) float32 in [0, 1] of ``a``'s pixels seen
        consistently in ``b``), both at ``a``'s full size. The check runs at the estimation
        size; the mask is scaled up bilinearly, so its edges are soft."""
        forward, backward = self._flow_small(a, b), self._flow_small(b, a)
        mask = consistency_mask(
            forward, backward, motion_boundaries=self.settings.motion_boundaries
        )
        h, w = a.shape[:2]
        if mask.shape != (h, w):
            mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
        return resize_flow(forward, h, w), mask
