"""The knobs of a restyle, in one type: :class:`Settings`.

What a user sets now (a flag, a slider), what a taste stores in a model file (the plain record
of :meth:`Settings.to_record`, under :data:`~styleforge.infer.header.TASTE_KEY`), what the
taste search proposes (``styleforge.taste`` maps the four look knobs to its unit space) and
what the apply functions run with are all :class:`Settings`. A knob left at ``None`` is *not
set here*: :meth:`Settings.over` fills it from the layer below (the stored taste), and the
apply functions from the model's defaults (:meth:`Settings.plain`).

Torch-free and numpy-free: the lowest module of the restyle layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from styleforge.errors import UserError

__all__ = [
    "DEFAULT_OVERLAP",
    "DEFAULT_PAINT_SIZE",
    "MAX_STRENGTH",
    "ApplyOptions",
    "Settings",
]

#: Highest ``strength``: above 1 the network paints over its own result (see Settings).
MAX_STRENGTH = 2.0
#: The long side (px) a painter-prior model paints at unless its model file or the user says
#: otherwise: its strokes keep the size they had in training (see Settings.paint_size).
DEFAULT_PAINT_SIZE = 512
#: Default overlap (px) of neighbouring tiles.
DEFAULT_OVERLAP = 64
#: The look knobs, in record order (a record holds exactly these, each set).
_LOOK = ("strength", "paint_size", "colors", "tone")


@dataclass(frozen=True)
class Settings:
    """The knobs of a restyle; ``None``: not set here (the stored taste or the model's default
    decides: strength 1, no colours kept, no tone, the model's own paint size, tiles as
    needed, the photo's own size).

    The look (what a taste is made of):

    Args:
        strength: 0 (the photo) .. 1 (the style) .. 2 (more paint): in between 0 and 1 the
            result is blended with the photo (and a painter-prior model also paints less: its
            style vector moves toward the photo's own); above 1 the network paints over its
            own result, blended in by ``strength − 1``.
        paint_size: the long side (px) the network paints at; a larger photo is painted at
            this size and the result scaled up (Lanczos), so strokes keep the size they were
            learned at. 0: always full size.
        colors: how much of the photo's colours (YIQ chrominance) to keep under the stylized
            luminance, 0..1.
        tone: a contrast curve applied last: −1 softer .. 0 unchanged .. 1 punchier.

    How the work is done (never part of a look):

    Args:
        max_size: first downscale so the long side is at most this.
        tile: tile side in px; ``None`` tiles automatically above 2.56 megapixels (tiles of
            1024 px), 0 never tiles.
        overlap: px shared by neighbouring tiles, blended smoothly.
        batch: tiles per forward pass.
    """

    strength: float | None = None
    paint_size: int | None = None
    colors: float | None = None  # a bool works too: True = 1, False = 0
    tone: float | None = None
    max_size: int | None = None
    tile: int | None = None
    overlap: int = DEFAULT_OVERLAP
    batch: int = 1

    def __post_init__(self) -> None:
        if self.colors is not None and not 0.0 <= self.colors <= 1.0:
            raise UserError(f"colour amount must be from 0 to 1, got {self.colors}")
        if self.tone is not None and not -1.0 <= self.tone <= 1.0:
            raise UserError(f"tone must be from -1 to 1, got {self.tone}")
        if self.strength is not None and not 0.0 <= self.strength <= MAX_STRENGTH:
            raise UserError(f"strength must be from 0 to {MAX_STRENGTH:g}, got {self.strength}")
        if self.paint_size is not None and self.paint_size != 0 and self.paint_size < 16:
            raise UserError(f"paint size must be 0 (full) or at least 16 px, got {self.paint_size}")
        if self.max_size is not None and self.max_size < 16:
            raise UserError(f"max size must be at least 16 px, got {self.max_size}")
        if self.overlap < 0:
            raise UserError(f"overlap must be ≥ 0, got {self.overlap}")
        if self.tile is not None and self.tile != 0 and self.tile <= 2 * self.overlap:
            raise UserError(
                f"tile ({self.tile} px) must be larger than twice the overlap ({self.overlap} px)"
            )
        if self.batch < 1:
            raise UserError(f"batch must be at least 1, got {self.batch}")

    # ----------------------------------------------------------------- the look

    def over(self, below: Settings | None) -> Settings:
        """These settings with each look knob not set here taken from ``below`` (the stored
        taste; ``None``: nothing below); how the work is done is always this one's."""
        if below is None:
            return self
        return replace(self, **{k: getattr(below, k) for k in _LOOK if getattr(self, k) is None})

    def plain(self) -> tuple[float, float, float]:
        """(strength, colors, tone) with the model's defaults (1, 0, 0) where not set."""
        return (
            1.0 if self.strength is None else float(self.strength),
            0.0 if self.colors is None else float(self.colors),
            0.0 if self.tone is None else float(self.tone),
        )

    def describe(self) -> str:
        """The look as a line: ``strength 1.30, paint size 640 px, colours kept 0.20, tone
        +0.10`` (a knob not set is left out)."""
        parts = []
        if self.strength is not None:
            parts.append(f"strength {self.strength:.2f}")
        if self.paint_size is not None:
            parts.append(f"paint size {self.paint_size} px")
        if self.colors is not None:
            parts.append(f"colours kept {float(self.colors):.2f}")
        if self.tone is not None:
            parts.append(f"tone {self.tone:+.2f}")
        return ", ".join(parts) or "the model's defaults"

    # ----------------------------------------------------------------- records

    def to_record(self) -> dict[str, float | int]:
        """The look as a plain JSON-ready record, every knob set (what a taste stores):
        ``{"strength": 1.3, "paint_size": 640, "colors": 0.2, "tone": 0.1}``."""
        missing = [k for k in _LOOK if getattr(self, k) is None]
        if missing:
            raise ValueError(f"a stored look sets every knob; {', '.join(missing)} not set")
        return {k: getattr(self, k) for k in _LOOK}

    @classmethod
    def from_record(cls, data: Any) -> Settings:
        """The look a record holds (:meth:`to_record`): exactly the four knobs, numbers (the
        paint size a whole one), in range; anything else is a :class:`UserError`."""
        if not isinstance(data, Mapping) or set(data) != set(_LOOK):
            raise UserError(f"expected controls {sorted(_LOOK)}, got {data!r}")
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in data.values()):
            raise UserError(f"controls must be numbers, got {dict(data)!r}")
        if data["paint_size"] != int(data["paint_size"]):
            raise UserError(f"paint_size must be a whole number, got {data['paint_size']!r}")
        return cls(**{**data, "paint_size": int(data["paint_size"])})


#: The name the apply functions' settings had before they were one type with the restyle
#: service's (kept for the Python API: ``ApplyOptions(strength=0.8)`` still works).
ApplyOptions = Settings
