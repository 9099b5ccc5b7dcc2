"""Reading clips: a video file (.mp4, .mov, .webm, .mkv, .gif, ...) through PyAV, or a folder of
frame images, as RGB ``uint8`` numpy frames of shape (H, W, 3).

Torch-free. Every failure to read is a :class:`~styleforge.errors.UserError` of one line that
names the file (``clip.mp4: not a readable video (Invalid data found ...)``); no PyAV exception
escapes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from styleforge import images
from styleforge.collection import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from styleforge.errors import ImageError, UserError

__all__ = [
    "FOLDER_FPS",
    "VIDEO_SUFFIXES",
    "Clip",
    "ClipInfo",
    "even_size",
    "open_clip",
]

#: Frame rate of a folder of frame images, unless the caller gives one.
FOLDER_FPS = Fraction(25)
#: Frame rate assumed for a stream that declares none.
FALLBACK_FPS = Fraction(25)

#: Seconds of tolerance when comparing a frame's time with a trim.
_EPS = 1e-4
#: Exceptions that mean "this file cannot be decoded" (PyAV's errors are FFmpegError; decoders
#: and container parsers also raise these builtins).
_AV_ERRORS = (av.FFmpegError, OSError, ValueError, EOFError, IndexError, KeyError)


@dataclass(frozen=True)
class ClipInfo:
    """What a clip gives, after trimming and downscaling.

    Args:
        path: the file or folder read.
        width, height: the size of the frames it yields (even sides when ``even``).
        rate: frames per second (the stream's average rate; constant-rate output keeps it).
        frames: frames expected between ``start`` and ``end`` (``None``: unknown, e.g. some webm).
        duration: seconds between ``start`` and ``end`` (``None``: unknown).
        start, end: the trim asked for, in seconds from the start of the clip.
        audio: codec name of the first audio stream (``None``: no audio).
        source_size: (width, height) stored in the file.
        turns: quarter turns counter-clockwise that make the stored frames upright (the
            stream's display rotation, as phones record portrait video); frames are yielded
            upright and ``width``/``height`` are the upright size.
    """

    path: Path
    width: int
    height: int
    rate: Fraction
    frames: int | None
    duration: float | None
    start: float = 0.0
    end: float | None = None
    audio: str | None = None
    source_size: tuple[int, int] = (0, 0)
    turns: int = 0

    @property
    def fps(self) -> float:
        """Frames per second as a float."""
        return float(self.rate)

    @property
    def is_folder(self) -> bool:
        """Whether the clip is a folder of frame images."""
        return self.path.is_dir()


def even_size(width: int, height: int, max_size: int | None, even: bool = True) -> tuple[int, int]:
    """(width, height) of the frames read from a ``width``×``height`` source: the long side
    shrunk to ``max_size`` (never enlarged, aspect kept), then each side rounded down to an
    even number when ``even`` (yuv420 needs even sides), at least 2 px."""
    w, h = width, height
    if max_size is not None and max(w, h) > max_size:
        h, w = images.scaled_size(h, w, max_size)
    if even:
        w, h = max(2, w - w % 2), max(2, h - h % 2)
    return w, h


def _check_trim(start: float | None, end: float | None) -> tuple[float, float | None]:
    begin = 0.0 if start is None else float(start)
    if not math.isfinite(begin) or begin < 0:
        raise UserError(f"start must be a time of 0 s or more, got {start}")
    if end is not None and (not math.isfinite(end) or end <= begin):
        raise UserError(f"end ({end} s) must come after start ({begin:g} s)")
    return begin, end


def _frame_index(seconds: float, rate: Fraction) -> int:
    """The first frame whose time (index / rate) is at or after ``seconds``."""
    return max(0, math.ceil(seconds * float(rate) - _EPS))


def _span(total: float | None, start: float, end: float | None) -> float | None:
    """Seconds between ``start`` and ``end`` of a clip ``total`` seconds long."""
    if total is None:
        return None if end is None else end - start
    stop = total if end is None else min(end, total)
    return max(0.0, stop - start)


def _natural_key(path: Path) -> list[int | str]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name.lower())]


class Clip:
    """A clip ready to read: :attr:`info` describes it and :meth:`frames` decodes it (each call
    starts again from ``start``). Build one with :func:`open_clip`."""

    def __init__(self, info: ClipInfo) -> None:
        self.info = info

    def frames(self) -> Iterator[np.ndarray]:
        """The frames from ``start`` to ``end``: RGB ``uint8`` arrays (H, W, 3), C-contiguous,
        of :attr:`info`'s size. A decoding error partway is a one-line UserError."""
        if self.info.is_folder:
            yield from self._folder_frames()
        else:
            yield from self._video_frames()

    # ------------------------------------------------------------------ folders of frames

    def _folder_frames(self) -> Iterator[np.ndarray]:
        info = self.info
        first = _frame_index(info.start, info.rate)
        last = None if info.end is None else _frame_index(info.end, info.rate)
        for path in folder_frames(info.path)[first:last]:
            try:
                img = images.open_image(path)
            except ImageError as exc:
                raise UserError(str(exc)) from exc
            if img.size != (info.width, info.height):
                img = _fit(img, info.width, info.height)
            yield np.ascontiguousarray(np.asarray(img, dtype=np.uint8))

    # ------------------------------------------------------------------ video files

    def _video_frames(self) -> Iterator[np.ndarray]:
        info = self.info
        path = info.path
        try:
            container = av.open(str(path))
        except _AV_ERRORS as exc:
            raise UserError(f"{path}: not a readable video ({error_reason(exc)})") from exc
        count = 0
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            origin = _stream_origin(stream)
            if info.start > 0:
                _seek(container, stream, origin + info.start)
            for frame in container.decode(stream):
                t = _frame_time(frame, origin, count, info.rate)
                if t < info.start - _EPS:
                    continue
                if info.end is not None and t >= info.end - _EPS:
                    break
                count += 1
                yield self._to_array(frame)
        except _AV_ERRORS as exc:
            raise UserError(
                f"{path}: video cannot be decoded after {count} frame(s) ({error_reason(exc)})"
            ) from exc
        finally:
            container.close()

    def _to_array(self, frame: av.VideoFrame) -> np.ndarray:
        """RGB (H, W, 3) of :attr:`info`'s size, upright: shrunk with swscale's area filter,
        or only its odd last row/column cropped, then turned."""
        turns = self.info.turns
        width, height = self.info.width, self.info.height
        if turns % 2:  # the stored frame is on its side
            width, height = height, width
        w, h = frame.width, frame.height
        arr: np.ndarray
        if not (width <= w < width + 2 and height <= h < height + 2):
            arr = frame.reformat(width, height, "rgb24", interpolation="AREA").to_ndarray()
        else:
            arr = frame.to_ndarray(format="rgb24")[:height, :width]
        if turns:
            arr = np.rot90(arr, turns)
        return np.ascontiguousarray(arr)


def folder_frames(folder: Path) -> list[Path]:
    """The frame images directly inside ``folder`` (not below it), judged by suffix, in natural
    order (``frame_2`` before ``frame_10``); hidden files are ignored."""
    try:
        files = [
            p for p in folder.iterdir()
            if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
        ]  # fmt: skip
    except OSError as exc:
        raise UserError(f"{folder}: cannot read folder ({exc.strerror or exc})") from exc
    return sorted(files, key=_natural_key)


def _fit(img: Image.Image, width: int, height: int) -> Image.Image:
    """``img`` at ``width``×``height``: its odd last row/column cropped when that is all the
    difference, else resized (Lanczos)."""
    if width <= img.width < width + 2 and height <= img.height < height + 2:
        return img.crop((0, 0, width, height))
    return img.resize((width, height), Image.Resampling.LANCZOS)


def error_reason(exc: BaseException) -> str:
    """An exception as a short reason: PyAV's message without the file name it appends."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).splitlines()[0].rstrip(":. ")


def _stream_origin(stream: av.video.stream.VideoStream) -> float:
    """Seconds of the stream's first timestamp (clip times count from it)."""
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    return float(stream.start_time * stream.time_base)


def _frame_time(frame: av.VideoFrame, origin: float, index: int, rate: Fraction) -> float:
    """Seconds of ``frame`` from the start of the clip (its index / rate when it has no
    timestamp)."""
    t = frame.time
    return index / float(rate) if t is None else float(t) - origin


def _seek(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
          seconds: float) -> None:  # fmt: skip
    """Seek to the keyframe at or before ``seconds`` (frames before ``start`` are then decoded
    and dropped); a stream that cannot seek is decoded from its start."""
    if stream.time_base is None:
        return
    try:
        container.seek(int(seconds / stream.time_base), stream=stream, backward=True)
    except _AV_ERRORS:
        container.seek(0)


def _video_info(path: Path, start: float, end: float | None, max_size: int | None,
                even: bool) -> ClipInfo:  # fmt: skip
    try:
        container = av.open(str(path))
    except _AV_ERRORS as exc:
        raise UserError(f"{path}: not a readable video ({error_reason(exc)})") from exc
    try:
        if not container.streams.video:
            raise UserError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            raise UserError(f"{path}: not a readable video (no frame size)")
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate or FALLBACK_FPS
        rate = Fraction(rate).limit_denominator(1001 * 1000)
        total = None
        if stream.duration is not None and stream.time_base is not None:
            total = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            total = container.duration / av.time_base
        if total is not None and start >= total:
            raise UserError(
                f"{path}: start {start:g} s is past the end of the clip ({total:.2f} s)"
            )
        span = _span(total, start, end)
        if stream.frames and start == 0 and (end is None or (total is not None and end >= total)):
            frames: int | None = int(stream.frames)
        elif span is None:
            frames = None
        else:
            frames = _frame_index(start + span, rate) - _frame_index(start, rate)
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        first = next(iter(container.decode(stream)), None)  # decodes at all; its rotation
        if first is None:
            raise UserError(f"{path}: not a readable video (no frame decodes)")
        turns = round((first.rotation or 0) / 90) % 4
    except _AV_ERRORS as exc:
        raise UserError(f"{path}: not a readable video ({error_reason(exc)})") from exc
    finally:
        container.close()
    upright = (height, width) if turns % 2 else (width, height)
    w, h = even_size(*upright, max_size, even)
    return ClipInfo(path, w, h, rate, frames, span, start, end, audio, (width, height), turns)


def _folder_info(path: Path, start: float, end: float | None, max_size: int | None,
                 even: bool, fps: Fraction) -> ClipInfo:  # fmt: skip
    files = folder_frames(path)
    if not files:
        raise UserError(f"{path}: no frame images in this folder")
    try:
        first = images.open_image(files[0])
    except ImageError as exc:
        raise UserError(str(exc)) from exc
    width, height = first.size
    total = len(files) / float(fps)
    if start >= total:
        raise UserError(f"{path}: start {start:g} s is past the end of the clip ({total:.2f} s)")
    first_i = _frame_index(start, fps)
    last_i = len(files) if end is None else min(len(files), _frame_index(end, fps))
    span = (last_i - first_i) / float(fps)
    w, h = even_size(width, height, max_size, even)
    return ClipInfo(path, w, h, fps, last_i - first_i, span, start, end, None, (width, height))


def open_clip(
    path: Path,
    *,
    start: float | None = None,
    end: float | None = None,
    max_size: int | None = None,
    even: bool = True,
    fps: float | Fraction | None = None,
) -> Clip:
    """Open a clip to read: a video file PyAV reads, or a folder of frame images.

    Args:
        path: the video file, or a folder whose image files (natural order) are the frames.
        start, end: seconds from the clip's start; frames whose time is in [start, end) are read
            (to the nearest frame).
        max_size: shrink so the long side is at most this (swscale's area filter; never
            enlarged).
        even: make both sides even, as yuv420 video needs (an odd source loses its last row or
            column; a shrunk one is scaled to even sides).
        fps: the frame rate of a folder (default :data:`FOLDER_FPS`); ignored for a video file.

    Raises:
        UserError: missing path, not a video, no video stream, bad trim, empty folder.
    """
    begin, stop = _check_trim(start, end)
    if max_size is not None and max_size < 16:
        raise UserError(f"max size must be at least 16 px, got {max_size}")
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_dir():
        rate = FOLDER_FPS if fps is None else Fraction(fps).limit_denominator(1001 * 1000)
        if rate <= 0:
            raise UserError(f"frame rate must be positive, got {fps}")
        info = _folder_info(path, begin, stop, max_size, even, rate)
    else:
        try:
            empty = path.stat().st_size == 0
        except OSError as exc:
            raise UserError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
        if empty:
            raise UserError(f"{path}: empty file, not a video")
        info = _video_info(path, begin, stop, max_size, even)
    return Clip(info)
