"""Dreams at 256 px: the sampler's paint stage against bicubic and the painter prior (issue #43).

    .venv/bin/python bench/paint_stage.py [--collections ukiyoe_portraits,hokusai_fuji,...]
        [--threads 2] [--reuse]

Per collection in shared/data/styles/:

1. trains the quick sampler without its stage (``train-sampler --stage-steps 0``, timed);
2. trains the quick preset's paint stage in this process on the collection minus every fifth
   picture (held back; timed), as ``train-sampler`` trains it on all of them;
3. held-back check: each held-back picture shrunk to 64 px (short side), then scaled up 4×
   by bicubic and by the stage; KID of each set against the collection at 256 px, and SSIM
   at 64 px between the 64 px input and the output shrunk back (does the stage keep the
   composition it was given?);
4. dreams: 64 samples (seeds 0-63) of the sampler, scaled 4× by bicubic, painted by the
   painter prior with the collection's mean style vector (today's ``--paint-size``) and by the
   stage; KID position of each at 256 px between the floor (half of the collection against
   the other half) and the ceiling (photos), memorization (median nearest-neighbour ratio);
   the stage's time per 256 px picture;
5. writes a sheet of 8 stage dreams above their nearest collection pictures and the 3 paintings
   of 4 dreams side by side, and the figures, to bench/out/paint_stage/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "bench"))

from sampler_quality import kid_figures  # noqa: E402


def position(f: dict[str, Any]) -> float:
    k, fl, ce = f["kid"][0], f["floor_half_a_vs_half_b"][0], f["ceiling_photos_vs_collection"][0]
    return (k - fl) / (ce - fl)


def scored(batch: Any, name: str, tmp: Path, tag: str) -> tuple[dict[str, Any], list[Path]]:
    """Write (N,3,H,W) ``batch`` as PNGs and score it against the collection at its long side."""
    from styleforge import images

    paths = []
    for i, im in enumerate(batch):
        paths.append(images.save_image(im[None], tmp / f"{tag}_{i:03d}.png"))
    side = max(batch.shape[-2:])
    return kid_figures(paths, DATA / "styles" / name, side), paths


def ssim64(small: Any, big: Any) -> float:
    """SSIM between a (1,3,h,w) picture and (1,3,H,W) ``big`` shrunk to h×w."""
    from skimage.metrics import structural_similarity

    from styleforge import images

    back = images.resize_tensor(big, *small.shape[-2:])
    a, b = small[0].permute(1, 2, 0).numpy(), back[0].permute(1, 2, 0).numpy()
    return float(structural_similarity(a, b, channel_axis=2, data_range=1.0))


def run_collection(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from styleforge import images, sheets
    from styleforge.infer.sampler import Sampler
    from styleforge.metrics.features import FeatureBank
    from styleforge.train.config import SamplerTrainConfig
    from styleforge.train.paint_stage import stage_pairs, start_painter, train_stage_loop

    torch.set_num_threads(args.threads)
    work = args.out / name
    model = work / "sampler.safetensors"
    style_dir = DATA / "styles" / name
    out: dict[str, Any] = {}
    if not (args.reuse and model.exists()):
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "styleforge", "train-sampler", str(style_dir), "-o", str(model),
             "--device", "cpu", "--quiet", "--stage-steps", "0",
             *(["--steps", str(args.steps)] if args.steps else [])],
            check=True, env=os.environ | {"OMP_NUM_THREADS": str(args.threads)},
        )  # fmt: skip
        out["sampler_minutes"] = round((time.perf_counter() - start) / 60, 2)
    pictures = [images.load_image(p) for p in sorted(style_dir.glob("*.jpg"))]
    held, kept = pictures[::5], [t for i, t in enumerate(pictures) if i % 5]
    config = SamplerTrainConfig.preset("quick")
    stage_cfg = replace(config.stage, steps=args.stage_steps or config.stage.steps,
                        band=args.band or config.stage.band)  # fmt: skip
    start = time.perf_counter()
    pairs = stage_pairs(kept, stage_cfg.scale * config.resolution, stage_cfg.scale)
    net = start_painter([p[:, 3:] for p in pairs], stage_cfg.scale, stage_cfg.band)
    state = train_stage_loop(stage_cfg, pairs, net, torch.device("cpu"))
    out["stage_minutes"] = round((time.perf_counter() - start) / 60, 2)
    stage = state.ema.eval()
    tmp = Path(tempfile.mkdtemp())
    k = stage_cfg.scale
    with torch.no_grad():
        # Held-back pictures: 64 px in, 256 px out.
        ins = [images.resize_to(t, config.resolution, "short") for t in held]
        lifted = [images.lift(t, k * t.shape[-2], k * t.shape[-1]) for t in ins]
        painted = [stage(t) for t in lifted]
        for tag, batch in (("held_bicubic", lifted), ("held_stage", painted)):
            paths = [images.save_image(t, tmp / f"{tag}_{i:03d}.png") for i, t in enumerate(batch)]
            f = kid_figures(paths, style_dir, max(batch[0].shape[-2:]))
            out[f"{tag}_kid"] = round(f["kid"][0], 4)
            out[f"{tag}_ssim64"] = round(sum(map(ssim64, ins, batch)) / len(ins), 4)
        # Dreams: the sampler's frames, scaled up three ways.
        sampler = Sampler.load(model, "cpu")
        raw = sampler.sample(range(args.samples), paint_size=0)
        big = images.lift(raw, k * raw.shape[-2], k * raw.shape[-1])
        t0 = time.perf_counter()
        by_stage = torch.cat([stage(c) for c in big.split(8)])
        out["stage_seconds_per_picture"] = round((time.perf_counter() - t0) / len(big), 3)
        prior = sampler.paint(raw, max(big.shape[-2:]))
    sets = {"bicubic": big, "prior": prior, "stage": by_stage}
    for tag, batch in sets.items():
        f, _ = scored(batch, name, tmp, tag)
        out[f"dream_{tag}_position"] = round(position(f), 3)
        out[f"dream_{tag}_kid"] = round(f["kid"][0], 4)
        out[f"dream_{tag}_memorization"] = round(f["memorization_median"], 3)
    out["floor_256"] = round(f["floor_half_a_vs_half_b"][0], 4)
    out["ceiling_256"] = round(f["ceiling_photos_vs_collection"][0], 4)
    # The sheet: 8 stage dreams over their nearest collection pictures, then 4 dreams 3 ways.
    bank = FeatureBank()
    side = max(by_stage.shape[-2:])
    coll = [images.resize_to(t, side) for t in pictures]
    real = bank.pooled(coll)
    fake = bank.pooled(list(by_stage[:8, None]))
    nearest = torch.cdist(fake, real).argmin(1)
    h, w = by_stage.shape[-2:]
    near = torch.cat([images.resize_tensor(coll[int(i)], h, w) for i in nearest])
    rows = [sheets.grid(by_stage[:8], cols=8), sheets.grid(near, cols=8)]
    trio = torch.cat([torch.stack([sets[t][i] for t in sets]) for i in range(4)])
    rows.append(sheets.grid(trio, cols=12))
    images.save_image(sheets.stack_rows(rows), args.out / f"{name}_sheet.png")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", default="ukiyoe_portraits,hokusai_fuji,monet,van_gogh")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "paint_stage")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, help="sampler steps (default: the preset's)")
    parser.add_argument("--stage-steps", type=int, help="stage steps (default: the preset's)")
    parser.add_argument("--band", type=int, help="the stage's band (default: the preset's)")
    parser.add_argument("--reuse", action="store_true", help="keep samplers already trained")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "figures.json"
    figures: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    for name in args.collections.split(","):
        figures[name] = run_collection(name, args)
        path.write_text(json.dumps(figures, indent=2))
        print(name, json.dumps(figures[name]), flush=True)
    print("\n| collection | dreams: bicubic | prior | stage | memorization | held-back KID "
          "bicubic / stage | SSIM64 bicubic / stage | stage min | s/picture |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, f in figures.items():
        print(f"| {name} | {f['dream_bicubic_position']} | {f['dream_prior_position']} | "
              f"{f['dream_stage_position']} | {f['dream_stage_memorization']} | "
              f"{f['held_bicubic_kid']} / {f['held_stage_kid']} | "
              f"{f['held_bicubic_ssim64']} / {f['held_stage_ssim64']} | "
              f"{f['stage_minutes']} | {f['stage_seconds_per_picture']} |")  # fmt: skip


if __name__ == "__main__":
    main()
