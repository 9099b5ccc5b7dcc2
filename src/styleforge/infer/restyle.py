"""The one restyle service: from a model to restyled pictures, for every front end.

``styleforge apply``, the web app's Restyle, the demo and the Python API all restyle through a
:class:`Restyler`; none of them decides on its own which settings win, which backend runs or how
outputs are written.

One rule for the settings: **what the user sets now wins over the taste stored in the model
(by ``styleforge tune``), which wins over the model's defaults.** A :class:`Settings` field left
at ``None`` is "not set now".

Torch-free at import: an ``.onnx`` model (or a ``.safetensors`` model's cached export) runs on
onnxruntime, numpy and PIL only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from styleforge import images
from styleforge.infer.apply import (
    DEFAULT_OVERLAP,
    ApplyOptions,
    ApplySummary,
    RunBatch,
    apply_files,
    stylize_array,
    stylize_pil,
)

if TYPE_CHECKING:
    from styleforge.infer.backends import Backend
    from styleforge.taste import Controls

__all__ = ["Restyler", "Settings", "resolve"]


@dataclass(frozen=True)
class Settings:
    """What the user sets now (a flag, a slider); ``None``: not set, the stored taste or the
    model's default decides.

    Args:
        strength: 0 (the photo) .. 1 (the style) .. 2 (more paint; painter-prior models).
        colors: how much of the photo's colours to keep, 0..1.
        tone: contrast curve, −1 softer .. 0 unchanged .. 1 punchier.
        paint_size: the long side (px) the network paints at (0: full size).
        max_size, tile, overlap, batch: as :class:`~styleforge.infer.apply.ApplyOptions`
            (how the work is done, never part of a taste).
    """

    strength: float | None = None
    colors: float | None = None
    tone: float | None = None
    paint_size: int | None = None
    max_size: int | None = None
    tile: int | None = None
    overlap: int = DEFAULT_OVERLAP
    batch: int = 1


def resolve(settings: Settings, taste: Controls | None = None) -> ApplyOptions:
    """The options a restyle runs with: each look setting from ``settings`` when set, else from
    ``taste`` when the model has one, else the default (the model's own paint size)."""
    base = ApplyOptions(
        max_size=settings.max_size, tile=settings.tile, overlap=settings.overlap,
        batch=settings.batch,
    )  # fmt: skip
    if taste is not None:
        base = taste.to_options(base)
    return replace(
        base,
        strength=base.strength if settings.strength is None else float(settings.strength),
        colors=base.colors if settings.colors is None else float(settings.colors),
        tone=base.tone if settings.tone is None else float(settings.tone),
        paint_size=base.paint_size if settings.paint_size is None else settings.paint_size,
    )


class Restyler:
    """A model ready to restyle pictures, with its stored taste.

    Build one with :meth:`open` (a model file or export) or :meth:`preview` (a style folder,
    no training); ``run_batch`` is the backend (``styleforge.infer.apply.RunBatch``).
    """

    def __init__(self, run_batch: RunBatch, taste: Controls | None = None) -> None:
        self.run_batch = run_batch
        #: The taste stored in the model (``None``: none, or ignored when opened).
        self.taste = taste

    @classmethod
    def open(
        cls,
        model: Path,
        *,
        backend: Backend | None = None,
        device: str = "auto",
        use_taste: bool = True,
    ) -> Restyler:
        """``model``: a ``.safetensors`` stylizer or its ``.onnx`` export. ``backend``: ``None``
        picks as :func:`~styleforge.infer.backends.choose_backend` (onnxruntime on a CPU);
        ``use_taste``: follow the taste ``tune`` stored in the model (a ``.safetensors`` one).
        A missing or foreign model is a :class:`~styleforge.errors.UserError`."""
        from styleforge.infer import backends

        chosen = backends.choose_backend(model, backend, device)
        run_batch = (
            backends.torch_backend(model, device)
            if chosen == "torch"
            else backends.onnx_backend(model, device)
        )
        return cls(run_batch, stored_taste(model) if use_taste else None)

    @classmethod
    def preview(
        cls, style_dir: Path, *, device: str = "auto", max_pixels: int = images.DEFAULT_MAX_PIXELS
    ) -> Restyler:
        """The zero-training preview of a folder of pictures: the painter prior with the
        folder's mean style (torch)."""
        from styleforge.infer import backends

        return cls(backends.preview_backend(style_dir, device, max_pixels))

    @classmethod
    def like(cls, pictures: Sequence[Image.Image], *, device: str = "auto") -> Restyler:
        """:meth:`preview` of pictures already read (the caller shows them too)."""
        from styleforge.infer import backends

        return cls(backends.pictures_backend(pictures, device))

    def options(self, settings: Settings | None = None) -> ApplyOptions:
        """The options ``settings`` come to on this model (see :func:`resolve`)."""
        return resolve(settings or Settings(), self.taste)

    def __call__(self, image: Image.Image, settings: Settings | None = None) -> Image.Image:
        """Restyle one picture: an RGB PIL image in, an RGB PIL image out."""
        return stylize_pil(self.run_batch, image, self.options(settings))

    def array(self, photo: np.ndarray, settings: Settings | None = None) -> np.ndarray:
        """Restyle a float32 (1,3,H,W) photo in [0,1] -> (1,3,H',W') (see
        :func:`~styleforge.infer.apply.stylize_array`)."""
        return stylize_array(self.run_batch, photo, self.options(settings))

    @property
    def paint_size(self) -> int:
        """The long side the model paints at by default (0: the photo's own size)."""
        return int(getattr(self.run_batch, "paint_size", None) or 0)

    def files(
        self,
        pairs: Sequence[tuple[Path, Path]],
        settings: Settings | None = None,
        *,
        overwrite: bool = False,
        skip_existing: bool = False,
        max_pixels: int = images.DEFAULT_MAX_PIXELS,
        progress: bool = True,
    ) -> ApplySummary:
        """Restyle each (source, destination) file, each output written atomically (see
        :func:`~styleforge.infer.apply.apply_files`)."""
        return apply_files(
            self.run_batch, pairs, self.options(settings), overwrite=overwrite,
            skip_existing=skip_existing, max_pixels=max_pixels, progress=progress,
        )  # fmt: skip


def stored_taste(model: Path) -> Controls | None:
    """The taste ``tune`` stored in a ``.safetensors`` model (``None``: none; an ``.onnx``
    export carries none)."""
    if model.suffix.lower() != ".safetensors":
        return None
    from styleforge.taste.record import model_taste

    return model_taste(model)
