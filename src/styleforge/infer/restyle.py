"""The one restyle service: from a model to restyled pictures, for every front end.

``styleforge apply``, the web app's Restyle, the demo and the Python API all restyle through a
:class:`Restyler`; none of them decides on its own which settings win, which backend runs or how
outputs are written.

One rule for the settings: **what the user sets now wins over the taste stored in the model
(by ``styleforge tune``), which wins over the model's defaults.** A
:class:`~styleforge.infer.settings.Settings` knob left at ``None`` is "not set now":
``settings.over(taste)`` is what a restyle runs with. The taste is read from the model file's
header here (:func:`~styleforge.infer.header.read_taste`), never through ``styleforge.taste``.

Torch-free at import: an ``.onnx`` model (or a ``.safetensors`` model's cached export) runs on
onnxruntime, numpy and PIL only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from styleforge import images
from styleforge.infer.apply import ApplySummary, RunBatch, apply_files, stylize_array, stylize_pil
from styleforge.infer.header import read_taste
from styleforge.infer.settings import Settings

if TYPE_CHECKING:
    from styleforge.infer.backends import Backend

__all__ = ["Restyler", "Settings"]


class Restyler:
    """A model ready to restyle pictures, with its stored taste.

    Build one with :meth:`open` (a model file or export) or :meth:`preview` (a style folder,
    no training); ``run_batch`` is the backend (``styleforge.infer.apply.RunBatch``).
    """

    def __init__(self, run_batch: RunBatch, taste: Settings | None = None) -> None:
        self.run_batch = run_batch
        #: The look stored in the model by ``tune`` (``None``: none, or ignored when opened).
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
        return cls(run_batch, read_taste(model) if use_taste else None)

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

    def options(self, settings: Settings | None = None) -> Settings:
        """What ``settings`` (set now) come to on this model: each look knob not set now
        taken from the stored taste (a knob set nowhere: the model's default)."""
        return (settings or Settings()).over(self.taste)

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
