"""Training throughput of the quick preset on the CPU, at 128 and 256 px crops.

    .venv/bin/python bench/train_speed.py                    # 128 and 256 px, 20 timed steps
    .venv/bin/python bench/train_speed.py --sizes 128 --steps 40 --repeats 3
    .venv/bin/python bench/train_speed.py --quick            # smoke run: 64 px, 3 timed steps

For each crop size, two phases of `train_stylizer_loop` with `StylizerTrainConfig.preset("quick")`
(only `size`, `steps` and `warmup` changed), each timed over `--steps` steps after `--untimed`
(3) untimed ones, stamps taken in the loop's `on_step` callback (so loading the VGG encoder and
the style Gram targets is excluded):

- warm-up: the content-only phase (`warmup = steps`): generator + content loss;
- adversarial: the main phase (`warmup = 0`): discriminator step + generator step with style,
  content, adversarial and TV losses.

Prints seconds per step, images/s (batch × steps/s), the CPU seconds per wall second of this
process divided by torch's thread count ("CPU share": well under 100 % means the run was starved
or not parallel) and, per size, the projected wall time of the preset's whole loop:
warm-up steps × warm-up step time + (steps − warm-up) × adversarial step time. The projection
leaves out what `styleforge train` adds around the loop (loading images and weights, previews,
checkpoints, the final evaluation). A size other than the preset's (128) projects a
`--size` override of the same run.

Data: the first `--photos` content photos and `--styles` hokusai_fuji prints, resized so their
short side is pool_scale × size (2 × size in the preset), as `styleforge train` does. Figures
also go to bench/out/train_speed/train_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from styleforge import images
from styleforge.train.config import StylizerTrainConfig
from styleforge.train.stylizer import StylizerState, train_stylizer_loop

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"


def pool(folder: Path, short: int, n: int) -> list[torch.Tensor]:
    """The first ``n`` images of ``folder`` resized so their short side is ``short``."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if len(files) < n:
        raise SystemExit(f"{folder}: {len(files)} images, {n} wanted")
    return [images.resize_to(images.load_image(p), short, "short") for p in files[:n]]


def measure(
    config: StylizerTrainConfig,
    photos: list[torch.Tensor],
    styles: list[torch.Tensor],
    untimed: int,
) -> dict[str, float]:
    """Seconds per step and CPU share over the steps after the first ``untimed``."""
    wall: list[float] = []
    cpu: list[float] = []

    def on_step(_: StylizerState) -> None:
        wall.append(time.perf_counter())
        cpu.append(time.process_time())

    train_stylizer_loop(config, photos, styles, torch.device("cpu"), on_step=on_step)
    timed = len(wall) - untimed
    if timed < 1:
        raise SystemExit("no timed steps (a diverged step was rolled back?)")
    seconds = (wall[-1] - wall[untimed - 1]) / timed
    share = (cpu[-1] - cpu[untimed - 1]) / (wall[-1] - wall[untimed - 1])
    return {"s_per_step": seconds, "cpu_share": share / torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", type=int, nargs="+", help="crop sizes (default 128 256)")
    parser.add_argument("--steps", type=int, help="timed steps per phase (default 20)")
    parser.add_argument("--untimed", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--repeats", type=int, default=1, help="measurements per phase (median)")
    parser.add_argument("--photos", type=int, default=6, help="content photos in the pool")
    parser.add_argument("--styles", type=int, default=6, help="hokusai_fuji prints in the pool")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--quick", action="store_true", help="smoke run: 64 px, 3 timed steps")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "train_speed")
    args = parser.parse_args()
    sizes: list[int] = args.sizes or ([64] if args.quick else [128, 256])
    steps: int = args.steps or (3 if args.quick else 20)
    if args.untimed < 1:
        raise SystemExit("--untimed must be at least 1 (the first stamp starts the clock)")
    preset = StylizerTrainConfig.preset("quick")
    n = args.untimed + steps
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f}; quick preset: batch {preset.batch}, "
        f"{preset.steps} steps of which {preset.warmup} warm-up, size {preset.size}, "
        f"net {preset.net}"
    )
    print(f"{steps} timed steps after {args.untimed} untimed, per phase, {args.repeats} repeat(s)")
    rows: list[dict[str, Any]] = []
    for size in sizes:
        short = max(size, round(size * preset.pool_scale))
        photos = pool(args.data / "content", short, args.photos)
        styles = pool(args.data / "styles" / "hokusai_fuji", short, args.styles)
        phases = {
            "warm-up": replace(preset, size=size, steps=n, warmup=n),
            "adversarial": replace(preset, size=size, steps=n, warmup=0),
        }
        figures: dict[str, list[dict[str, float]]] = {name: [] for name in phases}
        for _ in range(args.repeats):
            for name, config in phases.items():
                figures[name].append(measure(config, photos, styles, args.untimed))
                last = figures[name][-1]
                print(
                    f"  {size} px {name:11} {last['s_per_step']:.3f} s/step, "
                    f"CPU share {last['cpu_share']:.0%}",
                    flush=True,
                )
        row: dict[str, Any] = {"size": size, "batch": preset.batch}
        for name, runs in figures.items():
            row[name] = {
                "s_per_step": statistics.median(r["s_per_step"] for r in runs),
                "cpu_share": min(r["cpu_share"] for r in runs),
                "runs": runs,
            }
        warm_s, adv_s = row["warm-up"]["s_per_step"], row["adversarial"]["s_per_step"]
        row["projected_s"] = preset.warmup * warm_s + (preset.steps - preset.warmup) * adv_s
        rows.append(row)

    b = preset.batch
    print(
        "\n| size | batch | warm-up s/step | warm-up img/s | adversarial s/step "
        "| adversarial img/s | CPU share (min) | projected quick loop |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        warm, adv = row["warm-up"], row["adversarial"]
        share = min(warm["cpu_share"], adv["cpu_share"])
        print(
            f"| {row['size']} | {b} | {warm['s_per_step']:.3f} | {b / warm['s_per_step']:.1f} "
            f"| {adv['s_per_step']:.3f} | {b / adv['s_per_step']:.1f} | {share:.0%} "
            f"| {row['projected_s'] / 60:.1f} min |"
        )
    print(
        f"projected = {preset.warmup} warm-up steps × warm-up s/step + "
        f"{preset.steps - preset.warmup} adversarial steps × adversarial s/step "
        "(the loop only: no loading, previews, checkpoints or final evaluation)"
    )
    if any(min(r["warm-up"]["cpu_share"], r["adversarial"]["cpu_share"]) < 0.85 for r in rows):
        print("WARNING: CPU share under 85 %: the machine was busy or the run is not parallel")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "train_speed.json"
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "steps": steps}
    path.write_text(json.dumps({**meta, "untimed": args.untimed, "rows": rows}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
