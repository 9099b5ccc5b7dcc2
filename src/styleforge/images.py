"""Everything that touches pixels: reading, converting, resizing, saving, colour spaces.

Convention: an image in the rest of styleforge is a float32 RGB tensor of shape (N, 3, H, W)
with values in [0, 1] (usually N == 1), or the same as a numpy array where torch is not
wanted (the ONNX apply path). PIL images appear only at the edges (files on disk).

Each thing is done once: one PIL <-> array conversion (:func:`pil_to_array`,
:func:`array_to_pil`; the tensor forms wrap them), one colour transform (:func:`rgb_to_yiq`,
:func:`yiq_to_rgb`, for arrays and tensors) and one resize policy: sizes from
:func:`scaled_size`, pixels from :func:`resize_array` (Lanczos in float32, clipped to [0, 1]),
whether the image came as a file, a PIL image, an array or a tensor.
No function here changes an array or tensor that the caller passed in.
"""

from __future__ import annotations

import contextlib
import math
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from styleforge.errors import ImageError
from styleforge.fileio import atomic_write

if TYPE_CHECKING:  # torch is imported lazily: the ONNX apply path runs without it
    import torch

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS_HINT",
    "SAMPLE_PHOTOS",
    "SAVE_FORMATS",
    "array_to_pil",
    "centre_square",
    "check_nchw",
    "downscale_to",
    "lift",
    "load_image",
    "open_image",
    "pil_to_array",
    "pil_to_tensor",
    "resize_array",
    "resize_tensor",
    "resize_to",
    "rgb_to_yiq",
    "sample_pictures",
    "save_image",
    "scaled_size",
    "tensor_to_pil",
    "yiq_to_rgb",
]

DEFAULT_MAX_PIXELS = 50_000_000
"""Images with more pixels than this (width * height) are refused before decoding."""

SAVE_FORMATS: dict[str, tuple[str, dict[str, Any]]] = {
    ".png": ("PNG", {"compress_level": 1}),  # 3-4× faster to write than 6, files ~10-15% larger
    ".jpg": ("JPEG", {"quality": 95}),
    ".jpeg": ("JPEG", {"quality": 95}),
    ".webp": ("WEBP", {"quality": 95}),
    ".bmp": ("BMP", {}),
    ".tif": ("TIFF", {}),
    ".tiff": ("TIFF", {}),
}
"""File suffix -> (PIL format name, save options) for :func:`save_image`."""

_WHITE = (255, 255, 255)
_ALPHA_MODES = {"LA", "La", "PA", "RGBA", "RGBa"}
_WIDE_MODES = {"I", "F"}  # 32-bit integer / float single-channel images

# Serialises the (rare) temporary raise of PIL's global decompression-bomb limit.
_PIL_LIMIT_LOCK = threading.Lock()


# --------------------------------------------------------------------------- reading


def _megapixels(pixels: int) -> str:
    mp = pixels / 1e6
    return f"{mp:.0f}" if mp >= 10 else f"{mp:.2g}"


