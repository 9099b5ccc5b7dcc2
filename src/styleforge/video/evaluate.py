"""How much a restyled clip flickers: its warping error against the motion of the clip it was
restyled from (``styleforge evaluate --video``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from styleforge.errors import UserError
from styleforge.video.io import open_clip
from styleforge.video.temporal import WarpingError

__all__ = ["ClipFlicker", "clip_flicker"]


@dataclass(frozen=True)
class ClipFlicker:
    """The warping errors of a restyled clip and of its source (see
    :class:`~styleforge.video.temporal.WarpingError`).

    Args:
        warping_error: of the restyled clip, along the source's motion (lower: steadier).
        source_error: the source's own along its motion: what flow cannot explain (the floor).
        pairs: consecutive frame pairs compared.
        width, height: the size the frames were compared at (the restyled clip's).
    """

    warping_error: float
    source_error: float
    pairs: int
    width: int
    height: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return asdict(self)

    def line(self) -> str:
        """``warping error 0.00143 (source 0.00014) over 89 frame pairs at 640x360``."""
        return (
            f"warping error {self.warping_error:.5f} (the source's own: {self.source_error:.5f}) "
            f"over {self.pairs} frame pairs at {self.width}x{self.height}"
        )


def clip_flicker(restyled: Path, source: Path) -> ClipFlicker:
    """Compare ``restyled`` frame by frame with ``source`` (each a clip file or a folder of
    frames; the source's frames are resized to the restyled clip's size). Clips of different
    lengths (more than a frame apart) are a :class:`UserError`."""
    out, src = open_clip(restyled), open_clip(source)
    counts = (out.info.frames, src.info.frames)
    if None not in counts and abs(counts[0] - counts[1]) > 1:  # type: ignore[operator]
        raise UserError(
            f"{restyled} has {counts[0]} frames and {source} {counts[1]}: compare a clip with "
            "the one it was restyled from (trimmed alike)"
        )
    size = (out.info.width, out.info.height)
    result, floor = WarpingError(), WarpingError()
    for frame, styled in zip(src.frames(), out.frames(), strict=False):
        if (frame.shape[1], frame.shape[0]) != size:
            frame = np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.BILINEAR))
        result.update(frame, styled)
        floor.update(frame, frame)
    if result.pairs < 1:
        raise UserError(f"{restyled}: fewer than two frames to compare")
    return ClipFlicker(result.value, floor.value, result.pairs, *size)
