"""Applying a stylizer network to photos, independent of the backend (torch or onnxruntime).

Torch-free on purpose: the ONNX path (``styleforge apply model.onnx ...``) runs with numpy, PIL
and onnxruntime only. A backend is any ``run_batch(x) -> y`` on float32 (N,3,H,W) arrays in
[0,1]; this module decides tiling, blends the result with the photo and walks files, as the
:class:`~styleforge.infer.settings.Settings` say (a knob not set: the model's default).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from styleforge import images
from styleforge.errors import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, UserError
from styleforge.infer.settings import DEFAULT_PAINT_SIZE, MAX_STRENGTH, ApplyOptions, Settings
from styleforge.infer.tiling import apply_tiled

__all__ = [
    "AUTO_TILE_PIXELS",
    "DEFAULT_PAINT_SIZE",
    "MAX_STRENGTH",
    "ApplyOptions",
    "ApplySummary",
    "MemoisedNet",
    "RunBatch",
    "apply_files",
    "blend",
    "finish_array",
    "paint_array",
    "predictor_square",
    "stylize_array",
    "stylize_pil",
    "tile_for",
    "tone_curve",
]

RunBatch = Callable[[np.ndarray], np.ndarray]
"""A backend: float32 (N,3,H,W) in [0,1] -> the same shape. A backend of a painter-prior model
also has ``conditional = True``, takes ``strength`` and ``square`` keywords (``square``: the
photo's (1,3,256,256) centre square, :func:`predictor_square`, from which its own style vector
is predicted) and may have a ``paint_size`` (the long side it paints at by default)."""

#: Side of the square the style predictor sees (``styleforge.nets.painter.PREDICTOR_SIZE``).
PREDICTOR_SIZE = 256

#: Images with more pixels than this are processed in tiles unless told otherwise.
AUTO_TILE_PIXELS = 1600 * 1600
#: Photos and tiles with a side under this are mirrored up to it for the network and cropped
#: back (the stylizer takes sides of at least 5 px: nets.stylizer.MIN_SIDE; 8 is its next
#: multiple of the downsampling factor 4).
NET_MIN_SIDE = 8
#: Default tile side (px) for automatic tiling.
DEFAULT_TILE = 1024


def tile_for(options: Settings, height: int, width: int) -> int | None:
    """The tile side to use for an H×W image, or ``None`` for a single pass."""
    if options.tile == 0:
        return None
    if options.tile is None:
        return DEFAULT_TILE if height * width > AUTO_TILE_PIXELS else None
    return options.tile if max(height, width) > options.tile else None


def blend(photo: np.ndarray, stylized: np.ndarray, strength: float, colors: float) -> np.ndarray:
    """Mix a stylized image into its photo: (N,3,H,W) × 2 -> (N,3,H,W) float32 in [0,1].

    ``colors`` (0..1; a bool is 0 or 1): how much of the photo's YIQ chrominance replaces the
    stylized one, under the stylized luminance.
    """
    if not colors and strength >= 1.0:
        return stylized  # networks end in a sigmoid: already in [0,1]; array_to_pil clamps
    out = stylized
    if colors:
        yiq = images.rgb_to_yiq(stylized)
        photo_iq = images.rgb_to_yiq(photo)[:, 1:]
        own = yiq[:, 1:]
        yiq[:, 1:] = photo_iq if colors >= 1.0 else own + np.float32(colors) * (photo_iq - own)
        out = images.yiq_to_rgb(yiq)
    if strength < 1.0:
        out = photo + np.float32(strength) * (out - photo)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def tone_curve(image: np.ndarray, tone: float) -> np.ndarray:
    """A contrast curve on values in [0,1], any shape -> float32 in [0,1], monotone.

    ``tone`` −1..1 mixes the identity toward the smoothstep S-curve ``3x² − 2x³`` (above 0:
    more contrast) or away from it (below 0: less); 0 returns ``image`` unchanged."""
    if tone == 0.0:
        return image
    x = np.clip(image, 0.0, 1.0)
    s_curve = x * x * (np.float32(3.0) - np.float32(2.0) * x)
    return np.clip(x + np.float32(tone) * (s_curve - x), 0.0, 1.0).astype(np.float32, copy=False)


class MemoisedNet:
    """A backend (``RunBatch``) whose outputs are kept by input, strength and predictor
    square, the ``most`` newest of them: renders that differ only in colours kept or tone
    (or in a strength above 1, whose passes all run at strength 1) share network runs."""

    def __init__(self, run_batch: RunBatch, most: int) -> None:
        self.inner = run_batch
        self.conditional = getattr(run_batch, "conditional", False)
        self.paint_size = getattr(run_batch, "paint_size", None)
        self.most = most
        self.kept: dict[tuple[object, ...], np.ndarray] = {}

    def __call__(self, x: np.ndarray, **kw: object) -> np.ndarray:
        square = kw.get("square")
        key = (x.shape, hash(x.tobytes()), kw.get("strength"),
               None if square is None else hash(np.asarray(square).tobytes()))  # fmt: skip
        if key not in self.kept:
            if len(self.kept) >= self.most:
                self.kept.pop(next(iter(self.kept)))  # the oldest
            self.kept[key] = self.inner(x, **kw)
        return self.kept[key]


def at_least_min_side(run_batch: RunBatch) -> RunBatch:
    """``run_batch`` for batches of any size: a side under :data:`NET_MIN_SIDE` (a 1 px sliver,
    a 20000×1 banner, a thin edge tile) is mirrored up to it, centred, and cropped back."""

    def run(x: np.ndarray) -> np.ndarray:
        h, w = x.shape[-2:]
        ph, pw = max(0, NET_MIN_SIDE - h), max(0, NET_MIN_SIDE - w)
        if not (ph or pw):
            return run_batch(x)
        top, left = ph // 2, pw // 2
        pads = ((0, 0), (0, 0), (top, ph - top), (left, pw - left))
        y = run_batch(np.pad(x, pads, mode="symmetric"))
        return np.ascontiguousarray(y[..., top : top + h, left : left + w])

    return run


def predictor_square(photo: np.ndarray) -> np.ndarray:
    """The centre square of a (1,3,H,W) photo at 256×256 (Lanczos): float32 (1,3,256,256), the
    input from which a painter-prior model predicts the photo's own style vector."""
    return images.centre_square(photo, PREDICTOR_SIZE)


