"""Writing clips: RGB ``uint8`` frames (H, W, 3) to a video file, a GIF or a folder of PNGs,
with the source clip's audio carried over.

The container follows the output's suffix: ``.mp4``/``.mov``/``.m4v`` get H.264 (libx264,
yuv420p; MPEG-4 part 2 where a PyAV wheel lacks libx264), ``.webm`` VP9 (else VP8), ``.mkv``
H.264; ``.gif`` is written by PIL (one adaptive palette per frame, delays in 1/100 s, so 15 fps
becomes 70 ms a frame; identical neighbouring frames are merged); a name without a suffix is a
folder of ``frame_000000.png`` ... . Video is constant-rate at the source's average rate,
BT.709 limited range and tagged so (frames are read with the matrix their file names, so colours
survive a round trip within 2 levels of 255).

Audio (video containers only): the source's first audio stream is remuxed when the output
container takes its codec (AAC into .mp4, Opus into .webm, ...), else transcoded (AAC; Opus for
.webm). With a trim, audio packets (remux) or decoded frames (transcode) whose start lies in
[start, end) are kept, so the cut is exact to one audio packet (about 20–40 ms).

Every output is made under a hidden temporary name in the destination folder and renamed at the
end (:func:`styleforge.fileio.atomic_write`): an interrupted or failed run leaves nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from styleforge.errors import UserError
from styleforge.fileio import NO_SPACE, UMASK, atomic_write, disk_full_names
from styleforge.video.io import ClipInfo, error_reason

__all__ = ["VIDEO_OUTPUTS", "ClipWriter", "output_kind", "write_clip"]

#: Output suffix -> PyAV container format.
VIDEO_OUTPUTS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
#: Video encoders to try, in order, per container format.
_VIDEO_CODECS = {
    "mp4": ("libx264", "mpeg4"),
    "mov": ("libx264", "mpeg4"),
    "matroska": ("libx264", "libvpx-vp9", "mpeg4"),
    "webm": ("libvpx-vp9", "libvpx"),
}
#: Encoder options: visually lossless-ish quality at a sensible speed.
#: x264's look-ahead is 10 frames, not medium's 40: with 40 the first frames cost nothing to
#: encode (they wait in the look-ahead), so the progress bar promised a 1080p clip in 0.70× the
#: time it took; with 10 its ETA at a tenth of the frames is right within 1 % and the file is
#: the same size (bench/README.md, issue #46).
_CODEC_OPTIONS = {
    "libx264": {"crf": "18", "preset": "medium", "rc-lookahead": "10"},
    "libvpx-vp9": {"crf": "30", "b": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"},
    "libvpx": {"crf": "8", "b": "4M", "deadline": "good", "cpu-used": "4"},
    "mpeg4": {},  # a bit rate instead: see ClipWriter._start
}
#: Audio codecs each container takes as they are (remuxed); others are transcoded.
_AUDIO_REMUX = {
    "mp4": {"aac", "mp3", "alac", "opus", "ac3", "eac3", "flac"},
    "mov": {"aac", "mp3", "alac", "ac3", "pcm_s16le", "pcm_s24le", "pcm_f32le"},
    "matroska": {"aac", "mp3", "opus", "vorbis", "flac", "ac3", "eac3", "alac", "pcm_s16le"},
    "webm": {"opus", "vorbis"},
}
#: Audio encoder for a transcode, per container.
_AUDIO_ENCODER = {"mp4": "aac", "mov": "aac", "matroska": "aac", "webm": "libopus"}
#: FFmpeg's codes for the BT.709 matrix, primaries and transfer, and for limited ("MPEG") range.
_BT709, _LIMITED = 1, 1
#: Names of the frames in a folder output.
_FRAME_NAME = re.compile(r"frame_\d+\.png")
#: Seconds of audio muxed ahead of the video (keeps the two interleaved).
_AUDIO_LEAD = 0.5


def output_kind(dst: Path) -> str:
    """``"folder"``, ``"gif"`` or the PyAV container format of ``dst`` (by suffix).

    Raises:
        UserError: a suffix that is not a video format written here.
    """
    suffix = dst.suffix.lower()
    if not suffix or dst.is_dir():
        return "folder"
    if suffix == ".gif":
        return "gif"
    if suffix in VIDEO_OUTPUTS:
        return VIDEO_OUTPUTS[suffix]
    known = ", ".join([*VIDEO_OUTPUTS, ".gif"])
    raise UserError(f"{dst}: unknown video format '{suffix}'; use {known} or a folder name")


def _encoder(fmt: str) -> str:
    for name in _VIDEO_CODECS[fmt]:
        try:
            av.codec.Codec(name, "w")
        except av.FFmpegError:
            continue
        return name
    raise UserError(
        f"this PyAV build has no video encoder for {fmt} ({', '.join(_VIDEO_CODECS[fmt])})"
    )


class _AudioCopy:
    """The source's first audio stream, into an output container: remuxed or transcoded, trimmed
    to [start, end) and shifted to begin at 0."""

    def __init__(self, info: ClipInfo, out: av.container.OutputContainer, fmt: str) -> None:
        self.source = av.open(str(info.path))
        self.input = self.source.streams.audio[0]
        self.start, self.end = info.start, info.end
        tb = self.input.time_base or Fraction(1, self.input.rate or 1)
        self.time_base = tb
        origin = self.input.start_time
        self.origin = 0 if origin is None else int(origin)
        self.remux = self.input.codec_context.name in _AUDIO_REMUX[fmt]
        self.output: Any
        if self.remux:
            self.output = out.add_stream_from_template(self.input)
        else:
            codec = _AUDIO_ENCODER[fmt]
            rate = 48000 if codec == "libopus" else (self.input.rate or 48000)
            self.output = out.add_stream(codec, rate=rate)
            layout = self.input.codec_context.layout
            mono = layout is not None and layout.nb_channels == 1
            self.output.layout = "mono" if mono else "stereo"
        self._packets = self.source.demux(self.input)
        self._done = False
        self.muxed = 0

    def _seconds(self, pts: int | None) -> float | None:
        return None if pts is None else float((pts - self.origin) * self.time_base)

    def mux_until(self, out: av.container.OutputContainer, until: float | None) -> None:
        """Mux the audio of clip times before ``until`` s (``None``: all that is left)."""
        if self._done:
            return
        if self.start > 0 and not getattr(self, "_sought", False):
            self._sought = True
            with contextlib.suppress(*_SEEK_ERRORS):
                self.source.seek(
                    self.origin + int((self.start - 1.0) / self.time_base) if self.start > 1 else 0,
                    stream=self.input, backward=True,
                )  # fmt: skip
                self._packets = self.source.demux(self.input)
        for packet in self._packets:
            t = self._seconds(packet.pts)
            if packet.size == 0 or t is None:  # the demuxer's final empty packet
                continue
            if self.start > 0 and t < self.start - 1e-6:
                continue
            if self.end is not None and t >= self.end - 1e-6:
                break
            self._write(out, packet)
            if until is not None and t - self.start >= until:
                return
        else:  # the source's end: the decoder's last frames too
            if not self.remux:
                for frame in self.input.codec_context.decode(None):
                    frame.pts = None
                    out.mux(self.output.encode(frame))
        self._done = True
        if not self.remux:
            out.mux(self.output.encode(None))

    def _write(self, out: av.container.OutputContainer, packet: av.Packet) -> None:
        if self.remux:
            shift = self.origin + round(self.start / self.time_base)
            packet.pts = packet.pts - shift if packet.pts is not None else None
            packet.dts = packet.dts - shift if packet.dts is not None else None
            packet.stream = self.output
            out.mux(packet)
        else:
            for frame in packet.decode():
                frame.pts = None  # the encoder counts samples from 0
                out.mux(self.output.encode(frame))
        self.muxed += 1

    def close(self) -> None:
        self.source.close()


_SEEK_ERRORS = (av.FFmpegError, OSError, ValueError)


class ClipWriter:
    """Frames in, one output out. Use through :func:`write_clip`, which makes it atomic.

    ``write(frame)`` takes RGB ``uint8`` (H, W, 3) frames, all of the first frame's size."""

    def __init__(self, tmp: Path, kind: str, info: ClipInfo, audio: bool) -> None:
        self.tmp, self.kind, self.info = tmp, kind, info
        self.rate = info.rate
        self.frames = 0
        self.size: tuple[int, int] | None = None
        self.want_audio = audio and info.audio is not None and kind not in ("gif", "folder")
        self._container: av.container.OutputContainer | None = None
        self._video: Any = None
        self._audio: _AudioCopy | None = None
        self._gif: list[Image.Image] = []

    @property
    def audio_kept(self) -> bool:
        """Whether the output has the source's audio."""
        return self._audio is not None and self._audio.muxed > 0

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 (H, W, 3) frame."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(
                f"expected an RGB uint8 (H, W, 3) frame, got {frame.dtype} {frame.shape}"
            )
        h, w = frame.shape[:2]
        if self.size is None:
            self.size = (w, h)
            self._start()
        elif self.size != (w, h):
            raise ValueError(
                f"frame {self.frames} is {w}x{h}, the clip is {self.size[0]}x{self.size[1]}"
            )
        if self.kind == "folder":
            Image.fromarray(frame).save(self.tmp / f"frame_{self.frames:06d}.png", compress_level=3)
        elif self.kind == "gif":
            self._gif.append(Image.fromarray(frame).convert("P", palette=Image.Palette.ADAPTIVE))
        else:
            assert self._container is not None
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            # BT.709, limited range, and tagged so: what players assume for untagged HD video
            vf = vf.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
            vf.colorspace, vf.color_range = _BT709, _LIMITED
            vf.pts = self.frames
            self._container.mux(self._video.encode(vf))
            if self._audio is not None:
                self._audio.mux_until(
                    self._container, (self.frames + 1) / float(self.rate) + _AUDIO_LEAD
                )
        self.frames += 1

    def _start(self) -> None:
        if self.kind in ("gif", "folder"):
            return
        assert self.size is not None
        w, h = self.size
        codec = _encoder(self.kind)
        if w % 2 or h % 2:
            raise ValueError(
                f"{w}x{h}: yuv420 video needs even sides (open the clip with even=True)"
            )
        options = {"movflags": "+faststart"} if self.kind in ("mp4", "mov") else {}
        self._container = av.open(str(self.tmp), "w", format=self.kind, options=options)
        stream: Any = self._container.add_stream(
            codec, rate=self.rate, options=_CODEC_OPTIONS[codec]
        )
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        ctx = stream.codec_context
        ctx.colorspace = ctx.color_primaries = ctx.color_trc = _BT709
        ctx.color_range = _LIMITED
        if codec == "mpeg4":  # about 0.3 bit a pixel: no visible blocks at any rate
            stream.bit_rate = int(w * h * float(self.rate) * 0.3)
        stream.time_base = Fraction(1, 1) / self.rate
        self._video = stream
        if self.want_audio:
            self._audio = _AudioCopy(self.info, self._container, self.kind)

    def close(self) -> None:
        """Flush the encoders and finish the file (the GIF is written here)."""
        if self.frames == 0:
            raise UserError(f"{self.info.path}: no frames between the start and end asked for")
        if self.kind == "gif":
            duration = max(10, round(1000 / float(self.rate)))
            first, *rest = self._gif
            first.save(self.tmp, format="GIF", save_all=True, append_images=rest,
                       duration=duration, loop=0)  # fmt: skip
            self._gif = []
            return
        if self._container is None:
            return
        self._container.mux(self._video.encode(None))
        if self._audio is not None:
            self._audio.mux_until(self._container, None)
            self._audio.close()
        self._container.close()
        self._container = None

    def abort(self) -> None:
        """Drop everything (the temporary output is removed by :func:`write_clip`)."""
        self._gif = []
        if self._audio is not None:
            with contextlib.suppress(Exception):
                self._audio.close()
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
            self._container = None