@contextlib.contextmanager
def _pil_limit_at_least(max_pixels: int) -> Iterator[None]:
    """Let PIL's bomb check allow at least ``max_pixels`` for the duration of the block.

    PIL's limit is a module global; it is raised only when our own per-call limit is higher,
    under a lock, and always restored. Our own size check enforces ``max_pixels`` itself.
    """
    current = Image.MAX_IMAGE_PIXELS
    if current is None or current >= max_pixels:
        yield
        return
    with _PIL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _composite_on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (*_WHITE, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _wide_to_8bit(img: Image.Image) -> Image.Image:
    """Scale a 16-bit, 32-bit integer or float single-channel image to 8-bit 'L'.

    I;16*: divided by 257 (65535 -> 255). 'I': the same when values lie in [0, 65535],
    otherwise stretched min..max. 'F': x255 when in [0, 1], as is when in [0, 255],
    otherwise stretched min..max.
    """
    arr = np.asarray(img).astype(np.float64)
    finite = arr[np.isfinite(arr)]
    lo = float(finite.min()) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 0.0
    if img.mode.startswith("I;16") or (img.mode == "I" and lo >= 0 and hi <= 65535):
        arr = arr / 257.0
    elif img.mode == "F" and lo >= 0 and hi <= 1:
        arr = arr * 255.0
    elif img.mode == "F" and lo >= 0 and hi <= 255:
        pass
    else:
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
    arr = np.nan_to_num(arr, nan=0.0, posinf=255.0, neginf=0.0)
    return Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8))


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> 'RGB'; transparency is composited onto white."""
    mode = img.mode
    if mode == "RGB" and "transparency" not in img.info:
        return img
    if mode.startswith("I;16") or mode in _WIDE_MODES:
        return _wide_to_8bit(img).convert("RGB")
    if mode in _ALPHA_MODES or "transparency" in img.info:
        return _composite_on_white(img)
    return img.convert("RGB")  # 1, L, P, CMYK, YCbCr, HSV, ...


#: How the command line raises the size limit: said in its refusal (the web app has no such
#: flag and leaves it out).
MAX_PIXELS_HINT = " (raise it with --max-pixels)"


def open_image(
    path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, *, at_least: int | None = None
) -> Image.Image:
    """Read an image file fully and return it as an upright 'RGB' PIL image.

    EXIF orientation is applied; grayscale, palette, CMYK, 16-bit and float images are
    converted; transparency is composited onto white. Images with more than ``max_pixels``
    pixels are refused before they are decoded. ``at_least``: the caller shrinks the image so
    its long side is this many px anyway, so a JPEG may be decoded at 1/2, 1/4 or 1/8 of its
    size (libjpeg's DCT scaling, :meth:`PIL.Image.Image.draft`) as long as its long side stays
    at least twice that: faster, with nothing lost to the later resize.

    Raises:
        ImageError: missing, empty, unreadable, not an image, truncated/corrupt, or too large.
    """
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    p = Path(path)
    if not p.exists():
        raise ImageError(f"{path}: no such file")
    if p.is_dir():
        raise ImageError(f"{path}: is a folder, not an image file")
    try:
        if p.stat().st_size == 0:
            raise ImageError(f"{path}: empty file")
    except OSError as exc:
        raise ImageError(f"{path}: cannot read file ({exc.strerror or exc})") from exc

    too_large = f"over the limit of {_megapixels(max_pixels)} megapixels{MAX_PIXELS_HINT}"
    try:
        with (
            _pil_limit_at_least(max_pixels),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise ImageError(
                        f"{path}: {w}x{h} is {_megapixels(w * h)} megapixels, {too_large}"
                    )
                if at_least is not None and img.format == "JPEG":
                    keep = 2 * at_least / max(w, h)  # the long side stays ≥ 2 × at_least
                    img.draft(img.mode, (math.ceil(w * keep), math.ceil(h * keep)))
                img.load()  # full decode here, so truncation is caught here
                try:
                    upright = ImageOps.exif_transpose(img)
                except Exception:  # unreadable EXIF: keep the pixels as stored
                    upright = img
                rgb = _to_rgb(upright)
                if rgb is img:
                    rgb = img.copy()  # detach from the file before it is closed
                rgb.load()
                return rgb
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{path}: refused as a possible decompression bomb, {too_large}") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{path}: not an image") from exc
    except PermissionError as exc:
        raise ImageError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    except MemoryError as exc:
        raise ImageError(f"{path}: not enough memory to decode this image") from exc
    except Exception as exc:  # decoders raise OSError, SyntaxError, ValueError, struct.error...
        raise ImageError(f"{path}: truncated or corrupt image ({exc})") from exc


# --------------------------------------------------------------------------- conversion


def pil_to_array(img: Image.Image) -> np.ndarray:
    """PIL image (any mode, see :func:`open_image`) -> float32 array (1, 3, H, W) in [0, 1]."""
    arr = np.asarray(_to_rgb(img), dtype=np.float32) / np.float32(255.0)  # (H, W, 3)
    return np.ascontiguousarray(arr.transpose(2, 0, 1)[None])


def array_to_pil(arr: np.ndarray) -> Image.Image:
    """Float array (1, 3, H, W) or (3, H, W) in [0, 1] -> 'RGB' PIL image: NaN -> 0, clamped,
    rounded to the nearest 8-bit value (halves up)."""
    a = arr[0] if arr.ndim == 4 and arr.shape[0] == 1 else arr
    if a.ndim != 3 or a.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) or (1, 3, H, W) image, got {tuple(arr.shape)}")
    a = np.nan_to_num(a.transpose(1, 2, 0), nan=0.0) * np.float32(255.0)
    np.clip(a + np.float32(0.5), 0.0, 255.0, out=a)
    return Image.fromarray(a.astype(np.uint8))


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL image (any mode) -> float32 tensor (1, 3, H, W) in [0, 1] (:func:`pil_to_array`)."""
    import torch

    return torch.from_numpy(pil_to_array(img))


def tensor_to_pil(t: torch.Tensor) -> Image.Image:
    """Tensor (3, H, W) or (1, 3, H, W) -> 'RGB' PIL image; clamped to [0, 1], rounded
    (:func:`array_to_pil`)."""
    import torch

    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) or (1, 3, H, W) tensor, got {tuple(t.shape)}")
    return array_to_pil(t.detach().to(device="cpu", dtype=torch.float32).numpy())


