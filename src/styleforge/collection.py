"""A folder of the user's images: find them, check each one, drop exact duplicates.

``scan`` never keeps decoded pixels: each candidate is opened, checked and released, so a
folder of thousands of photos costs one image of memory at a time. ``load`` hands each usable
image, from that same single decode, to a function that makes what the caller keeps of it
(e.g. the image shrunk for training). Each file is read for its sha256 once: the digests find
the duplicates and make the collection's :attr:`~Collection.fingerprint`.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

from styleforge import images
from styleforge.errors import ImageError
from styleforge.fileio import sha256_file

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "IMAGE_SUFFIXES",
    "MIN_PICTURE_SIDE",
    "VIDEO_SUFFIXES",
    "Collection",
    "Skipped",
    "is_clip",
    "load",
    "load_for",
    "scan",
]

T = TypeVar("T")

MIN_PICTURE_SIDE = 64
"""Images whose shorter side is below this many pixels are skipped."""

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
"""File suffixes (lower case) that are considered when scanning a folder."""

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".gif")
"""Suffixes (lower case) read as clips (an animated ``.gif`` is a clip, a still one a picture)."""


def is_clip(path: Path) -> bool:
    """Whether ``path`` is a clip to restyle as video: a file with a video suffix, or a
    ``.gif`` of more than one frame. Reads no more than a GIF's header (no video library)."""
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES or not path.is_file():
        return False
    if suffix != ".gif":
        return True
    from PIL import Image

    try:
        with Image.open(path) as img:
            return bool(getattr(img, "is_animated", False))
    except (OSError, ValueError):
        return False  # not a readable GIF: the picture path says why


_HINT_SKIPS = 3  # how many skip reasons `require` quotes


@dataclass(frozen=True)
class Skipped:
    """A file that was not used, and why (the reason has no path prefix)."""

    path: Path
    reason: str


@dataclass(frozen=True)
class Collection:
    """The usable images under ``root``, in sorted order, plus an audit of what was left out.

    ``duplicates`` holds (ignored copy, kept original) pairs of byte-identical files;
    ``digests`` the hex sha256 of each image's bytes, in the order of ``images``.
    """

    root: Path
    images: tuple[Path, ...]
    skipped: tuple[Skipped, ...] = ()
    duplicates: tuple[tuple[Path, Path], ...] = ()
    digests: tuple[str, ...] = ()

    @property
    def fingerprint(self) -> str:
        """sha256 over the sorted sha256 digests of the images' bytes: the same for the same
        pictures whatever their names and order (what a model file records of its style set)."""
        return hashlib.sha256("\n".join(sorted(self.digests)).encode()).hexdigest()

    def report(self) -> str:
        """A short human-readable audit: usable count, then one line per skip / duplicate."""
        n = len(self.images)
        head = f"{self.root}: {n} usable image{'' if n == 1 else 's'}"
        extras = []
        if self.skipped:
            extras.append(f"{len(self.skipped)} skipped")
        if self.duplicates:
            d = len(self.duplicates)
            extras.append(f"{d} duplicate{'' if d == 1 else 's'}")
        if extras:
            head += f" ({', '.join(extras)})"
        lines = [head]
        lines += [f"  skipped {s.path}: {s.reason}" for s in self.skipped]
        lines += [f"  duplicate {copy} = {kept} (used once)" for copy, kept in self.duplicates]
        return "\n".join(lines)

    def require(self, n: int, what: str) -> None:
        """Raise ImageError unless at least ``n`` images are usable; ``what`` names the task."""
        k = len(self.images)
        if k >= n:
            return
        msg = f"{self.root}: only {k} usable image(s), {what} needs at least {n}"
        hints = []
        if self.skipped:
            quoted = "; ".join(f"{s.path.name}: {s.reason}" for s in self.skipped[:_HINT_SKIPS])
            more = len(self.skipped) - _HINT_SKIPS
            if more > 0:
                quoted += f"; and {more} more"
            hints.append(f"{len(self.skipped)} skipped ({quoted})")
        if self.duplicates:
            hints.append(f"{len(self.duplicates)} exact duplicate(s) counted once")
        if not self.skipped and not self.duplicates and k == 0:
            hints.append("no image files found")
        if hints:
            msg += " - " + ", ".join(hints)
        raise ImageError(msg)


def _walk(root: Path, skipped: list[Skipped]) -> Iterator[Path]:
    """Files under ``root``, recursively, in sorted order; hidden entries are ignored.

    Symlinked folders are followed once (cycles are cut); unreadable folders are reported.
    """
    seen: set[Path] = set()

    def visit(folder: Path) -> Iterator[Path]:
        real = folder.resolve()
        if real in seen:
            return
        seen.add(real)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            skipped.append(Skipped(folder, f"cannot read folder ({exc.strerror or exc})"))
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = folder / entry.name
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                yield from visit(path)
            else:
                yield path

    yield from visit(root)


