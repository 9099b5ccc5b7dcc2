"""``styleforge evaluate``: score results against a style collection (and their photos).

:func:`evaluate` scores files; :func:`evaluate_images` files or tensors with a loaded
:class:`~styleforge.metrics.features.FeatureBank` (what a training job uses, in memory).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from styleforge import collection
from styleforge.errors import UserError
from styleforge.images import load_image, resize_to
from styleforge.metrics.content import content_error, match_size, ssim
from styleforge.metrics.features import EvalSettings, FeatureBank, ImageInput
from styleforge.metrics.kid import kid
from styleforge.metrics.memorization import memorization
from styleforge.metrics.style import collection_target, style_distance, style_gain

COLUMNS = ("name", "style_distance", "photo_distance", "style_gain", "content_error", "ssim")


@dataclass(frozen=True)
class Evaluation:
    """Per-result rows (dicts keyed by :data:`COLUMNS`) and set-level figures."""

    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    pairs: list[tuple[str, Path | None, Path]] = field(default_factory=list)
    style_images: list[Path] = field(default_factory=list)


def pair_results(results: Sequence[Path], photos: Sequence[Path]) -> list[Path]:
    """The photo of each result, matched by file stem; unmatched or ambiguous names are errors."""
    by_stem: dict[str, list[Path]] = {}
    for photo in photos:
        by_stem.setdefault(photo.stem, []).append(photo)
    matched, missing = [], []
    for result in results:
        found = by_stem.get(result.stem, [])
        if len(found) > 1:
            raise UserError(
                f"{result.name}: several photos share its name ({', '.join(map(str, found[:3]))})"
            )
        if not found:
            missing.append(result.name)
        else:
            matched.append(found[0])
    if missing:
        raise UserError(
            f"no photo with the same name for {len(missing)} result(s): {', '.join(missing[:3])}"
            + (" ..." if len(missing) > 3 else "")
            + " (results are paired with photos by file name)"
        )
    return matched


def matched_collection(
    bank: FeatureBank, style_images: Sequence[ImageInput], side: int | None
) -> torch.Tensor:
    """(m, D) pooled vectors of the collection, each image first shrunk to a long side of
    ``side`` px (files with Lanczos, tensors with :func:`~styleforge.images.resize_to`) when
    that is below the evaluation size, so that small generated images are compared with the
    collection at their own resolution rather than penalised for it."""
    if side is None or side >= bank.settings.size:
        return bank.pooled(list(style_images))
    return bank.pooled([_shrunk(image, side) for image in style_images])


def _shrunk(image: ImageInput, side: int) -> torch.Tensor:
    if isinstance(image, (str, Path)):
        return load_image(image, size=side)
    return resize_to(image, side)


def _long_side(image: ImageInput) -> int:
    if not isinstance(image, (str, Path)):
        return max(int(image.shape[-2]), int(image.shape[-1]))
    with Image.open(image) as img:
        return max(img.size)


def _decoded(image: ImageInput) -> torch.Tensor:
    return load_image(image) if isinstance(image, (str, Path)) else image


def _mean(values: Sequence[float | None]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.fmean(finite) if finite else None


def evaluate(
    style_dir: Path,
    results: Sequence[Path],
    photos: Sequence[Path] | None = None,
    settings: EvalSettings | None = None,
    device: torch.device | str = "cpu",
) -> Evaluation:
    """Score the files ``results`` against the collection in ``style_dir`` (and against their
    ``photos``, paired by file name); see :func:`evaluate_images` for the figures."""
    if not results:
        raise UserError("no result images to evaluate")
    coll = collection.scan(style_dir)
    coll.require(1, "evaluate")
    style_images = list(coll.images)
    matched = pair_results(results, photos) if photos is not None else None
    bank = FeatureBank(settings, device)
    ev = evaluate_images(bank, style_images, results, matched, [r.name for r in results])
    summary = {"style_collection": str(style_dir), **ev.summary}
    notes = [*ev.notes, coll.report()] if coll.skipped or coll.duplicates else ev.notes
    sources: Sequence[Path | None] = matched if matched is not None else [None] * len(results)
    pairs = [(r.name, p, r) for r, p in zip(results, sources, strict=True)]
    return Evaluation(ev.rows, summary, notes, pairs, style_images)


def evaluate_images(
    bank: FeatureBank,
    styles: Sequence[ImageInput],
    results: Sequence[ImageInput],
    photos: Sequence[ImageInput] | None = None,
    names: Sequence[str] | None = None,
) -> Evaluation:
    """Score ``results`` against the style images ``styles`` (and against their ``photos``,
    in the same order) with ``bank``'s encoder: files or (1,3,H,W) tensors in [0,1], so a
    training job scores its results in memory with the encoder it has loaded.

    Per result (named by ``names``, default ``result_0``, ...): style distance to the
    collection's centroid Gram, and with a photo the photo's distance, the style gain, relu4_2
    content error and luminance SSIM. For the set: KID against the collection, and, for
    generated sets (no photos), the memorization figure. A generated set smaller than the
    evaluation size (e.g. 64 px samples) is compared for KID and memorization with the
    collection shrunk to the samples' size (``kid_resolution``), so the figures measure the
    style, not the resolution.
    """
    if not results:
        raise UserError("no result images to evaluate")
    style_feats = [bank.features(image) for image in styles]
    target = collection_target([f.grams for f in style_feats])
    generated_side = None
    if photos is None:
        generated_side = max(_long_side(r) for r in results)
        if generated_side >= bank.settings.size:
            generated_side = None
    labels = names if names is not None else [f"result_{i}" for i in range(len(results))]
    rows, pooled = _score_rows(bank, target, results, photos, labels, generated_side is not None)
    summary: dict[str, Any] = {
        "style_images": len(styles),
        "results": len(results),
        "eval_size": bank.settings.size,
        "mean_style_distance": _mean([r["style_distance"] for r in rows]),
    }
    if photos is not None:
        summary["mean_style_gain"] = _mean([r["style_gain"] for r in rows])
        summary["mean_content_error"] = _mean([r["content_error"] for r in rows])
        summary["mean_ssim"] = _mean([r["ssim"] for r in rows])
    notes: list[str] = []
    if len(styles) >= 2 and len(results) >= 2:
        if generated_side is not None:
            collection_pooled = matched_collection(bank, styles, generated_side)
            summary["kid_resolution"] = generated_side
            notes.append(
                f"KID and memorization compare the {generated_side} px results with the "
                f"collection shrunk to {generated_side} px"
            )
        else:
            collection_pooled = torch.stack([f.pooled for f in style_feats])
        summary |= _set_figures(rows, pooled, collection_pooled, generated=photos is None)
    else:
        notes.append(
            "KID undefined: it needs at least 2 images in each set "
            f"(style collection: {len(styles)}, results: {len(results)})"
        )
    return Evaluation(rows, summary, notes)


def _score_rows(
    bank: FeatureBank,
    target: list[torch.Tensor],
    results: Sequence[ImageInput],
    photos: Sequence[ImageInput] | None,
    names: Sequence[str],
    enlarge: bool,
) -> tuple[list[dict[str, Any]], torch.Tensor]:
    """One row of figures per result, and the (n, D) pooled vectors of the results."""
    rows: list[dict[str, Any]] = []
    result_pooled = []
    matched = photos if photos is not None else [None] * len(results)
    for name, result, photo in zip(names, results, matched, strict=True):
        # Decoded once; tensors at eval size pass through as is. Small generated images
        # (``enlarge``) are enlarged exactly like the shrunk collection images they meet.
        r_img = bank.prepare(_decoded(result) if enlarge else result)
        feats = bank.features(r_img)
        result_pooled.append(feats.pooled)
        row: dict[str, Any] = {"name": name}
        if isinstance(result, (str, Path)):
            row["result"] = str(result)
        row["style_distance"] = style_distance(feats.grams, target)
        if photo is not None:
            photo_img = bank.prepare(photo)
            if isinstance(photo, (str, Path)):
                row["photo"] = str(photo)
            row["photo_distance"] = style_distance(bank.features(photo_img).grams, target)
            row["style_gain"] = style_gain(row["photo_distance"], row["style_distance"])
            p_img = match_size(photo_img, r_img)
            row["content_error"] = content_error(feats.content, bank.content(p_img))
            row["ssim"] = ssim(r_img, p_img)
        rows.append(row)
    return rows, torch.stack(result_pooled)


def _set_figures(
    rows: list[dict[str, Any]],
    pooled: torch.Tensor,
    collection_pooled: torch.Tensor,
    generated: bool,
) -> dict[str, Any]:
    """KID of the results against the collection; for a generated set also the memorization
    figures (and each row's nearest-neighbour ratio, added to ``rows``)."""
    value, stderr = kid(pooled, collection_pooled)
    figures: dict[str, Any] = {"kid": value, "kid_stderr": stderr}
    if generated:
        mem = memorization(pooled, collection_pooled)
        figures["memorization_median"] = mem["median"]
        figures["memorization_copies"] = mem["copies"]
        for row, ratio in zip(rows, mem["per_sample"], strict=True):
            row["nn_ratio"] = ratio
    return figures
