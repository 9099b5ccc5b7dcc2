"""The trained stylizer as an inference object: ``Stylizer.load(path)(image, strength=0.8)``.

Separate from training code: it needs only the model file. Images of any size go through the
network (at the model's paint size, see :mod:`styleforge.infer.apply`); large ones in
overlapping tiles blended with smooth weights (:mod:`styleforge.infer.tiling`), so memory
stays bounded. A PIL image and the same pixels as a tensor give the same result (both go
through :func:`~styleforge.infer.apply.stylize_array`), except that a PIL photo a painter-prior
model paints smaller than its size at the default settings is resampled in 8 bits (within 2
levels of 255; :func:`~styleforge.infer.apply.stylize_pil`).
On CUDA the network runs in bf16 autocast with channels_last; on the CPU in float32.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, overload

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from styleforge import images
from styleforge.infer.apply import stylize_array, stylize_pil
from styleforge.infer.model_file import ModelInfo, load_weights, read_model
from styleforge.infer.settings import DEFAULT_PAINT_SIZE, ApplyOptions, Settings
from styleforge.nets import AnyStylizer, PainterNet, build_stylizer
from styleforge.runtime import autocast, memory_format, pick_device, place

__all__ = ["ApplyOptions", "Stylizer"]


class Stylizer:
    """A trained feed-forward stylizer, ready to restyle photos.

    Args:
        net: the network (moved to ``device`` and put in eval mode).
        info: what the model file says about itself.
        device: where to run.
    """

    def __init__(self, net: AnyStylizer, info: ModelInfo, device: torch.device) -> None:
        self.device = device
        self.info = info
        self.net = place(net, device).eval().requires_grad_(False)
        self._predictor: torch.nn.Module | None = None

    @property
    def conditional(self) -> bool:
        """Whether the network takes a strength (a model on the painter prior: up to 2)."""
        return isinstance(self.net, PainterNet)

    @property
    def paint_size(self) -> int | None:
        """The long side the network paints at by default (``None``: full size)."""
        if not self.conditional:
            return None
        return int(self.info.training.get("paint_size", DEFAULT_PAINT_SIZE))

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "auto") -> Stylizer:
        """Load a model file written by ``styleforge train`` (never unpickles)."""
        state, info = read_model(Path(path))
        net = load_weights(build_stylizer(info.net), state, Path(path))
        return cls(net, info, pick_device(device))

    @torch.inference_mode()
    def run_batch(
        self, batch: np.ndarray, strength: float = 1.0, square: np.ndarray | None = None
    ) -> np.ndarray:
        """Raw network pass: float32 (N,3,H,W) in [0,1] -> float32 (N,3,H,W) in [0,1].
        A painter-prior model is conditioned on ``strength`` (0..2), measured from the style
        vector predicted from ``square`` (the photo's (1,3,256,256) centre square)."""
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
        x = x.contiguous(memory_format=memory_format(self.device))
        with autocast(self.device):
            if isinstance(self.net, PainterNet):
                own = self._own_style(square) if square is not None else None
                y = self.net(x, strength, own)
            else:
                y = self.net(x)
        return y.float().cpu().numpy()

    def _own_style(self, square: np.ndarray) -> Tensor:
        if self._predictor is None:
            from styleforge.infer.prior import load_predictor

            self._predictor = place(load_predictor(), self.device)
        x = torch.from_numpy(np.ascontiguousarray(square, dtype=np.float32)).to(self.device)
        return self._predictor(x).float()

    def backend(self) -> Callable[..., np.ndarray]:
        """:meth:`run_batch` as an apply backend (with ``conditional`` and ``paint_size``)."""
        return _Backend(self)

    def stylize(self, photo: Tensor, options: Settings | None = None) -> Tensor:
        """Restyle ``photo`` (1,3,H,W) in [0,1] -> (1,3,H',W') on the CPU (H',W' = H,W unless
        ``options.max_size`` is smaller than the long side)."""
        opts = options if options is not None else Settings()
        images.check_nchw(photo)
        x = photo.detach().to(device="cpu", dtype=torch.float32).numpy()
        return torch.from_numpy(stylize_array(self.backend(), x, opts))

    @overload
    def __call__(self, image: Image.Image, strength: float = ..., **kw: Any) -> Image.Image: ...
    @overload
    def __call__(self, image: Tensor, strength: float = ..., **kw: Any) -> Tensor: ...

    def __call__(
        self, image: Image.Image | Tensor, strength: float = 1.0, **kw: Any
    ) -> Image.Image | Tensor:
        """Restyle a PIL image (returns a PIL image) or a (3,H,W) / (N,3,H,W) tensor in [0,1]
        (returns the same layout, on the input's device). Other keyword arguments are those of
        :class:`~styleforge.infer.settings.Settings` (``colors``, ``max_size``,
        ``tile``, ``overlap``, ``batch``)."""
        opts = Settings(strength=strength, **kw)
        if isinstance(image, Image.Image):
            return stylize_pil(self.backend(), image, opts)
        if not isinstance(image, Tensor):
            raise TypeError(f"expected a PIL image or a tensor, got {type(image).__name__}")
        if image.ndim == 3:
            return self.stylize(image.unsqueeze(0), opts)[0].to(image.device)
        return torch.cat([self.stylize(x.unsqueeze(0), opts) for x in image]).to(image.device)


class _Backend:
    """A :class:`Stylizer` seen as an apply backend (``styleforge.infer.apply.RunBatch``)."""

    def __init__(self, stylizer: Stylizer) -> None:
        self.stylizer = stylizer
        self.conditional = stylizer.conditional
        self.paint_size = stylizer.paint_size

    def __call__(
        self, batch: np.ndarray, strength: float = 1.0, square: np.ndarray | None = None
    ) -> np.ndarray:
        return self.stylizer.run_batch(batch, strength, square)
