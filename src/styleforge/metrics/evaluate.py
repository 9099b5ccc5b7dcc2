"""``styleforge evaluate``: score results against a style collection (and their photos)."""

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
from styleforge.images import load_image
from styleforge.metrics.content import content_error, match_size, ssim
from styleforge.metrics.features import EvalSettings, FeatureBank
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
    bank: FeatureBank, style_images: Sequence[Path], side: int | None
) -> torch.Tensor:
    """(m, D) pooled vectors of the collection, each image first shrunk (Lanczos) to a long
    side of ``side`` px when that is below the evaluation size, so that small generated images
    are compared with the collection at their own resolution rather than penalised for it."""
    if side is None or side >= bank.settings.size:
        return bank.pooled(list(style_images))
    return bank.pooled([load_image(p, size=side) for p in style_images])


def _long_side(path: Path) -> int:
    with Image.open(path) as img:
        return max(img.size)


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
    """Score ``results`` against the collection in ``style_dir`` (and against their ``photos``).

    Per result: style distance to the collection's centroid Gram, and with a photo the photo's
    distance, the style gain, relu4_2 content error and luminance SSIM. For the set: KID against
    the collection, and, for generated sets (no photos), the memorization figure. A generated
    set smaller than the evaluation size (e.g. 64 px samples) is compared for KID and
    memorization with the collection shrunk to the samples' size (``kid_resolution``), so the
    figures measure the style, not the resolution.
    """
    if not results:
        raise UserError("no result images to evaluate")
    coll = collection.scan(style_dir)
    coll.require(1, "evaluate")
    style_images = list(coll.images)
    matched = pair_results(results, photos) if photos is not None else [None] * len(results)
    bank = FeatureBank(settings, device)
    style_feats = [bank.features(p) for p in style_images]
    target = collection_target([f.grams for f in style_feats])

    generated_side = None
    if photos is None:
        generated_side = max(_long_side(r) for r in results)
        if generated_side >= bank.settings.size:
            generated_side = None
    rows: list[dict[str, Any]] = []
    result_pooled = []
    for result, photo in zip(results, matched, strict=True):
        # Decoded once; tensors at eval size pass through as is. Small generated images are
        # enlarged exactly like the shrunk collection images they are compared with.
        r_img = bank.prepare(load_image(result) if generated_side else result)
        feats = bank.features(r_img)
        result_pooled.append(feats.pooled)
        row: dict[str, Any] = {"name": result.name, "result": str(result)}
        row["style_distance"] = style_distance(feats.grams, target)
        if photo is not None:
            photo_img = bank.prepare(photo)
            row["photo"] = str(photo)
            row["photo_distance"] = style_distance(bank.features(photo_img).grams, target)
            row["style_gain"] = style_gain(row["photo_distance"], row["style_distance"])
            p_img = match_size(photo_img, r_img)
            row["content_error"] = content_error(feats.content, bank.content(p_img))
            row["ssim"] = ssim(r_img, p_img)
        rows.append(row)

    summary: dict[str, Any] = {
        "style_collection": str(style_dir),
        "style_images": len(style_images),
        "results": len(results),
        "eval_size": bank.settings.size,
        "mean_style_distance": _mean([r["style_distance"] for r in rows]),
    }
    notes: list[str] = []
    if photos is not None:
        summary["mean_style_gain"] = _mean([r["style_gain"] for r in rows])
        summary["mean_content_error"] = _mean([r["content_error"] for r in rows])
        summary["mean_ssim"] = _mean([r["ssim"] for r in rows])
    if len(style_images) >= 2 and len(results) >= 2:
        if generated_side is not None:
            collection_pooled = matched_collection(bank, style_images, generated_side)
            summary["kid_resolution"] = generated_side
            notes.append(
                f"KID and memorization compare the {generated_side} px results with the "
                f"collection shrunk to {generated_side} px"
            )
        else:
            collection_pooled = torch.stack([f.pooled for f in style_feats])
        value, stderr = kid(torch.stack(result_pooled), collection_pooled)
        summary["kid"], summary["kid_stderr"] = value, stderr
        if photos is None:
            mem = memorization(torch.stack(result_pooled), collection_pooled)
            summary["memorization_median"] = mem["median"]
            summary["memorization_copies"] = mem["copies"]
            for row, ratio in zip(rows, mem["per_sample"], strict=True):
                row["nn_ratio"] = ratio
    else:
        notes.append(
            "KID undefined: it needs at least 2 images in each set "
            f"(style collection: {len(style_images)}, results: {len(results)})"
        )
    if coll.skipped or coll.duplicates:
        notes.append(coll.report())
    pairs = [(r.name, p, r) for r, p in zip(results, matched, strict=True)]
    return Evaluation(rows, summary, notes, pairs, style_images)