def _check_replaceable(target: Path) -> None:
    """Refuse to replace a folder that holds anything but frames written here before."""
    if not target.is_dir() or target.is_symlink():
        return
    others = [p.name for p in target.iterdir() if not _FRAME_NAME.fullmatch(p.name)]
    if others:
        raise UserError(
            f"{target}: a folder with other files in it ({others[0]}"
            f"{', ...' if len(others) > 1 else ''}); give a new folder for the frames"
        )


@contextlib.contextmanager
def _atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a hidden temporary folder beside ``target``; on success it replaces ``target`` (a
    file, or a folder of frames written before, is removed), on any error it is removed."""
    _check_replaceable(target)
    with disk_full_names(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        with disk_full_names(target):
            yield tmp
            os.chmod(tmp, 0o777 & ~UMASK)
            old = None
            if target.exists() or target.is_symlink():
                old = tmp.with_name(tmp.name + ".old")
                os.replace(target, old)
            os.replace(tmp, target)
            if old is not None:
                shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _write_errors(dst: Path) -> Iterator[None]:
    """PyAV's errors while writing as a one-line UserError (a full disk stays an OSError, for
    :func:`~styleforge.fileio.disk_full_names`)."""
    try:
        yield
    except av.FFmpegError as exc:
        if isinstance(exc, OSError) and exc.errno in NO_SPACE:
            raise
        raise UserError(f"{dst}: cannot be written ({error_reason(exc)})") from exc


@contextlib.contextmanager
def write_clip(dst: Path, info: ClipInfo, *, audio: bool = True) -> Iterator[ClipWriter]:
    """Write a clip to ``dst`` atomically: yields a :class:`ClipWriter`; when the block ends
    normally the output is finished and renamed to ``dst``, when it raises (or is interrupted)
    nothing is left behind.

    ``info``: the source clip (rate, trim, path for its audio). ``audio``: carry the source's
    audio over (video containers only; see :attr:`ClipWriter.audio_kept`).
    """
    kind = output_kind(dst)
    if kind == "folder":
        with _atomic_folder(dst) as tmp_dir:
            writer = ClipWriter(tmp_dir, kind, info, audio)
            yield writer
            writer.close()
        return
    with atomic_write(dst, dst.suffix) as tmp:
        writer = ClipWriter(tmp, kind, info, audio)
        try:
            with _write_errors(dst):
                yield writer
                writer.close()
        except BaseException:
            writer.abort()
            raise
