"""The taste controls: the apply-time settings a taste is made of, and their unit space."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from styleforge.errors import UserError
from styleforge.infer.apply import DEFAULT_PAINT_SIZE, MAX_STRENGTH, ApplyOptions

if TYPE_CHECKING:
    from styleforge.infer.restyle import Settings

#: The ``format`` of a taste record (:meth:`TasteSession.to_dict`); v2 adds each round's
#: picture distances.
TASTE_FORMAT = "styleforge-taste-v2"
#: Record formats a session can be read from.
READABLE_FORMATS = ("styleforge-taste-v1", TASTE_FORMAT)
#: Variants per round unless told otherwise.
DEFAULT_VARIANTS = 8


@dataclass(frozen=True)
class Axis:
    """One control's range; ``log``: searched on a log scale (a size)."""

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


#: The searched controls, in vector order (one per field of :class:`Controls`). A new cheap
#: control (say a style-vector mix) is one more field and one more axis.
AXES: tuple[Axis, ...] = (
    Axis("strength", 0.0, MAX_STRENGTH),
    Axis("paint_size", 256.0, 1024.0, log=True),
    Axis("colors", 0.0, 1.0),
    Axis("tone", -1.0, 1.0),
)


@dataclass(frozen=True)
class Controls:
    """Apply-time controls a taste is made of; the defaults are plain ``apply``.

    Args:
        strength: 0 (the photo) .. 1 (the style) .. 2 (more paint).
        paint_size: stroke scale: the long side (px) the network paints at (256..1024).
        colors: how much of the photo's colours to keep, 0..1.
        tone: contrast curve, −1 softer .. 0 unchanged .. 1 punchier.
    """

    strength: float = 1.0
    paint_size: int = DEFAULT_PAINT_SIZE
    colors: float = 0.0
    tone: float = 0.0

    def __post_init__(self) -> None:
        for axis in AXES:
            value = getattr(self, axis.name)
            if not (isinstance(value, (int, float)) and axis.low <= value <= axis.high):
                raise UserError(
                    f"{axis.name} must be from {axis.low:g} to {axis.high:g}, got {value!r}"
                )

    def to_vector(self) -> np.ndarray:
        """float64 (d,) in [0,1], in :data:`AXES` order."""
        return np.array([axis.to_unit(getattr(self, axis.name)) for axis in AXES])

    @classmethod
    def from_vector(cls, vector: Sequence[float] | np.ndarray) -> Controls:
        """Inverse of :meth:`to_vector` (clipped to [0,1]; the paint size rounded to a px)."""
        v = np.asarray(vector, dtype=np.float64).reshape(-1)
        if v.shape != (len(AXES),):
            raise ValueError(f"expected a vector of {len(AXES)}, got shape {v.shape}")
        # rounded: readable records that reload exactly
        values = {axis.name: round(axis.from_unit(u), 4) for axis, u in zip(AXES, v, strict=True)}
        size = int(min(1024, max(256, round(values.pop("paint_size")))))
        return cls(paint_size=size, **values)

    def to_options(self, base: ApplyOptions | None = None) -> ApplyOptions:
        """These controls on top of ``base`` (tiling, max size, ...: kept)."""
        return replace(
            base or ApplyOptions(), strength=float(self.strength), paint_size=int(self.paint_size),
            colors=float(self.colors), tone=float(self.tone),
        )  # fmt: skip

    def to_settings(self, paint_scale: float = 1.0) -> Settings:
        """These controls as settings of the restyle service (every look setting set, so no
        stored taste changes them). ``paint_scale``: the paint size scaled alike (a photo
        shown shrunk by that factor looks as it would at full size)."""
        from styleforge.infer.restyle import Settings

        paint = (
            self.paint_size if paint_scale == 1.0 else max(16, round(self.paint_size * paint_scale))
        )
        return Settings(
            strength=float(self.strength), colors=float(self.colors), tone=float(self.tone),
            paint_size=int(paint),
        )  # fmt: skip

    def to_dict(self) -> dict[str, float]:
        """JSON-ready ``{name: value}``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Controls:
        """Inverse of :meth:`to_dict`; anything else is a :class:`UserError`."""
        names = {f.name for f in fields(cls)}
        if not isinstance(data, Mapping) or set(data) != names:
            raise UserError(f"expected controls {sorted(names)}, got {data!r}")
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in data.values()):
            raise UserError(f"controls must be numbers, got {dict(data)!r}")
        if data["paint_size"] != int(data["paint_size"]):
            raise UserError(f"paint_size must be a whole number, got {data['paint_size']!r}")
        return cls(**{**data, "paint_size": int(data["paint_size"])})

    def describe(self) -> str:
        """``strength 1.3, paint size 640 px, colours kept 0.2, tone +0.10``."""
        return (
            f"strength {self.strength:.2f}, paint size {self.paint_size} px, "
            f"colours kept {self.colors:.2f}, tone {self.tone:+.2f}"
        )