def _painter(
    run_batch: RunBatch, options: Settings, square: np.ndarray | None
) -> Callable[[np.ndarray], np.ndarray]:
    """What paints a (1,3,h,w) array at the size it is given: ``run_batch`` (told the strength
    and the photo's predictor ``square`` when it is a painter-prior model), tiled when large."""
    if getattr(run_batch, "conditional", False):
        net, strength = run_batch, min(options.plain()[0], 1.0)

        def run_batch(x: np.ndarray) -> np.ndarray:
            return net(x, strength=strength, square=square)  # type: ignore[call-arg]

    run = at_least_min_side(run_batch)

    def paint_over(x: np.ndarray) -> np.ndarray:
        tile = tile_for(options, x.shape[2], x.shape[3])
        if tile is None:
            return run(x)
        return apply_tiled(run, x, tile, options.overlap, batch=options.batch)

    return paint_over


def _paint_side(run_batch: RunBatch, options: Settings) -> int:
    """The long side the network paints at (0: the photo's own size)."""
    if options.paint_size is not None:
        return options.paint_size
    return getattr(run_batch, "paint_size", None) or 0


def stylize_array(run_batch: RunBatch, photo: np.ndarray, options: Settings) -> np.ndarray:
    """Restyle a float32 (1,3,H,W) photo in [0,1] and blend it; returns (1,3,H',W'), the
    photo's size unless ``options.max_size`` is smaller than its long side (then it is first
    shrunk with :func:`styleforge.images.downscale_to`).

    The network paints at ``options.paint_size`` (or the backend's ``paint_size``) when the
    photo is larger, tiled if large; any size works (sides under :data:`NET_MIN_SIDE` are
    padded for the network)."""
    if photo.ndim != 4 or photo.shape[:2] != (1, 3):
        raise ValueError(f"expected a (1,3,H,W) array, got {photo.shape}")
    photo = images.downscale_to(photo, options.max_size)
    if options.plain()[0] == 0.0:
        return finish_array(photo, photo, options)
    return finish_array(photo, paint_array(run_batch, photo, options), options)


def paint_array(run_batch: RunBatch, photo: np.ndarray, options: Settings) -> np.ndarray:
    """The network's painting of a (1,3,H,W) photo before blending -> (1,3,H,W): painted at
    the paint size (then brought back to the photo's size), twice over for a strength above 1.
    Depends on the options' strength and paint size only (see :func:`finish_array`)."""
    strength = options.plain()[0]
    square = predictor_square(photo) if getattr(run_batch, "conditional", False) else None
    paint_over = _painter(run_batch, options, square)
    paint = _paint_side(run_batch, options)
    height, width = photo.shape[-2:]
    work = photo
    if paint and max(height, width) > paint:
        work = images.resize_array(photo, *images.scaled_size(height, width, paint))
    out = paint_over(work)
    if strength > 1.0:  # more paint: the network paints over its own painting
        out = out + np.float32(strength - 1.0) * (paint_over(out) - out)
    if work is not photo:
        out = images.resize_array(out, height, width)
    return out


def finish_array(photo: np.ndarray, painted: np.ndarray, options: Settings) -> np.ndarray:
    """A (1,3,H,W) photo and its :func:`paint_array` -> the result: blended by strength and
    colours kept, then the tone curve (a strength of 0: the photo, toned)."""
    strength, colors, tone = options.plain()
    if strength == 0.0:
        return tone_curve(photo.astype(np.float32, copy=True), tone)
    out = blend(photo, painted, min(strength, 1.0), colors)
    return tone_curve(out, tone)


