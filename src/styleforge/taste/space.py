"""The taste's search space: the four look knobs of
:class:`~styleforge.infer.settings.Settings` (strength, paint size, colours kept, tone), each on
an :class:`Axis`, mapped to and from a unit vector in ``[0,1]^d`` (:data:`AXES` order).

The knobs are the restyle layer's type; this module only adds their searched ranges and the
unit space. A look the search works on sets all four knobs (:func:`checked`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from styleforge.errors import UserError
from styleforge.infer.header import LEGACY_TASTE_FORMATS
from styleforge.infer.settings import DEFAULT_PAINT_SIZE, MAX_STRENGTH, Settings

__all__ = [
    "AXES",
    "BASE",
    "DEFAULT_VARIANTS",
    "READABLE_FORMATS",
    "TASTE_FORMAT",
    "Axis",
    "checked",
    "from_vector",
    "look_from_dict",
    "scaled",
    "to_vector",
]

#: The ``format`` of a taste session record (:meth:`TasteSession.to_dict`); v2 added each
#: round's picture distances, v3 leaves the chosen look to the model file's taste entry.
TASTE_FORMAT = "styleforge-taste-v3"
#: Record formats a session can be read from.
READABLE_FORMATS = (*LEGACY_TASTE_FORMATS, TASTE_FORMAT)
#: Variants per round unless told otherwise.
DEFAULT_VARIANTS = 8


@dataclass(frozen=True)
class Axis:
    """One knob's searched range; ``log``: searched on a log scale (a size)."""

    name: str
    low: float
    high: float
    log: bool = False

    def to_unit(self, value: float) -> float:
        """Value -> [0,1] (clipped)."""
        lo, hi, v = self.low, self.high, float(value)
        if self.log:
            lo, hi, v = math.log(lo), math.log(hi), math.log(max(v, 1e-12))
        return min(1.0, max(0.0, (v - lo) / (hi - lo)))

    def from_unit(self, unit: float) -> float:
        """[0,1] (clipped) -> value."""
        u = min(1.0, max(0.0, float(unit)))
        if self.log:
            return math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        return self.low + u * (self.high - self.low)


#: The searched knobs, in vector order (each a look knob of Settings). A new cheap knob (say a
#: style-vector mix) is one more Settings field and one more axis.
AXES: tuple[Axis, ...] = (
    Axis("strength", 0.0, MAX_STRENGTH),
    Axis("paint_size", 256.0, 1024.0, log=True),
    Axis("colors", 0.0, 1.0),
    Axis("tone", -1.0, 1.0),
)

#: The look a search starts from: plain ``apply`` on a painter-prior model.
BASE = Settings(strength=1.0, paint_size=DEFAULT_PAINT_SIZE, colors=0.0, tone=0.0)


def checked(look: Settings) -> Settings:
    """``look`` if it sets every knob of :data:`AXES` within its range, else a
    :class:`UserError` naming the first that does not."""
    for axis in AXES:
        value = getattr(look, axis.name)
        if not (isinstance(value, (int, float)) and axis.low <= value <= axis.high):
            raise UserError(
                f"{axis.name} must be from {axis.low:g} to {axis.high:g}, got {value!r}"
            )
    return look


def to_vector(look: Settings) -> np.ndarray:
    """A look (every knob set) -> float64 (d,) in [0,1], in :data:`AXES` order."""
    return np.array([axis.to_unit(getattr(look, axis.name)) for axis in AXES])


def from_vector(vector: Sequence[float] | np.ndarray) -> Settings:
    """Inverse of :func:`to_vector` (clipped to [0,1]; the paint size rounded to a px)."""
    v = np.asarray(vector, dtype=np.float64).reshape(-1)
    if v.shape != (len(AXES),):
        raise ValueError(f"expected a vector of {len(AXES)}, got shape {v.shape}")
    # rounded: readable records that reload exactly
    values = {axis.name: round(axis.from_unit(u), 4) for axis, u in zip(AXES, v, strict=True)}
    size = int(min(1024, max(256, round(values["paint_size"]))))
    return checked(
        Settings(strength=values["strength"], paint_size=size, colors=values["colors"],
                 tone=values["tone"])
    )  # fmt: skip


def look_from_dict(data: Any) -> Settings:
    """A look as a session record stores it (:meth:`Settings.to_record`, with or without its
    ``format``), checked against the search's ranges; anything else is a :class:`UserError`."""
    return checked(Settings.from_record(data))


def scaled(look: Settings, paint_scale: float = 1.0) -> Settings:
    """``look`` with its paint size scaled by ``paint_scale`` (a photo shown shrunk by that
    factor looks as it would at full size), at least 16 px."""
    if paint_scale == 1.0 or look.paint_size is None:
        return look
    return replace(look, paint_size=max(16, round(look.paint_size * paint_scale)))
