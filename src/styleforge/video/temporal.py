"""Temporal consistency of restyled video: the flow-guided blend applied while restyling, and
the warping error that measures flicker.

Frames are RGB ``uint8`` (H, W, 3) numpy arrays. The flow always comes from the *input* frames
(the photo's motion), never from the restyled ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from styleforge.video.flow import FlowEstimator, FlowSettings, to_grey, warp

__all__ = [
    "DEFAULT_DENOISE",
    "DEFAULT_TEMPORAL",
    "METRIC_FLOW",
    "TemporalBlend",
    "WarpingError",
    "warping_error",
]

#: Default weight of the warped previous output (see :class:`TemporalBlend`; bench/video.py).
DEFAULT_TEMPORAL = 0.5
#: Default weight of the warped previous *input* in the input denoise (see
#: :meth:`TemporalBlend.prepare`; bench/video.py's noisy clip).
DEFAULT_DENOISE = 0.6
#: Input change (levels of 255, local mean over 5×5 px, per channel) at which the input
#: denoise stops trusting the previous frame: sensor noise of σ 2–4 averages out far below it,
#: a real change (a moving edge the flow missed, a light switched on) does not.
DENOISE_CHANGE = 6.0
_SUM_RGB = np.full((1, 3), 1 / DENOISE_CHANGE**2, np.float32)  # Σ_c x_c / c², for cv2.transform
#: Flow the warping error is measured with: full size, DIS ``medium`` (more accurate than the
#: blend's quick flow, so the blend is not judged by its own flow).
METRIC_FLOW = FlowSettings(preset="medium", max_side=None)


@dataclass(frozen=True)
class BlendStats:
    """What the blend did: frames blended and the mean share of pixels that took the warped
    previous output (non-occluded)."""

    frames: int
    mean_coverage: float


class TemporalBlend:
    """Flow-guided temporal filtering of a restyled clip, in two places along the motion.

    Before the network (:meth:`prepare`), the input is denoised: with ``f`` the flow from input
    frame t to t−1 and ``m`` (0..1) its forward-backward mask,

    ``in'_t = x_t + β · m · g · (warp(in'_{t−1}) − x_t)``,   ``g = exp(−‖d / c‖²)``

    where ``d`` (H, W, 3) is the local mean (5×5 px) of the signed change
    ``warp(in'_{t−1}) − x_t`` in each channel and ``c`` :data:`DENOISE_CHANGE`: fresh sensor
    noise averages out of ``d`` and is filtered away, a real change keeps the new frame.
    Without it the network turns each frame's fresh noise into fresh strokes that no output
    blend can hold still.

    After the network (:meth:`__call__`), each restyled frame is blended with the previous
    output, warped:

    ``out_t = m · (α · warp(out_{t−1}) + (1 − α) · styled_t) + (1 − m) · styled_t``.

    Occluded and newly visible pixels take the new frame as is. Because ``out_{t−1}`` (and
    ``in'_{t−1}``) is itself filtered, a pixel's colour is an exponential average along its
    motion path (about 1/(1−α) frames): flicker falls, the style stays. ``alpha`` 0 turns the
    output blend off, ``denoise`` 0 the input one. Feed frames in order: :meth:`prepare` (its
    result is what to restyle), then :meth:`__call__`; calling only :meth:`__call__` blends the
    outputs alone.
    """

    def __init__(
        self,
        alpha: float = DEFAULT_TEMPORAL,
        flow: FlowSettings | None = None,
        denoise: float = DEFAULT_DENOISE,
    ) -> None:
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"temporal blend must be from 0 to below 1, got {alpha}")
        if not 0.0 <= denoise < 1.0:
            raise ValueError(f"temporal denoise must be from 0 to below 1, got {denoise}")
        self.alpha = float(alpha)
        self.denoise = float(denoise)
        self.estimator = FlowEstimator(flow)
        self._prev_grey: np.ndarray | None = None
        self._prev_out: np.ndarray | None = None
        self._prev_in: np.ndarray | None = None
        self._motion: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._frames = 0
        self._coverage = 0.0

    def reset(self) -> None:
        """Forget the previous frame (a cut: the next frame is taken as restyled)."""
        self._prev_grey = self._prev_out = self._prev_in = self._motion = None

    @property
    def stats(self) -> BlendStats:
        """Frames blended so far and the mean non-occluded share."""
        mean = self._coverage / self._frames if self._frames else 0.0
        return BlendStats(self._frames, mean)

    def _flow(self, frame: np.ndarray, grey: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(flow t→t−1 (H, W, 2), mask (H, W)) for input ``frame``, estimated once per frame;
        ``None`` for the first frame."""
        if self._prev_grey is None:
            return None
        if self._motion is not None and self._motion[0] is frame:
            return self._motion[2], self._motion[3]
        flow, mask = self.estimator.flow_and_mask(grey, self._prev_grey)
        self._motion = (frame, grey, flow, mask)
        return flow, mask

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        """Input ``frame`` (RGB uint8 (H, W, 3)) denoised along the motion: what to restyle,
        RGB uint8 (H, W, 3). The frame itself when ``denoise`` is 0 or it is the first."""
        if self.denoise == 0:
            return frame
        current: np.ndarray = frame.astype(np.float32)
        motion = self._flow(frame, to_grey(frame))
        if motion is not None and self._prev_in is not None:
            flow, mask = motion
            warped = warp(self._prev_in, flow)
            local = cv2.blur(cv2.subtract(warped, current), (5, 5))  # OpenCV: 2-5× numpy's
            energy = cv2.transform(cv2.multiply(local, local), _SUM_RGB)  # ‖d / c‖² (H, W)
            weight = np.float32(self.denoise) * mask * cv2.exp(-energy)
            current = cv2.blendLinear(warped, current, weight, 1 - weight)
        self._prev_in = current  # kept unrounded: no drift from rounding
        return cv2.convertScaleAbs(current)  # rounded, in 0..255 (a convex mix of frames)

    def __call__(self, frame: np.ndarray, styled: np.ndarray) -> np.ndarray:
        """The output for input ``frame`` (RGB uint8 (H, W, 3), the one given to
        :meth:`prepare`, not its result) restyled as ``styled`` (RGB uint8, same size): RGB
        uint8 (H, W, 3)."""
        if styled.shape != frame.shape:
            raise ValueError(f"restyled frame {styled.shape} and input {frame.shape} differ")
        motion = self._motion
        grey = motion[1] if motion is not None and motion[0] is frame else to_grey(frame)
        mixed: np.ndarray = styled.astype(np.float32)
        if self.alpha > 0 and self._prev_out is not None:
            flow_mask = self._flow(frame, grey)
            if flow_mask is not None:
                flow, mask = flow_mask
                weight = np.float32(self.alpha) * mask
                mixed = cv2.blendLinear(warp(self._prev_out, flow), mixed, weight, 1 - weight)
                self._frames += 1
                self._coverage += float(mask.mean())
        self._prev_grey, self._prev_out, self._motion = grey, mixed, None
        return cv2.convertScaleAbs(mixed)  # rounded, in 0..255 (a convex mix of frames)


class WarpingError:
    """The warping error of Lai et al. (ECCV 2018), accumulated frame by frame:

    ``E = 1/(T−1) Σ_t  Σ_x M_t(x) ‖O_t(x) − Ô_{t−1}(x)‖²  /  Σ_x M_t(x)``

    with pixels in [0, 1], ‖·‖² the squared L2 norm over RGB (so a difference of 0.1 in every
    channel counts 0.03), ``Ô_{t−1}`` the output t−1 warped to t by the flow of the *input*
    frames t → t−1 (:data:`METRIC_FLOW`), and ``M_t`` the non-occluded pixels (forward-backward
    check). 0: the output moves exactly with the input; per-frame noise of σ per channel adds
    about 6σ².
    """

    def __init__(self, flow: FlowSettings = METRIC_FLOW) -> None:
        self.estimator = FlowEstimator(flow)
        self._prev: tuple[np.ndarray, np.ndarray] | None = None
        self.total = 0.0
        self.pairs = 0

    def update(self, frame: np.ndarray, output: np.ndarray) -> float | None:
        """Add input ``frame`` and its ``output`` (RGB uint8 (H, W, 3), same size); returns
        this pair's error (``None`` for the first frame or a frame fully occluded)."""
        if frame.shape[:2] != output.shape[:2]:
            raise ValueError(f"output {output.shape} and input {frame.shape} differ in size")
        grey = to_grey(frame)
        cur = output.astype(np.float32) / np.float32(255.0)
        err = None
        if self._prev is not None:
            prev_grey, prev_out = self._prev
            flow, mask = self.estimator.flow_and_mask(grey, prev_grey)
            valid = mask >= 0.5
            if valid.any():
                diff = cur - warp(prev_out, flow)
                err = float(np.sum(diff * diff, axis=2)[valid].mean())
                self.total += err
                self.pairs += 1
        self._prev = (grey, cur)
        return err

    @property
    def value(self) -> float:
        """The mean over the pairs so far (NaN before two frames)."""
        return self.total / self.pairs if self.pairs else math.nan


def warping_error(
    frames: Iterable[np.ndarray], outputs: Iterable[np.ndarray], flow: FlowSettings = METRIC_FLOW
) -> float:
    """:class:`WarpingError` of a whole clip: input ``frames`` and their ``outputs``, in order
    (RGB uint8 (H, W, 3) each, pairwise the same size)."""
    metric = WarpingError(flow)
    for frame, output in zip(frames, outputs, strict=True):
        metric.update(frame, output)
    return metric.value
