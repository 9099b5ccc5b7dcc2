"""Contact sheets: pictures side by side with labels, grids, rows stacked, a strip of the
collection's own pictures above results (previews, reports, tune rounds, the demo).

Pixels follow :mod:`styleforge.images`: (1,3,H,W) float tensors in [0,1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from styleforge.images import array_to_pil, check_nchw, pil_to_tensor, resize_array, resize_tensor

if TYPE_CHECKING:
    import torch
    from PIL import ImageDraw

__all__ = [
    "DREAM_SIDE", "collection_strip", "dream_grid", "enlarge", "grid", "make_sheet",
    "sheet_image", "stack_images", "stack_rows",
]  # fmt: skip

#: The least short side (px) a dream is shown at on a sheet (64 px pictures are enlarged 2×).
DREAM_SIDE = 128

_WHITE = (255, 255, 255)


def _fit_label(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    """Shorten ``text`` with an ellipsis until it fits in ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..." if text else ""


def stack_rows(rows: Sequence[torch.Tensor]) -> torch.Tensor:
    """Stack (1,3,H_i,W_i) rows vertically, padding narrower ones on the right with white."""
    import torch

    width = max(r.shape[-1] for r in rows)
    return torch.cat(
        [torch.nn.functional.pad(r, (0, width - r.shape[-1]), value=1.0) for r in rows], dim=2
    )


def grid(batch: torch.Tensor, cols: int, pad: int = 2) -> torch.Tensor:
    """Tile a batch (N,3,H,W) into a (1,3,H',W') grid of ``cols`` columns on white."""
    import torch

    check_nchw(batch, "batch")
    n, c, h, w = batch.shape
    rows = math.ceil(n / cols)
    out = torch.ones(1, c, rows * (h + pad) + pad, cols * (w + pad) + pad, dtype=batch.dtype)
    for i, img in enumerate(batch.detach().cpu()):
        top, left = pad + (i // cols) * (h + pad), pad + (i % cols) * (w + pad)
        out[0, :, top : top + h, left : left + w] = img
    return out


def enlarge(batch: torch.Tensor, min_side: int = DREAM_SIDE) -> torch.Tensor:
    """(N,3,H,W) -> (N,3,kH,kW), the smallest whole k ≥ 1 with k·min(H,W) ≥ ``min_side``, by
    repeating pixels (nearest neighbour: what the network drew, no smoothing added)."""
    import torch

    check_nchw(batch, "batch")
    k = max(1, math.ceil(min_side / min(batch.shape[-2:])))
    if k == 1:
        return batch
    return torch.nn.functional.interpolate(batch, scale_factor=k, mode="nearest")


def dream_grid(batch: torch.Tensor, cols: int | None = None) -> torch.Tensor:
    """New images (N,3,H,W) as a grid of ``cols`` columns (default: square-ish), each at least
    :data:`DREAM_SIDE` px on its short side (:func:`enlarge`) -> (1,3,H',W')."""
    n = batch.shape[0]
    return grid(enlarge(batch), cols if cols is not None else math.ceil(math.sqrt(n)))


def make_sheet(
    images: Sequence[torch.Tensor | np.ndarray],
    labels: Sequence[str] | None = None,
    height: int = 256,
    pad: int = 8,
) -> torch.Tensor:
    """Side-by-side contact sheet of (1, 3, H, W) images -> (1, 3, H', W') on white (see
    :func:`sheet_image`)."""
    return pil_to_tensor(sheet_image(images, labels, height, pad))


def sheet_image(
    images: Sequence[torch.Tensor | np.ndarray],
    labels: Sequence[str] | None = None,
    height: int = 256,
    pad: int = 8,
) -> Image.Image:
    """Side-by-side contact sheet of (1, 3, H, W) tensors or float arrays in [0,1] -> an RGB
    PIL image on white (torch is not needed for arrays).

    Each image is resized to ``height`` pixels high, with ``pad`` white pixels around and
    between them; with ``labels``, each label is drawn in black under its image.
    """
    if not images:
        raise ValueError("make_sheet needs at least one image")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(labels)} labels for {len(images)} images")
    if height < 1 or pad < 0:
        raise ValueError(f"height must be >= 1 and pad >= 0, got {height} and {pad}")

    tiles: list[Image.Image] = []
    for i, t in enumerate(images):
        check_nchw(t, f"image {i}")
        if t.shape[0] != 1:
            raise ValueError(f"image {i}: expected a batch of one, got {tuple(t.shape)}")
        h, w = int(t.shape[-2]), int(t.shape[-1])
        width = max(1, round(w * height / h))
        x = (
            np.asarray(t, dtype=np.float32)
            if isinstance(t, np.ndarray)
            else t.detach().cpu().float().numpy()
        )
        tiles.append(array_to_pil(resize_array(x, height, width)))

    from PIL import ImageDraw, ImageFont  # only sheets draw text: apply starts without them

    font = ImageFont.load_default()
    label_h = 0
    if labels is not None:
        probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
        boxes = [probe.textbbox((0, 0), text or " ", font=font) for text in labels]
        label_h = math.ceil(max(box[3] for box in boxes)) + pad

    total_w = pad + sum(tile.width + pad for tile in tiles)
    total_h = pad + height + label_h + pad
    sheet = Image.new("RGB", (total_w, total_h), _WHITE)
    draw = ImageDraw.Draw(sheet)
    x0 = pad
    for i, tile in enumerate(tiles):
        sheet.paste(tile, (x0, pad))
        if labels is not None:
            text = _fit_label(draw, labels[i], font, tile.width)
            text_w = draw.textlength(text, font=font)
            x_text = x0 + max(0.0, (tile.width - text_w) / 2)
            draw.text((x_text, pad + height + pad), text, fill=(0, 0, 0), font=font)
        x0 += tile.width + pad
    return sheet


def stack_images(rows: Sequence[Image.Image]) -> Image.Image:
    """Stack RGB PIL images vertically, left-aligned, narrower ones padded with white."""
    if not rows:
        raise ValueError("stack_images needs at least one image")
    out = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), _WHITE)
    top = 0
    for r in rows:
        out.paste(r, (0, top))
        top += r.height
    return out


def collection_strip(
    pictures: Sequence[torch.Tensor], width: int, height: int = 96, pad: int = 4
) -> torch.Tensor:
    """A row of the collection's own pictures to put above a sheet of results, so the style can
    be judged: (1,3,H,W) pictures -> one (1,3,height + 2·pad, width) row on white, as many
    thumbnails ``height`` px high as fit in ``width`` (in the given order)."""
    import torch

    if not pictures:
        raise ValueError("collection_strip needs at least one picture")
    out = torch.ones(1, 3, height + 2 * pad, width)
    left = pad
    for pic in pictures:
        check_nchw(pic, "picture")
        h, w = pic.shape[-2:]
        thumb = resize_tensor(pic[:1].float().cpu(), height, max(1, round(w * height / h)))
        tw = thumb.shape[-1]
        if left + tw > width - pad:
            if left == pad:  # a single very wide picture: crop it to the row
                tw = width - 2 * pad
                thumb = thumb[..., :tw]
            else:
                break
        out[..., pad : pad + height, left : left + tw] = thumb
        left += tw + pad
    return out
