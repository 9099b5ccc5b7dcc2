"""New images from noise: the quick sampler per style collection, with KID floor and ceiling.

    .venv/bin/python bench/sampler_quality.py [--collections hokusai_fuji,monet,van_gogh] [--reuse]

For each collection in shared/data/styles/: trains the quick preset (`styleforge train-sampler`,
timed as a whole command), generates 64 images (seeds 0-63) with `styleforge generate`, and
scores them the way `styleforge evaluate` does (pooled VGG16 features at 256 px, every real
image first shrunk to the samples' resolution, so all sets are compared at the same one):

- KID of the generated set against the collection (lower is better), and the memorization
  figure (median nearest-neighbour ratio; about 1 = new images, near 0 = copies; and the count
  of samples below the copy threshold);
- the floor: KID of one half of the collection against the other half (real vs real; what a
  perfect sampler would score with sets this small);
- the ceiling: KID of the content photos (shared/data/content) against the collection (images
  in no way of that style).

Target: KID clearly between floor and ceiling, and no copies. Writes the figures and a
sheet per collection (16 generated images | 8 collection images) to bench/out/sampler_quality/.
"""

from __future__ import annotations

import argparse
import json
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


def sheet(generated: list[Path], style_dir: Path, path: Path) -> None:
    import torch

    from styleforge import images

    gen = [images.load_image(p) for p in generated[:16]]
    real = [images.load_image(p, size=128) for p in sorted(style_dir.glob("*.jpg"))[:8]]
    top = images.grid(torch.cat(gen), cols=8)
    bottom = images.make_sheet(real, height=128, pad=2)
    images.save_image(images.stack_rows([top, bottom]), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", default="hokusai_fuji,monet,van_gogh")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "sampler_quality")
    parser.add_argument("--steps", type=int, help="override the preset's training steps")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--reuse", action="store_true", help="keep samplers already trained")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    figures_path = out / "figures.json"
    figures: dict[str, Any] = json.loads(figures_path.read_text()) if figures_path.exists() else {}
    sf = [PY, "-m", "styleforge"]
    for name in args.collections.split(","):
        style_dir = DATA / "styles" / name
        work = out / name
        model = work / "sampler.safetensors"
        minutes = figures.get(name, {}).get("train_minutes")
        if not (args.reuse and model.exists()):
            shutil.rmtree(work, ignore_errors=True)
            cmd = [*sf, "train-sampler", str(style_dir), "-o", str(model), "--device", "cpu",
                   "--quiet"]  # fmt: skip
            if args.steps:
                cmd += ["--steps", str(args.steps)]
            start = time.perf_counter()
            sh(cmd)
            minutes = round((time.perf_counter() - start) / 60, 1)
        samples = work / "samples"
        sh([*sf, "generate", str(model), "--seeds", f"0-{args.samples - 1}", "-o", str(samples),
            "--grid", str(work / "grid.png"), "--overwrite"])  # fmt: skip
        generated = sorted(samples.glob("*.png"))
        from PIL import Image

        with Image.open(generated[0]) as first:
            side = max(first.size)
        f = kid_figures(generated, style_dir, side)
        f["train_minutes"] = minutes
        figures[name] = f
        figures_path.write_text(json.dumps(figures, indent=2))
        sheet(generated, style_dir, out / f"{name}_sheet.png")
        k, fl = f["kid"][0], f["floor_half_a_vs_half_b"][0]
        ce = f["ceiling_photos_vs_collection"][0]
        print(f"\n{name} ({f['collection']} images; training {minutes} min; "
              f"{f['samples']} samples)")  # fmt: skip
        print("| set vs collection | KID ± stderr |")
        print("|---|---|")
        print(f"| floor: half A vs half B | {fl:.4f} ± {f['floor_half_a_vs_half_b'][1]:.4f} |")
        print(f"| generated (quick) | {k:.4f} ± {f['kid'][1]:.4f} |")
        rows = (
            ("generated vs half B", "kid_vs_half_b"),
            ("ceiling: content photos", "ceiling_photos_vs_collection"),
        )
        for label, key in rows:
            print(f"| {label} | {f[key][0]:.4f} ± {f[key][1]:.4f} |")
        position = (k - fl) / (ce - fl) if ce != fl else float("nan")
        print(f"position between floor (0) and ceiling (1): {position:.2f}")
        print(
            f"memorization: median {f['memorization_median']:.2f}, min "
            f"{f['memorization_min']:.2f}, copies {f['memorization_copies']}/{f['samples']}"
        )
        ok = fl < k < ce and f["memorization_copies"] == 0
        print(f"KID between floor and ceiling, no copies: {'PASS' if ok else 'FAIL'}", flush=True)


if __name__ == "__main__":
    main()