def check_nchw(t: torch.Tensor | np.ndarray, name: str = "image") -> None:
    """Raise ValueError unless ``t`` is an (N, 3, H, W) tensor or array."""
    if t.ndim != 4 or t.shape[1] != 3:
        raise ValueError(f"{name}: expected an (N, 3, H, W) tensor, got {tuple(t.shape)}")


def load_image(
    path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, size: int | None = None
) -> torch.Tensor:
    """Read an image file -> float32 tensor (1, 3, H, W) in [0, 1].

    With ``size``, resize so that the longer side is ``size`` pixels, keeping the aspect ratio
    (exactly as :func:`resize_to` resizes the full-size tensor); ``None`` keeps the original
    size. Raises ImageError like :func:`open_image`.
    """
    import torch

    if size is not None and size < 1:
        raise ValueError(f"size must be positive, got {size}")
    arr = pil_to_array(open_image(path, max_pixels=max_pixels))
    if size is not None:
        arr = resize_array(arr, *scaled_size(arr.shape[-2], arr.shape[-1], size))
    return torch.from_numpy(arr)


# --------------------------------------------------------------------------- resizing


def scaled_size(
    height: int, width: int, size: int, side: Literal["long", "short"] = "long"
) -> tuple[int, int]:
    """(H', W') with the long (or short) side exactly ``size`` and the aspect ratio kept (the
    other side rounded, at least 1 px)."""
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    if side not in ("long", "short"):
        raise ValueError(f"side must be 'long' or 'short', got {side!r}")
    scale = size / (max(height, width) if side == "long" else min(height, width))
    if (height >= width) == (side == "long"):
        return size, max(1, round(width * scale))
    return max(1, round(height * scale)), size


def centre_square(arr: np.ndarray, side: int) -> np.ndarray:
    """The centre square of a float (N,C,H,W) array, resized to ``side``: float32 (N,C,side,side)
    (:func:`resize_array`)."""
    h, w = arr.shape[-2:]
    edge = min(h, w)
    top, left = (h - edge) // 2, (w - edge) // 2
    return resize_array(arr[..., top : top + edge, left : left + edge], side, side)


