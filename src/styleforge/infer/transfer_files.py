"""Optimisation-based transfer over files: the weighted style images of several ``--style``
paths, and every (photo, output) pair transferred in turn, a photo that does not load failing
alone."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from styleforge import images
from styleforge.errors import UserError
from styleforge.features import load_encoder
from styleforge.infer.apply import ApplySummary, failure_reason
from styleforge.infer.transfer import TransferConfig, transfer
from styleforge.outputs import gather_inputs

__all__ = ["load_styles", "transfer_files"]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def load_styles(
    paths: Sequence[Path], weights: Sequence[float] | None, max_pixels: int
) -> tuple[list[Tensor], list[float]]:
    """Each style path (an image, or a folder whose usable images all count) -> its images
    (1,3,H,W) each, and one weight per image: the path's weight (default 1) shared equally
    among its images."""
    if weights is not None and len(weights) != len(paths):
        raise UserError(f"--style-weights has {len(weights)} value(s) for {len(paths)} --style")
    if weights is not None and sum(weights) <= 0:
        raise UserError("--style-weights must not all be zero")
    styles: list[Tensor] = []
    shares: list[float] = []
    for i, path in enumerate(paths):
        files = gather_inputs([path], "a style", max_pixels).files  # fewer styles still work
        share = (weights[i] if weights else 1.0) / len(files)
        styles += [images.load_image(f, max_pixels=max_pixels) for f in files]
        shares += [share] * len(files)
    return styles, shares


def transfer_files(
    pairs: Sequence[tuple[Path, Path]],
    styles: Sequence[Tensor],
    weights: Sequence[float],
    config: TransferConfig,
    device: torch.device,
    *,
    left_out: Sequence[Path] = (),
    max_pixels: int = images.DEFAULT_MAX_PIXELS,
    progress: bool = True,
    log: Callable[[str], None] = _stderr,
) -> ApplySummary:
    """Transfer each (photo, output) pair with one encoder; ``log`` hears of each result and
    failure as it comes. ``left_out`` (unusable photos of named folders, already reported)
    count as failed. The only photo failing to load raises its :class:`UserError`."""
    encoder = load_encoder([*config.style_layers, config.content_layer], config.encoder, device)
    summary = ApplySummary(failed=[(p, "not a usable image (see above)") for p in left_out])
    for src, out in pairs:
        try:
            photo = images.load_image(src, max_pixels=max_pixels)
        except UserError as err:  # one photo that does not load fails alone
            if len(pairs) == 1 and not left_out:
                raise  # the only photo: one line, exit 2
            summary.failed.append((src, failure_reason(src, err)))
            log(f"failed {src}: {summary.failed[-1][1]}")
            continue
        result = transfer(
            photo, styles, config, weights, device, encoder=encoder, progress=progress
        )
        summary.done.append(images.save_image(result, out))
        log(f"{src} -> {out}")
    if summary.failed:
        log(summary.line("transferred"))
    return summary
