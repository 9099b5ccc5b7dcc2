"""Training throughput of the quick preset on the CPU, at 128 and 256 px.

    .venv/bin/python bench/train_speed.py [--sizes 128 256] [--steps 15]

For each crop size: images/s (batch × steps/s) of the content-only warm-up phase and of the
adversarial phase (discriminator step + generator step with style, content, adversarial and TV
losses), each timed over `--steps` steps after 3 untimed ones, and the projected wall time of the
preset's whole run (warm-up steps × warm-up time + the rest × adversarial time). Data: content
photos and Hokusai prints resized so their short side is twice the crop size.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import torch

from styleforge import TrainConfig, images
from styleforge.train.stylizer import TrainState, train_stylizer_loop

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def pool(folder: Path, short: int, n: int) -> list[torch.Tensor]:
    files = sorted(folder.glob("*.jpg"))[:n]
    return [images.resize_to(images.load_image(p), short, "short") for p in files]


def timed(config: TrainConfig, photos: list[torch.Tensor], styles: list[torch.Tensor]) -> float:
    """Seconds per step over the steps after the first 3."""
    stamps: list[float] = []

    def on_step(_: TrainState) -> None:
        stamps.append(time.perf_counter())

    train_stylizer_loop(config, photos, styles, torch.device("cpu"), on_step=on_step)
    return (stamps[-1] - stamps[2]) / (len(stamps) - 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--steps", type=int, default=15)
    args = parser.parse_args()
    preset = TrainConfig.preset("quick")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print("| size | batch | warm-up img/s | adversarial img/s | projected quick run (min) |")
    print("|---|---|---|---|---|")
    for size in args.sizes:
        photos = pool(DATA / "content", 2 * size, 12)
        styles = pool(DATA / "styles" / "hokusai_fuji", 2 * size, 12)
        n = args.steps + 3
        warm = timed(replace(preset, size=size, steps=n, warmup=n), photos, styles)
        adv = timed(replace(preset, size=size, steps=n, warmup=0), photos, styles)
        total = preset.warmup * warm + (preset.steps - preset.warmup) * adv
        b = preset.batch
        print(f"| {size} | {b} | {b / warm:.1f} | {b / adv:.1f} | {total / 60:.1f} |", flush=True)


if __name__ == "__main__":
    main()