def resize_array(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a float (N, C, H, W) array in [0, 1] -> float32 (N, C, height, width): PIL's
    Lanczos per channel in float32 (antialiased going down, sharp going up), clipped to [0, 1].

    Every resize in styleforge ends here (torch-free: the ONNX path uses it too). An array
    already of that size comes back as float32 with its pixels unchanged (not clipped).
    """
    if arr.ndim != 4:
        raise ValueError(f"expected an (N, C, H, W) array, got {tuple(arr.shape)}")
    if arr.shape[2:] == (height, width):
        return np.array(arr, dtype=np.float32)  # a copy: the caller's array stays theirs
    if height < 1 or width < 1:
        raise ValueError(f"size must be positive, got {height}x{width}")
    planes = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(c, dtype=np.float32)).resize(
                (width, height), Image.Resampling.LANCZOS
            )
        )
        for c in arr.reshape(-1, *arr.shape[2:])
    ]
    out = np.stack(planes).reshape(*arr.shape[:2], height, width)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def resize_tensor(t: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """:func:`resize_array` for a tensor: (N, C, H, W) -> new (N, C, height, width) on the same
    device, clamped to [0, 1]; float dtypes are kept (the resampling itself is float32, and not
    differentiable). A tensor already of that size keeps its pixels, clamped."""
    import torch

    if t.dim() != 4:
        raise ValueError(f"expected an (N, C, H, W) tensor, got {tuple(t.shape)}")
    if (t.shape[-2], t.shape[-1]) == (height, width):
        return t.clamp(0.0, 1.0)
    dtype = t.dtype if t.is_floating_point() else torch.float32
    x = t.detach().to(device="cpu", dtype=torch.float32).numpy()
    return torch.from_numpy(resize_array(x, height, width)).to(device=t.device, dtype=dtype)


def resize_to(t: torch.Tensor, size: int, side: Literal["long", "short"] = "long") -> torch.Tensor:
    """Resize (N, 3, H, W) so that its long (or short) side is ``size``; keeps aspect ratio.

    Sizes from :func:`scaled_size`, pixels from :func:`resize_tensor` (Lanczos, clamped to
    [0, 1]); returns a new (N, 3, H', W') tensor.
    """
    check_nchw(t)
    return resize_tensor(t, *scaled_size(int(t.shape[-2]), int(t.shape[-1]), size, side))


def lift(t: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Scale (N, C, h, w) up to (N, C, height, width) bicubically, differentiably and on the
    tensor's device, clamped to [0, 1]: how a sampler's small frame reaches its paint stage."""
    import torch.nn.functional as F

    size = (height, width)
    return F.interpolate(t, size=size, mode="bicubic", align_corners=False).clamp(0.0, 1.0)


def downscale_to(arr: np.ndarray, max_size: int | None) -> np.ndarray:
    """An (N, 3, H, W) array shrunk (:func:`resize_array`) so its long side is at most
    ``max_size``; never enlarged, and returned as is when it already fits or ``max_size`` is
    ``None``."""
    h, w = arr.shape[-2:]
    if max_size is None or max(h, w) <= max_size:
        return arr
    return resize_array(arr, *scaled_size(h, w, max_size))


# --------------------------------------------------------------------------- saving


def save_image(image: torch.Tensor | Image.Image, path: str | Path) -> Path:
    """Write an image atomically (temp file in the same folder, then rename); returns the path.

    ``image`` is a tensor (3, H, W) / (1, 3, H, W) in [0, 1] or a PIL image. The format comes
    from the suffix: .png, .jpg/.jpeg (quality 95), .webp, .bmp, .tif/.tiff. Parent folders
    are created. Raises ImageError for an unknown suffix or when the file cannot be written.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in SAVE_FORMATS:
        known = ", ".join(SAVE_FORMATS)
        shown = f"'{suffix}'" if suffix else "(none)"
        raise ImageError(f"{path}: unknown image format {shown}; use one of {known}")
    fmt, options = SAVE_FORMATS[suffix]
    img = _to_rgb(image) if isinstance(image, Image.Image) else tensor_to_pil(image)

    try:
        with atomic_write(target, suffix) as tmp:
            img.save(tmp, format=fmt, **options)
    except OSError as exc:
        raise ImageError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    return target


# --------------------------------------------------------------------------- colour

# NTSC (FCC 1953) RGB -> YIQ
RGB_TO_YIQ = np.array(
    [
        [0.299, 0.587, 0.114],
        [0.595716, -0.274453, -0.321263],
        [0.211456, -0.522591, 0.311135],
    ],
    dtype=np.float64,
)
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)


@overload
def _apply_matrix(matrix_np: np.ndarray, t: np.ndarray) -> np.ndarray: ...
@overload
def _apply_matrix(matrix_np: np.ndarray, t: torch.Tensor) -> torch.Tensor: ...


def _apply_matrix(matrix_np: np.ndarray, t: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """``matrix`` (3, 3) applied to every pixel of (N, 3, H, W), in ``t``'s float dtype."""
    check_nchw(t)
    if isinstance(t, np.ndarray):
        np_dtype = t.dtype if np.issubdtype(t.dtype, np.floating) else np.dtype(np.float32)
        x = t.astype(np_dtype, copy=False)
        return np.einsum("ij,njhw->nihw", matrix_np.astype(np_dtype), x)
    import torch

    dtype = t.dtype if t.is_floating_point() else torch.float32
    m = torch.from_numpy(matrix_np).to(device=t.device, dtype=dtype)
    return torch.einsum("ij,njhw->nihw", m, t.to(dtype))


@overload
def rgb_to_yiq(t: np.ndarray) -> np.ndarray: ...
@overload
def rgb_to_yiq(t: torch.Tensor) -> torch.Tensor: ...


def rgb_to_yiq(t: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """RGB (N, 3, H, W) -> YIQ (N, 3, H, W), array or tensor; Y in [0, 1], I and Q signed.
    Inverse: :func:`yiq_to_rgb`."""
    return _apply_matrix(RGB_TO_YIQ, t)


@overload
def yiq_to_rgb(t: np.ndarray) -> np.ndarray: ...
@overload
def yiq_to_rgb(t: torch.Tensor) -> torch.Tensor: ...


def yiq_to_rgb(t: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """YIQ (N, 3, H, W) -> RGB (N, 3, H, W), array or tensor; exact inverse of
    :func:`rgb_to_yiq` (not clamped)."""
    return _apply_matrix(YIQ_TO_RGB, t)


# --------------------------------------------------------------------------- sample photos

#: scikit-image's bundled CC0 colour photos: the default training photos, the photos a round
#: of ``tune`` is judged on when none are given, the prior's neutral.
SAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle")


def sample_pictures(names: Sequence[str] = SAMPLE_PHOTOS) -> dict[str, Image.Image]:
    """The named :data:`SAMPLE_PHOTOS` as RGB PIL images (read from scikit-image's data)."""
    from skimage import data as skdata

    def load(name: str) -> np.ndarray:
        if name not in SAMPLE_PHOTOS:
            raise ValueError(f"no sample photo {name!r}; there are {', '.join(SAMPLE_PHOTOS)}")
        return skdata.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skdata, name)()

    return {name: Image.fromarray(load(name)).convert("RGB") for name in names}
