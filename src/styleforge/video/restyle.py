"""Restyling a whole clip: decode, restyle each frame, blend along the motion, encode.

Torch-free at import (an ``.onnx`` model restyles video without PyTorch).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from styleforge.errors import UserError
from styleforge.infer.restyle import Settings
from styleforge.video.encode import output_kind, write_clip
from styleforge.video.flow import FlowSettings
from styleforge.video.io import open_clip
from styleforge.video.temporal import DEFAULT_DENOISE, DEFAULT_TEMPORAL, TemporalBlend

__all__ = ["RestyleFn", "VideoSummary", "restyle_frame", "restyle_video"]

RestyleFn = Callable[[Image.Image, "Settings | None"], Image.Image]
"""What restyles one frame: an RGB PIL image (and the settings) in, an RGB PIL image of the
same size out; a :class:`~styleforge.infer.restyle.Restyler` is one."""


@dataclass(frozen=True)
class VideoSummary:
    """What a restyled clip came to.

    Args:
        output: the file or folder written.
        frames: frames written.
        seconds: wall-clock time of the whole run.
        width, height: frame size written.
        fps: the clip's frame rate (kept in the output).
        audio_kept: whether the output carries the source's audio.
        temporal: the blend weight used (0: none).
    """

    output: Path
    frames: int
    seconds: float
    width: int
    height: int
    fps: float
    audio_kept: bool
    temporal: float

    @property
    def frames_per_second(self) -> float:
        """Frames restyled per second of wall-clock time."""
        return self.frames / self.seconds if self.seconds > 0 else float("inf")

    def line(self) -> str:
        """``restyled 90 frames (640x360, 30 fps) in 41.2 s, 2.2 frames/s, audio kept``."""
        audio = "audio kept" if self.audio_kept else "no audio"
        return (
            f"restyled {self.frames} frames ({self.width}x{self.height}, {self.fps:g} fps) in "
            f"{self.seconds:.1f} s, {self.frames_per_second:.1f} frames/s, {audio}"
        )


def restyle_frame(
    restyler: RestyleFn,
    frame: np.ndarray,
    settings: Settings | None,
    blend: TemporalBlend | None,
) -> np.ndarray:
    """One input frame (RGB uint8 (H, W, 3)) restyled and, with ``blend``, denoised along the
    motion first and blended with the previous output after: RGB uint8 (H, W, 3) of the same
    size."""
    source = frame if blend is None else blend.prepare(frame)
    styled = restyler(Image.fromarray(source), settings)
    if styled.size != (frame.shape[1], frame.shape[0]):
        styled = styled.resize((frame.shape[1], frame.shape[0]), Image.Resampling.LANCZOS)
    out = np.asarray(styled.convert("RGB"), dtype=np.uint8)
    return out if blend is None else blend(frame, out)


def restyle_video(
    restyler: RestyleFn,
    src: Path,
    dst: Path,
    settings: Settings | None = None,
    *,
    temporal: float = DEFAULT_TEMPORAL,
    start: float | None = None,
    end: float | None = None,
    max_size: int | None = None,
    audio: bool = True,
    progress: bool = True,
    overwrite: bool = False,
    flow: FlowSettings | None = None,
    denoise: float = DEFAULT_DENOISE,
) -> VideoSummary:
    """Restyle the clip ``src`` into ``dst`` (a video file, a ``.gif`` or a folder of PNGs).

    Args:
        restyler: restyles one frame (a :class:`~styleforge.infer.restyle.Restyler`, or any
            callable with its signature).
        settings: the look (strength, colours, tone, paint size), as for photos. Its
            ``max_size`` counts as ``max_size`` here when that is not given.
        temporal: weight α of the previous output warped along the input's motion
            (:class:`~styleforge.video.temporal.TemporalBlend`); 0 restyles each frame alone.
        start, end: seconds of ``src`` to restyle (the audio is cut alike).
        max_size: shrink frames so their long side is at most this first.
        audio: carry the source's audio over (video outputs).
        progress: a progress bar with an ETA on stderr.
        overwrite: replace an existing ``dst``.
        flow: how the blend estimates motion (default :class:`FlowSettings`).
        denoise: weight β of the previous input warped along the motion, where the input
            barely changed, mixed into each frame before restyling (sensor noise would become
            changing strokes: :meth:`~styleforge.video.temporal.TemporalBlend.prepare`); 0 off.

    The output is written under a temporary name and renamed when complete: an error or an
    interruption (Ctrl-C) leaves no output and no temporary file.

    Raises:
        UserError: ``dst`` exists (without ``overwrite``), ``src`` is not a readable clip,
            a bad format, trim or setting.
    """
    began = time.perf_counter()
    if not 0.0 <= temporal < 1.0:
        raise UserError(f"temporal blend must be from 0 to below 1, got {temporal}")
    if not 0.0 <= denoise < 1.0:
        raise UserError(f"temporal denoise must be from 0 to below 1, got {denoise}")
    if dst.exists() and not overwrite:
        raise UserError(f"{dst} already exists; pass --overwrite to replace it")
    if dst.resolve() == src.resolve():
        raise UserError(f"{dst}: the output cannot be the clip being read")
    kind = output_kind(dst)
    settings = settings or Settings()
    if max_size is None:
        max_size = settings.max_size
    settings = replace(settings, max_size=None)  # frames are shrunk once, when decoded
    clip = open_clip(
        src, start=start, end=end, max_size=max_size, even=kind not in ("gif", "folder")
    )
    info = clip.info
    blend = TemporalBlend(temporal, flow, denoise) if temporal > 0 or denoise > 0 else None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=info.frames, unit="frame", file=sys.stderr, desc=src.name, leave=False)
    try:
        with write_clip(dst, info, audio=audio) as writer:
            for frame in clip.frames():
                writer.write(restyle_frame(restyler, frame, settings, blend))
                if bar is not None:
                    bar.update()
    finally:
        if bar is not None:
            bar.close()
    return VideoSummary(
        output=dst,
        frames=writer.frames,
        seconds=time.perf_counter() - began,
        width=info.width,
        height=info.height,
        fps=info.fps,
        audio_kept=writer.audio_kept,
        temporal=temporal if blend is not None else 0.0,
    )