def _stylize_8bit(run_batch: RunBatch, img: Image.Image, options: Settings) -> Image.Image | None:
    """:func:`stylize_pil`'s quick path, or ``None`` where it does not apply: an RGB photo
    painted smaller than its size, at strength 1 with no colour keeping and no tone (the
    default). Its three resamplings (down to the paint size, the predictor's square, back up)
    run on 8-bit RGB images in one call each instead of float planes: about half the time
    (a 3840×2160 photo: a third), and within 2 levels of 255 of :func:`stylize_array`'s pixels
    (PSNR about 55 dB)."""
    if img.mode != "RGB" or options.plain() != (1.0, 0.0, 0.0):
        return None
    width, height = img.size
    if options.max_size is not None and max(width, height) > options.max_size:
        height, width = images.scaled_size(height, width, options.max_size)
    paint = _paint_side(run_batch, options)
    if not paint or max(height, width) <= paint:
        return None
    lanczos = Image.Resampling.LANCZOS
    square = None
    if getattr(run_batch, "conditional", False):
        side = min(img.size)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        crop = img.crop((left, top, left + side, top + side))
        square = images.pil_to_array(crop.resize((PREDICTOR_SIZE, PREDICTOR_SIZE), lanczos))
    ph, pw = images.scaled_size(height, width, paint)
    work = images.pil_to_array(img.resize((pw, ph), lanczos))
    out = _painter(run_batch, options, square)(work)
    return images.array_to_pil(out).resize((width, height), lanczos)


def stylize_pil(run_batch: RunBatch, img: Image.Image, options: Settings) -> Image.Image:
    """Restyle a PIL image (honouring ``max_size``); returns an RGB PIL image: the pixels of
    :func:`stylize_array` on ``images.pil_to_array(img)``, resampled in 8 bits where the
    network paints smaller than the photo at the default strength, colours and tone (within
    2 levels of 255 there, in half the time)."""
    quick = _stylize_8bit(run_batch, img, options)
    if quick is not None:
        return quick
    return images.array_to_pil(stylize_array(run_batch, images.pil_to_array(img), options))


@dataclass
class ApplySummary:
    """What a batch of files came to."""

    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every input was done (or kept), :data:`EXIT_PARTIAL` when some failed and
        others were done, :data:`EXIT_USAGE` when every one failed."""
        if not self.failed:
            return EXIT_OK
        return EXIT_PARTIAL if self.done or self.skipped else EXIT_USAGE

    def line(self, verb: str = "restyled") -> str:
        """``restyled 10, skipped 2 (output exists), failed 1``."""
        text = f"{verb} {len(self.done)}"
        if self.skipped:
            text += f", skipped {len(self.skipped)} (output exists)"
        if self.failed:
            text += f", failed {len(self.failed)}"
        return text


def apply_files(
    run_batch: RunBatch,
    pairs: Sequence[tuple[Path, Path]],
    options: Settings,
    *,
    overwrite: bool = False,
    skip_existing: bool = False,
    max_pixels: int = images.DEFAULT_MAX_PIXELS,
    progress: bool = True,
) -> ApplySummary:
    """Restyle each (source, destination); a bad image is recorded as failed and the rest go on.

    Existing destinations are an error (before any work) unless ``overwrite`` or
    ``skip_existing``. Each output is written atomically, upright (EXIF orientation applied).
    """
    existing = [d for _, d in pairs if d.exists()]
    if existing and not (overwrite or skip_existing):
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise UserError(
            f"{existing[0]}{more} already exist(s); pass --overwrite to replace or "
            "--skip-existing to keep them"
        )
    summary = ApplySummary()
    todo: Iterable[tuple[Path, Path]] = pairs
    if progress and len(pairs) > 1:  # tqdm is not imported for one photo: start-up time counts
        from tqdm import tqdm

        todo = tqdm(pairs, unit="img")
    for src, dst in todo:
        if dst.exists() and skip_existing and not overwrite:
            summary.skipped.append(dst)
            continue
        try:
            img = images.open_image(src, max_pixels=max_pixels, at_least=options.max_size)
            result = stylize_pil(run_batch, img, options)
        except (UserError, ValueError, RuntimeError, MemoryError) as err:
            # One photo that cannot be restyled fails alone; a full disk (DiskFull) stops all.
            summary.failed.append((src, failure_reason(src, err)))
            continue
        try:
            images.save_image(result, dst)
        except UserError as err:
            summary.failed.append((src, failure_reason(dst, err)))
            continue
        summary.done.append(dst)
    return summary


def failure_reason(path: Path, err: BaseException) -> str:
    """What went wrong with ``path``, without repeating the path if the message starts with it
    (``failed a.png: not an image``, not ``failed a.png: a.png: not an image``)."""
    text = str(err) or type(err).__name__
    if isinstance(err, MemoryError):
        text = "not enough memory to restyle this image (try --max-size or --tile)"
    prefix = f"{path}: "
    return text[len(prefix) :] if text.startswith(prefix) else text
