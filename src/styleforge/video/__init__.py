"""Restyling video without flicker: clips in and out (PyAV), optical flow (OpenCV's DIS), a
flow-guided temporal blend and the warping-error metric of Lai et al. (ECCV 2018).

Layer: above ``infer``, beside ``metrics`` (neither imports the other); may import ``infer``
(the restyle service's settings), ``collection``, ``images``, ``fileio`` and ``errors``.
``train`` (the stability term) and the front ends build on it.

Torch-free: frames are RGB ``uint8`` numpy arrays (H, W, 3).

    from styleforge import Restyler
    from styleforge.video import restyle_video

    summary = restyle_video(Restyler.open(Path("m.onnx")), Path("clip.mp4"), Path("out.mp4"))
    print(summary.line())
"""

from __future__ import annotations

from styleforge.video.encode import VIDEO_OUTPUTS, output_kind, write_clip
from styleforge.video.flow import FlowEstimator, FlowSettings, consistency_mask, warp
from styleforge.video.io import VIDEO_SUFFIXES, Clip, ClipInfo, open_clip
from styleforge.video.restyle import VideoSummary, restyle_frame, restyle_video
from styleforge.video.temporal import (
    DEFAULT_DENOISE,
    DEFAULT_TEMPORAL,
    TemporalBlend,
    WarpingError,
    warping_error,
)

__all__ = [
    "DEFAULT_DENOISE",
    "DEFAULT_TEMPORAL",
    "VIDEO_OUTPUTS",
    "VIDEO_SUFFIXES",
    "Clip",
    "ClipInfo",
    "FlowEstimator",
    "FlowSettings",
    "TemporalBlend",
    "VideoSummary",
    "WarpingError",
    "consistency_mask",
    "open_clip",
    "output_kind",
    "restyle_frame",
    "restyle_video",
    "warp",
    "warping_error",
    "write_clip",
]