def _check(
    path: Path, min_side: int, max_pixels: int, keep: Callable[[Tensor], T] | None
) -> tuple[str | None, T | None]:
    """(None, what ``keep`` makes of the decoded image) if ``path`` is a usable image, else
    (the reason without the path prefix, None). The image is released before returning."""
    try:
        img = images.open_image(path, max_pixels=max_pixels)
    except ImageError as exc:
        return str(exc).removeprefix(f"{path}: "), None
    w, h = img.size
    try:
        if min(w, h) < min_side:
            return f"too small ({w}x{h}, short side < {min_side} px)", None
        return None, (keep(images.pil_to_tensor(img)) if keep is not None else None)
    finally:
        img.close()


def list_images(folder: Path) -> tuple[list[Path], list[Path]]:
    """(image files, other files) under ``folder``, recursively, in sorted order, judged by
    suffix only: no file is opened, so listing a library of 100k photos is quick. (Restyling
    reports a file that does not decode as failed, on its own.) Names starting with "." are
    ignored; an unreadable folder counts as an other file."""
    skipped: list[Skipped] = []
    found: list[Path] = []
    others: list[Path] = []
    for file in _walk(folder, skipped):
        (found if file.suffix.lower() in IMAGE_SUFFIXES else others).append(file)
    return found, others + [s.path for s in skipped]


def scan(
    path: str | Path, min_side: int = MIN_PICTURE_SIDE, max_pixels: int = images.DEFAULT_MAX_PIXELS
) -> Collection:
    """Collect the usable images in a folder (recursively) or a single image file.

    Every candidate is fully decoded once to check it (then released): unreadable, non-image,
    truncated, too large or too small (short side < ``min_side``) files are skipped with a
    reason. Byte-identical copies are used once (the first in sorted order is kept). Files
    and folders whose name starts with "." are ignored.

    Raises:
        ImageError: ``path`` does not exist.
    """
    return _scan(path, min_side, max_pixels, None)[0]


def load(
    path: str | Path,
    keep: Callable[[Tensor], T],
    min_side: int = MIN_PICTURE_SIDE,
    max_pixels: int = images.DEFAULT_MAX_PIXELS,
) -> tuple[Collection, list[T]]:
    """:func:`scan`, handing each usable image from the decode that checks it to ``keep``, as a
    (1,3,H,W) float tensor in [0,1]: returns the collection and, in the order of its images,
    what ``keep`` made of each. Only those are held, never more than one decoded image."""
    coll, kept = _scan(path, min_side, max_pixels, keep)
    return coll, cast("list[T]", kept)


def _scan(
    path: str | Path, min_side: int, max_pixels: int, keep: Callable[[Tensor], T] | None
) -> tuple[Collection, list[T | None]]:
    root = Path(path)
    if not root.exists():
        raise ImageError(f"{path}: no such file or folder")
    skipped: list[Skipped] = []
    if root.is_dir():
        candidates: list[Path] = []
        for file in _walk(root, skipped):
            suffix = file.suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                candidates.append(file)
            else:
                shown = f"suffix {suffix}" if suffix else "no suffix"
                skipped.append(Skipped(file, f"not an image file ({shown})"))
    else:
        candidates = [root]  # named explicitly: judged by its content, whatever the suffix

    usable: list[Path] = []
    kept: list[T | None] = []
    duplicates: list[tuple[Path, Path]] = []
    kept_by_hash: dict[str, Path] = {}
    for file in candidates:
        try:
            digest = sha256_file(file)
        except OSError as exc:
            skipped.append(Skipped(file, f"cannot read file ({exc.strerror or exc})"))
            continue
        if digest in kept_by_hash:
            duplicates.append((file, kept_by_hash[digest]))
            continue
        reason, made = _check(file, min_side, max_pixels, keep)
        if reason is not None:
            skipped.append(Skipped(file, reason))
            continue
        kept_by_hash[digest] = file
        usable.append(file)
        kept.append(made)

    skipped.sort(key=lambda s: s.path.parts)
    coll = Collection(
        root=root, images=tuple(usable), skipped=tuple(skipped), duplicates=tuple(duplicates),
        digests=tuple(kept_by_hash),
    )  # fmt: skip
    return coll, kept


def scan_for(
    path: Path, need: int, what: str, max_pixels: int = images.DEFAULT_MAX_PIXELS
) -> Collection:
    """:func:`scan` for a task: print the audit on stderr when anything was left out, and
    raise :class:`ImageError` unless at least ``need`` images are usable (``what`` names the
    task in the message)."""
    return _audited(scan(path, max_pixels=max_pixels), need, what)


def load_for(
    path: Path,
    need: int,
    what: str,
    keep: Callable[[Tensor], T],
    max_pixels: int = images.DEFAULT_MAX_PIXELS,
) -> tuple[Collection, list[T]]:
    """:func:`load` for a task, audited and checked as by :func:`scan_for`."""
    coll, kept = load(path, keep, max_pixels=max_pixels)
    return _audited(coll, need, what), kept


def _audited(coll: Collection, need: int, what: str) -> Collection:
    if coll.skipped or coll.duplicates:
        print(coll.report(), file=sys.stderr)
    coll.require(need, what)
    return coll
