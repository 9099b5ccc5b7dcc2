"""A sampler's paint stage: the painter transformer with the low frequencies of its input.

(N,3,H,W) in [0,1] (a small frame scaled up bicubically ``scale``×) -> (N,3,H,W) in [0,1].
The painter (:class:`~styleforge.nets.PainterNet`) paints the picture; then the painted
picture's own low band (its ``scale``× area average, scaled back up) is swapped for the
input's, so only the strokes, paper and edges (what a small frame does not have) come from
the painter, and the layout, tone and palette stay those of the frame it was given: a
flat-colour frame stays that colour, whatever the painter learned.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from styleforge.nets.painter import PainterConfig, PainterNet

__all__ = ["PaintStage", "low_band"]


def low_band(x: Tensor, scale: int) -> Tensor:
    """(N,C,H,W) -> (N,C,H,W): the ``scale``× area average (a partial cell at the edge averages
    what it holds) scaled back up (bicubic)."""
    small = F.avg_pool2d(x, scale, ceil_mode=True)
    return F.interpolate(small, size=x.shape[-2:], mode="bicubic", align_corners=False)


class PaintStage(nn.Module):
    """The painter plus the input's low band: (N,3,H,W) -> (N,3,H,W), both in [0,1].

    Args:
        config: the painter's config.
        scale: how much larger than the frame the input is.
        band: the side (px of the input) of the cells whose mean colour is the input's; the
            detail finer than that is the painter's (default: ``scale``, one cell per pixel
            of the frame; a larger band leaves the painter the frame's finest detail too).
    """

    def __init__(
        self, config: PainterConfig | None = None, scale: int = 4, band: int | None = None
    ) -> None:
        super().__init__()
        self.painter = PainterNet(config)
        self.scale = scale
        self.band = band if band is not None else scale

    def forward(self, x: Tensor) -> Tensor:
        """(N,3,H,W) in [0,1] -> (N,3,H,W) in [0,1]."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an (N,3,H,W) batch, got {tuple(x.shape)}")
        painted = self.painter(x)
        b = self.band
        return (painted - low_band(painted, b) + low_band(x, b)).clamp(0.0, 1.0)
