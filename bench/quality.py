"""Quality of optimisation-based transfer as `styleforge evaluate` measures it.

For each style image and each style weight, transfers a set of photos and scores the results
against the style (style distance, style gain, relu4_2 content error, SSIM). A sensible ranking:
every gain > 1, and a stronger style weight gives a higher gain and a lower SSIM.

    .venv/bin/python bench/quality.py --photos 4 --styles starry_night,the_scream --steps 60

Run by hand; writes results and an HTML report under bench/out/quality/.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from styleforge import images
from styleforge.features import load_encoder
from styleforge.infer.transfer import TransferConfig, transfer
from styleforge.metrics.evaluate import evaluate
from styleforge.metrics.features import EvalSettings

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--photos", type=int, default=4, help="first N photos of content/")
    parser.add_argument("--styles", default="starry_night,the_scream,udnie")
    parser.add_argument("--weights", default="3e-5,1e-4,3e-4")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "quality")
    args = parser.parse_args()

    photos = sorted((args.data / "content").glob("*.jpg"))[: args.photos]
    weights = [float(w) for w in args.weights.split(",")]
    cfg0 = TransferConfig()
    encoder = load_encoder([*cfg0.style_layers, cfg0.content_layer])
    table: list[dict[str, Any]] = []
    for style_name in args.styles.split(","):
        style_path = args.data / "style_images" / f"{style_name}.jpg"
        style = images.load_image(style_path)
        for weight in weights:
            out_dir = args.out / style_name / f"w{weight:g}"
            cfg = TransferConfig(size=args.size, steps=args.steps, style_weight=weight)
            start = time.perf_counter()
            results = []
            for photo in photos:
                result = transfer(
                    images.load_image(photo), [style], cfg, encoder=encoder, progress=False
                )
                results.append(images.save_image(result, out_dir / f"{photo.stem}.png"))
            seconds = (time.perf_counter() - start) / len(photos)
            ev = evaluate(style_path, results, photos, EvalSettings(size=args.size))
            gains = [r["style_gain"] for r in ev.rows]
            row = {
                "style": style_name,
                "style_weight": weight,
                "s_per_image": round(seconds, 1),
                "mean_gain": round(statistics.fmean(gains), 2),
                "min_gain": round(min(gains), 2),
                "mean_ssim": round(ev.summary["mean_ssim"], 3),
                "mean_content_error": round(ev.summary["mean_content_error"], 3),
            }
            table.append(row)
            print(json.dumps(row), flush=True)
    print()
    print("| style | style weight | s/image | mean gain | min gain | mean SSIM | content err |")
    print("|---|---|---|---|---|---|---|")
    for r in table:
        print(
            f"| {r['style']} | {r['style_weight']:g} | {r['s_per_image']} | {r['mean_gain']} | "
            f"{r['min_gain']} | {r['mean_ssim']} | {r['mean_content_error']} |"
        )
    all_above_one = all(r["min_gain"] > 1 for r in table)
    monotonic = True
    for style_name in args.styles.split(","):
        rows = [r for r in table if r["style"] == style_name]
        g = [r["mean_gain"] for r in rows]
        s = [r["mean_ssim"] for r in rows]
        monotonic &= g == sorted(g) and s == sorted(s, reverse=True)
    print(f"\nevery result gain > 1: {all_above_one}; stronger weight -> higher gain, lower SSIM: "
          f"{monotonic}")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "quality.json").write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
