"""Which files a command reads, and where it writes each result.

Photos are named as files and folders (walked recursively). Every photo gets one output, by one
rule: ``-o NAME.png`` for a single photo named directly; otherwise ``-o`` is a folder in which a
photo named directly keeps its file name and a folder's photos keep their place below that
folder (``OUT/<sub/dirs>/<name>``). A name whose suffix is not a format :mod:`styleforge.images`
writes gets ``.png``.

Torch-free (the ONNX ``apply`` path runs without torch).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from styleforge import collection, images
from styleforge.errors import UserError

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "Inputs",
    "gather_inputs",
    "list_inputs",
    "plan_outputs",
    "refuse_existing",
    "sample_outputs",
    "walk_outputs",
    "write_gif",
]


@dataclass(frozen=True)
class Inputs:
    """Photos to work on, in order, each with the folder named on the command line it was found
    in (``None``: named directly); ``left_out``: image files of those folders that cannot be
    used (already reported on stderr)."""

    photos: tuple[tuple[Path, Path | None], ...]
    left_out: tuple[Path, ...] = ()

    @property
    def files(self) -> list[Path]:
        """The photos' paths."""
        return [path for path, _ in self.photos]


def _require_all(paths: Sequence[Path]) -> None:
    for path in paths:
        if not path.exists():
            raise UserError(f"{path}: no such file or folder")


def list_inputs(paths: Sequence[Path]) -> Inputs:
    """The photos in ``paths`` judged by suffix only, no file opened: listing a library of 100k
    photos is quick, and a file that does not decode fails on its own when it is used. Files of
    a folder without an image suffix are noted on stderr; byte-identical copies are separate
    photos."""
    _require_all(paths)
    photos: list[tuple[Path, Path | None]] = []
    for src in paths:
        if not src.is_dir():
            photos.append((src, None))
            continue
        found, others = collection.list_images(src)
        if others:
            print(
                f"note: {len(others)} file(s) in {src} without an image suffix left out "
                f"(such as {others[0].relative_to(src)})",
                file=sys.stderr,
            )
        photos += [(p, src) for p in found]
    return Inputs(tuple(photos))


def gather_inputs(paths: Sequence[Path], what: str, max_pixels: int) -> Inputs:
    """The usable photos in ``paths``: each folder through :func:`collection.scan_for` (every
    image checked, copies used once, the audit on stderr, at least one usable image, ``what``
    naming the task); files named directly as they are (checked when loaded). ``left_out``: the
    files of those folders with an image suffix that are not usable (a copy is not left out:
    it is used once)."""
    photos: list[tuple[Path, Path | None]] = []
    left_out: list[Path] = []
    for path in paths:
        if path.is_dir():
            coll = collection.scan_for(path, 1, what, max_pixels=max_pixels)
            photos += [(p, path) for p in coll.images]
            suffixes = collection.IMAGE_SUFFIXES  # a file without one is not an input at all
            left_out += [s.path for s in coll.skipped if s.path.suffix.lower() in suffixes]
        elif path.exists():
            photos.append((path, None))
        else:
            raise UserError(f"{path}: no such file or folder")
    return Inputs(tuple(photos), tuple(left_out))


def _writable(path: Path) -> Path:
    return path if path.suffix.lower() in images.SAVE_FORMATS else path.with_suffix(".png")


def plan_outputs(inputs: Inputs, output: Path) -> list[tuple[Path, Path]]:
    """(photo, output) pairs by the module's rule; ``-o`` a file name for several photos, two
    photos with the same output, or no photo at all is a :class:`UserError`."""
    photos = inputs.photos
    is_file_name = output.suffix.lower() in images.SAVE_FORMATS
    if len(photos) == 1 and photos[0][1] is None and is_file_name:
        return [(photos[0][0], output)]
    if is_file_name:
        what = f"{len(photos)} photos" if len(photos) > 1 else "photos from a folder"
        raise UserError(f"-o {output}: {what} need an output folder, not a file name")
    if output.exists() and not output.is_dir():
        raise UserError(f"-o {output}: exists and is not a folder")
    if not photos:
        raise UserError("no images to restyle")
    pairs = [
        (src, _writable(output / (src.name if root is None else src.relative_to(root))))
        for src, root in photos
    ]
    dests = [dst for _, dst in pairs]
    if len(set(dests)) != len(dests):
        raise UserError("two inputs would write the same output name; restyle them separately")
    return pairs


def refuse_existing(paths: Sequence[Path], overwrite: bool) -> None:
    """A :class:`UserError` naming the first of ``paths`` that exists, unless ``overwrite``."""
    taken = [p for p in paths if p.exists()]
    if not taken or overwrite:
        return
    if len(taken) == 1:
        raise UserError(f"{taken[0]} already exists; pass --overwrite to replace it")
    more = len(taken) - 1
    raise UserError(f"{taken[0]} and {more} more already exist; pass --overwrite to replace them")


def sample_outputs(
    output: Path, numbers: Sequence[int], prefix: str, grid: Path | None = None
) -> list[Path]:
    """``OUT/<prefix>_NNNN.png`` per number (one width for all, at least 4 digits), then
    ``grid`` when given: generated images go into a folder, the grid is one image file."""
    if output.suffix.lower() in images.SAVE_FORMATS:
        raise UserError(f"-o {output}: give a folder for the images (and --grid FILE for a grid)")
    if output.exists() and not output.is_dir():
        raise UserError(f"-o {output}: exists and is not a folder")
    width = max(4, len(str(max(numbers))))
    targets = [output / f"{prefix}_{n:0{width}d}.png" for n in numbers]
    if grid is not None:
        if grid.suffix.lower() not in images.SAVE_FORMATS:
            raise UserError(f"--grid {grid}: give an image file name like grid.png")
        targets.append(grid)
    return targets


def walk_outputs(output: Path, frames: int) -> list[Path]:
    """A latent walk's files: ``[output]`` for a ``.gif``, else ``OUT/frame_NNN.png`` each."""
    if output.suffix.lower() == ".gif":
        return [output]
    if output.suffix:
        raise UserError(f"-o {output}: a walk is written as a .gif or into a folder of frames")
    return [output / f"frame_{i:03d}.png" for i in range(frames)]


def write_gif(frames: Tensor, path: Path, fps: int) -> Path:
    """Frames (K,3,H,W) in [0,1] -> a looping GIF (there and back), written atomically."""
    from styleforge.fileio import atomic_write

    pics = [images.tensor_to_pil(f[None]) for f in frames]
    loop = pics + pics[-2:0:-1]
    with atomic_write(path, ".gif") as tmp:
        loop[0].save(
            tmp, format="GIF", save_all=True, append_images=loop[1:],
            duration=max(1, round(1000 / fps)), loop=0,
        )  # fmt: skip
    return path
