"""New images from noise: the quick sampler per style collection, with KID floor and ceiling.

    .venv/bin/python bench/sampler_quality.py [--collections hokusai_fuji,monet,van_gogh] [--reuse]
        [--variants projected,pixel | --variants "a=FLAGS;b=FLAGS"] [--no-painted]

For each collection in shared/data/styles/ and each variant (the quick preset, with the
projected discriminator; `pixel`, the quick preset of earlier versions: pixel discriminator with
R1, plain DCGAN generator, 1500 steps of 16): trains it (`styleforge train-sampler`, timed as a
whole command), generates 64 images (seeds 0-63) with `styleforge generate`, and
scores them the way `styleforge evaluate` does (pooled VGG16 features at 256 px, every real
image first shrunk to the samples' resolution, so all sets are compared at the same one):

- KID of the generated set against the collection (lower is better), and the memorization
  figure (median nearest-neighbour ratio; about 1 = new images, near 0 = copies; and the count
  of samples below the copy threshold);
- the floor: KID of one half of the collection against the other half (real vs real; what a
  perfect sampler would score with sets this small);
- the ceiling: KID of the content photos (shared/data/content) against the collection (images
  in no way of that style).

Sets drawn by the projected variants are also scored painted by the painter prior at 256 px
(``generate --paint-size 256``; ``<variant>_painted``, against the collection at 256 px: its
floor and ceiling are those of that size). The position puts a KID between its floor (0) and
its ceiling (1).

Target (issue #18): the projected preset's KID at most half the pixel one's at equal wall time,
memorization median above 0.5 (no copies). Writes the figures and a sheet per collection (a strip
of 8 collection images above 16 samples of each variant) to bench/out/sampler_quality/.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PY = sys.executable


def sh(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")


def kid_figures(generated: list[Path], style_dir: Path, side: int) -> dict[str, Any]:
    import torch

    from styleforge import collection
    from styleforge.images import load_image
    from styleforge.metrics.evaluate import matched_collection
    from styleforge.metrics.features import FeatureBank
    from styleforge.metrics.kid import kid
    from styleforge.metrics.memorization import memorization

    bank = FeatureBank()
    coll = list(collection.scan(style_dir).images)
    real = matched_collection(bank, coll, side)
    fake = bank.pooled([load_image(p) for p in generated])
    photos = matched_collection(bank, sorted((DATA / "content").glob("*.jpg")), side)
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(len(coll), generator=gen)
    half_a, half_b = real[order[: len(coll) // 2]], real[order[len(coll) // 2 :]]
    mem = memorization(fake, real)
    return {
        "kid": kid(fake, real),
        "kid_vs_half_b": kid(fake, half_b),
        "floor_half_a_vs_half_b": kid(half_a, half_b),
        "ceiling_photos_vs_collection": kid(photos, real),
        "ceiling_photos_vs_half_b": kid(photos, half_b),
        "memorization_median": mem["median"],
        "memorization_min": mem["min"],
        "memorization_copies": mem["copies"],
        "samples": len(generated),
        "collection": len(coll),
    }


#: The variants trained per collection: `projected`, the quick preset; `pixel`, the quick
#: preset of earlier versions (`--preset classic`: pixel discriminator with R1, plain DCGAN
#: generator, Gram loss, 1500 steps of 16); ablations of the quick preset: its projected
#: discriminator on VGG16 features, and its generator against the pixel discriminator.
VARIANTS: dict[str, list[str]] = {
    "projected": [],
    "projected_nostage": ["--stage-steps", "0"],  # the sampler alone (issue #41's figures)
    "pixel": ["--preset", "classic"],
    "projected_vgg": ["--features", "vgg"],
    "fastgan_vs_pixel_disc": ["--disc", "conv"],
    "projected_whole": ["--framing", "whole"],
    "projected_bilinear": ["--upsample", "bilinear"],
    "projected_whole_bilinear": ["--framing", "whole", "--upsample", "bilinear"],
}


def sheet(grids: dict[str, list[Path]], style_dir: Path, path: Path) -> None:
    """A strip of 8 collection images above 8 samples of each set, all 128 px high."""
    import torch

    from styleforge import images, sheets

    real = [images.load_image(p) for p in sorted(style_dir.glob("*.jpg"))[:8]]
    rows = [sheets.make_sheet([images.resize_to(t, 128, "short") for t in real], height=128,
                              pad=2)]  # fmt: skip
    for generated in grids.values():
        gen = [images.resize_to(images.load_image(p), 128) for p in generated[:8]]
        rows.append(sheets.grid(torch.cat(gen), cols=8))
    images.save_image(sheets.stack_rows(rows), path)


def score_set(
    name: str, model: Path, out: Path, args: argparse.Namespace, paint: list[str]
) -> tuple[dict[str, Any], list[Path]]:
    """Draw ``args.samples`` images with `styleforge generate` (``paint``: its paint flags) into
    ``out`` and score them against the collection at their own resolution."""
    sf = [PY, "-m", "styleforge"]
    sh([*sf, "generate", str(model), "--seeds", f"0-{args.samples - 1}", "-o", str(out),
        "--grid", str(out.parent / f"{out.name}_grid.png"), "--overwrite", *paint])  # fmt: skip
    generated = sorted(out.glob("*.png"))
    from PIL import Image

    with Image.open(generated[0]) as first:
        side = max(first.size)
    return kid_figures(generated, DATA / "styles" / name, side) | {"side": side}, generated


#: The side the painted sets are painted at.
PAINT_SIZE = 256


def variant_args(variant: str) -> list[str]:
    """``train-sampler``'s flags for a variant: a name of :data:`VARIANTS`, or ``NAME=FLAGS``
    (e.g. ``projected_lr=--stage-steps 0 --lr 1e-3``) for a one-off."""
    if "=" in variant:
        return shlex.split(variant.split("=", 1)[1])
    return VARIANTS[variant]


def train_and_score(
    name: str, variant: str, args: argparse.Namespace, figures: dict[str, Any]
) -> dict[str, tuple[dict[str, Any], list[Path]]]:
    """Train one variant on one collection (unless reused), draw its samples, score them: the
    images `generate` writes by default and, for the projected variants, also painted by the
    painter prior at :data:`PAINT_SIZE` (``<variant>_painted``, scored at that size)."""
    sf = [PY, "-m", "styleforge"]
    style_dir = DATA / "styles" / name
    label = variant.split("=", 1)[0]
    work = args.out / name / label
    model = work / "sampler.safetensors"
    minutes = figures.get(name, {}).get(label, {}).get("train_minutes")
    if not (args.reuse and model.exists()):
        shutil.rmtree(work, ignore_errors=True)
        cmd = [*sf, "train-sampler", str(style_dir), "-o", str(model), "--device", "cpu",
               "--quiet", *variant_args(variant)]  # fmt: skip
        if args.steps:
            cmd += ["--steps", str(args.steps)]
        start = time.perf_counter()
        sh(cmd)
        minutes = round((time.perf_counter() - start) / 60, 1)
    sets = {label: score_set(name, model, work / "samples", args, [])}
    if label.startswith("projected") and args.painted:  # and by the prior at 256 px
        paint = ["--paint-size", str(PAINT_SIZE)]
        sets[f"{label}_painted"] = score_set(name, model, work / "painted", args, paint)
    for f, _ in sets.values():
        f["train_minutes"] = minutes
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", default="hokusai_fuji,monet,van_gogh")
    parser.add_argument("--variants", default="projected,pixel")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "sampler_quality")
    parser.add_argument("--steps", type=int, help="override every variant's training steps")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--reuse", action="store_true", help="keep samplers already trained")
    parser.add_argument(
        "--no-painted",
        dest="painted",
        action="store_false",
        help="skip scoring the sets painted by the prior at 256 px",
    )
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    figures_path = out / "figures.json"
    figures: dict[str, Any] = json.loads(figures_path.read_text()) if figures_path.exists() else {}
    # Variants are split on ";" when there is one (NAME=FLAGS variants), else on ",".
    variants = args.variants.split(";" if ";" in args.variants else ",")
    for name in args.collections.split(","):
        grids = {}
        for variant in variants:
            for key, (f, generated) in train_and_score(name, variant, args, figures).items():
                grids[key] = generated
                figures.setdefault(name, {})[key] = f
            figures_path.write_text(json.dumps(figures, indent=2))
        sheet(grids, DATA / "styles" / name, out / f"{name}_sheet.png")
        mine = figures[name]
        labels = [v.split("=", 1)[0] for v in variants]
        first = mine[labels[0]]
        print(f"\n{name} ({first['collection']} images; {first['samples']} samples each)")
        print(
            "| set vs collection | side | KID ± stderr | floor (half vs half) | ceiling "
            "(photos) | position | memorization median / min | copies | train min |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for variant in grids:
            f = mine[variant]
            k, fl, ce = f["kid"], f["floor_half_a_vs_half_b"], f["ceiling_photos_vs_collection"]
            pos = (k[0] - fl[0]) / (ce[0] - fl[0]) if ce[0] != fl[0] else float("nan")
            print(f"| {variant} | {f.get('side', '')} | {k[0]:.4f} ± {k[1]:.4f} | {fl[0]:.4f} | "
                  f"{ce[0]:.4f} | {pos:.2f} | "
                  f"{f['memorization_median']:.2f} / {f['memorization_min']:.2f} | "
                  f"{f['memorization_copies']}/{f['samples']} | "
                  f"{f['train_minutes']} |")  # fmt: skip
        if len(variants) > 1:
            a, b = mine[labels[0]], mine[labels[1]]
            ratio = a["kid"][0] / b["kid"][0] if b["kid"][0] > 0 else float("nan")
            ok = ratio <= 0.5 and a["memorization_median"] > 0.5
            print(f"KID {labels[0]} / {labels[1]}: {ratio:.2f} (target ≤ 0.5, memorization "
                  f"> 0.5): {'PASS' if ok else 'FAIL'}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
