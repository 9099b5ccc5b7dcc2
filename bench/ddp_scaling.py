"""Data-parallel training throughput: 1 process against 2 under torchrun, and what GPUs would do.

    .venv/bin/python bench/ddp_scaling.py                 # both jobs, 12 timed steps each
    .venv/bin/python bench/ddp_scaling.py --jobs sampler --steps 20
    .venv/bin/python bench/ddp_scaling.py --quick         # smoke run: 2 timed steps

For each job (the sampler's and the stylizer's quick preset, the stylizer in its adversarial
phase), three runs of the real training loop on the bundled Hokusai prints, each launched with
``torchrun --standalone``:

- **1 process, 2 threads**: what a user gets without torchrun (the baseline);
- **1 process, 1 thread**: the per-core reference;
- **2 processes, 1 thread each**: DDP over gloo, the global batch split in two.

Each is timed over ``--steps`` steps after ``--untimed`` (3) untimed ones, stamps taken by
process 0 after each step (so start-up, loading the VGG encoder and the Gram targets are left
out). Printed: seconds per step, images/s (global batch × steps/s), the speed-up of 2 processes
over each 1-process run, and the scaling efficiency = images/s with 2 processes ÷ (2 × images/s
of 1 process with 1 thread).

Then, on paper, for GPUs: the per-step compute is counted with ``torch.utils.flop_counter`` on
one step of the quick and standard presets and timed on one H100 (:data:`H100_STEP_S`, measured
with the device machine), and the communication volume is the gradients DDP all-reduces per
step (generator + discriminator, float32). With N GPUs each keeps the preset's batch (weak
scaling, as GAN training on many GPUs usually does). The estimate assumes the link bandwidths
and latencies of :data:`LINKS`, a ring all-reduce (each GPU sends and receives 2(N−1)/N × the
gradient bytes, and each of the :data:`COLLECTIVES` collectives of a step pays 2(N−1) hops of
latency) and no overlap of communication with the backward pass (DDP does overlap, so real
figures are better).
Figures also go to bench/out/ddp_scaling/ddp_scaling.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
HOKUSAI = ROOT / "src" / "styleforge" / "assets" / "hokusai_fuji"
TORCHRUN = Path(sys.executable).with_name("torchrun")
#: Achievable all-reduce bus bandwidth (GB/s) and per-hop latency (µs) of the links the
#: estimate considers: assumptions, not measurements.
LINKS = {
    "NVLink (one node)": (150.0, 10.0),
    "PCIe 4 (one node)": (12.0, 20.0),
    "100 Gb/s Ethernet": (10.0, 50.0),
}
#: Seconds per training step on one H100 (PyTorch 2.11, bf16 autocast, channels_last, eager),
#: measured 2026-11-26 with the preset's batch: the compute side of the GPU estimate.
H100_STEP_S = {
    ("stylizer", "quick"): 0.0268,
    ("stylizer", "standard"): 0.0444,
    ("sampler", "quick"): 0.0446,
    ("sampler", "standard"): 0.054,
}
#: Collectives per step: DDP's all-reduce of the discriminator's and of the generator's
#: gradients (one bucket each at these sizes), and styleforge's three small ones (the logged
#: losses of each phase and the stop flag).
COLLECTIVES = 5


def _configs(kind: str, preset: str) -> Any:
    from styleforge.train.config import SamplerTrainConfig, StylizerTrainConfig

    if kind == "sampler":
        return SamplerTrainConfig.preset(preset)
    return replace(StylizerTrainConfig.preset(preset), warmup=0)


def _data(kind: str, config: Any) -> tuple[list[torch.Tensor], ...]:
    from styleforge import images
    from styleforge.train.data import sample_photos

    files = sorted(p for p in HOKUSAI.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    if kind == "sampler":
        short = round(config.resolution * config.pool_scale)
        return ([images.resize_to(images.load_image(p), short, "short") for p in files],)
    short = round(config.size * config.pool_scale)
    styles = [images.resize_to(images.load_image(p), short, "short") for p in files]
    photos = [images.resize_to(t, short, "short") for t in sample_photos().values()]
    return photos, styles


def _loop(kind: str, config: Any, data: tuple[list[torch.Tensor], ...], **kw: Any) -> Any:
    from styleforge.train.sampler import train_sampler_loop
    from styleforge.train.stylizer import train_stylizer_loop

    cpu = torch.device("cpu")
    if kind == "sampler":
        return train_sampler_loop(config, data[0], cpu, **kw)
    return train_stylizer_loop(config, data[0], data[1], cpu, **kw)


def worker(kind: str, steps: int, untimed: int, out: Path) -> None:
    """One torchrun process: train ``untimed + steps`` steps; process 0 writes the timings."""
    from styleforge.distributed import joined

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    config = replace(_configs(kind, "quick"), steps=untimed + steps)
    data = _data(kind, config)
    stamps: list[float] = []
    with joined("cpu") as w:
        state = _loop(kind, config, data, on_step=lambda s: stamps.append(time.perf_counter()),
                      world=w)  # fmt: skip
    if w.is_main:
        timed = stamps[untimed - 1 :]
        sec = (timed[-1] - timed[0]) / (len(timed) - 1)
        grads = sum(p.numel() for m in (state.generator, state.disc) for p in m.parameters())
        out.write_text(json.dumps({
            "processes": w.size, "threads": torch.get_num_threads(), "batch": config.batch,
            "sec_per_step": sec, "images_per_s": config.batch / sec, "grad_params": grads,
        }))  # fmt: skip


def launch(kind: str, procs: int, threads: int, steps: int, untimed: int) -> dict[str, Any]:
    """Run :func:`worker` under torchrun; its figures."""
    out = ROOT / "bench" / "out" / "ddp_scaling" / f"{kind}_{procs}x{threads}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    cmd = [str(TORCHRUN), "--standalone", f"--nproc_per_node={procs}", str(Path(__file__)),
           "--worker", kind, "--steps", str(steps), "--untimed", str(untimed),
           "--out", str(out)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{kind} with {procs} processes failed:\n{done.stderr[-3000:]}")
    return json.loads(out.read_text())


def flops_per_step(kind: str, preset: str) -> tuple[float, int, int]:
    """(FLOPs of one training step, global batch, gradient parameters) for a preset, counted
    on the CPU in one process: the count of a 2-step run minus that of a 1-step run, so the
    set-up (the style images' Gram targets) is left out."""
    from torch.utils.flop_counter import FlopCounterMode

    base = _configs(kind, preset)
    if kind == "sampler":  # the flop counter cannot follow R1's double backward; R1 runs on
        base = replace(base, r1_gamma=0.0)  # one step in 4 and is left out of the count
    counts = []
    for steps in (1, 2):
        config = replace(base, steps=steps)
        counter = FlopCounterMode(display=False)
        with counter:
            state = _loop(kind, config, _data(kind, config))
        counts.append(float(counter.get_total_flops()))
    grads = sum(p.numel() for m in (state.generator, state.disc) for p in m.parameters())
    return counts[1] - counts[0], base.batch, grads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", nargs="+", default=["sampler", "stylizer"])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--untimed", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 timed steps, quick presets only")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.steps, args.untimed, args.out)
        return
    steps, untimed = (2, 2) if args.quick else (args.steps, args.untimed)
    report: dict[str, Any] = {"cpu_count": os.cpu_count(), "jobs": {}}
    print(f"CPU: {os.cpu_count()} cores; {steps} timed steps after {untimed} untimed\n")
    print("| job | run | s/step | images/s | 2 processes' speed-up over it |")
    print("|---|---|---|---|---|")
    for kind in args.jobs:
        runs = {
            "1 process × 2 threads": launch(kind, 1, 2, steps, untimed),
            "1 process × 1 thread": launch(kind, 1, 1, steps, untimed),
            "2 processes × 1 thread": launch(kind, 2, 1, steps, untimed),
        }
        two = runs["2 processes × 1 thread"]["images_per_s"]
        for name, r in runs.items():
            gain = "" if name.startswith("2") else f"{two / r['images_per_s']:.2f}×"
            print(f"| {kind} (batch {r['batch']}) | {name} | {r['sec_per_step']:.3f} | "
                  f"{r['images_per_s']:.2f} | {gain} |")  # fmt: skip
        eff = two / (2 * runs["1 process × 1 thread"]["images_per_s"])
        report["jobs"][kind] = {"runs": runs, "scaling_efficiency": eff}
        print(f"| {kind} | scaling efficiency (2 procs vs 2 × 1 thread) | | | {eff:.0%} |")

    presets = ["quick"] if args.quick else ["quick", "standard"]
    print("\nOn paper, N GPUs, each with the preset's batch (so N × the images per step) and the "
          "step time measured on one H100; ring all-reduce of the float32 gradients, not "
          "overlapped with compute:\n")  # fmt: skip
    print("| job, preset | GFLOP/step | H100 ms/step (achieved TFLOP/s) | gradient MB | link "
          "| N=2 | N=4 | N=8 |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    paper = {}
    for kind in args.jobs:
        for preset in presets:
            flops, batch, grads = flops_per_step(kind, preset)
            mb = grads * 4 / 1e6
            step = H100_STEP_S[(kind, preset)]
            paper[f"{kind}/{preset}"] = {"flops": flops, "batch": batch, "grad_mb": mb,
                                         "h100_step_s": step}  # fmt: skip
            for link, (gbs, hop_us) in LINKS.items():
                cells = []
                for n in (2, 4, 8):
                    comm = 2 * (n - 1) / n * mb / 1e3 / gbs
                    comm += COLLECTIVES * 2 * (n - 1) * hop_us * 1e-6
                    cells.append(f"{step / (step + comm):.0%}")
                print(f"| {kind}, {preset} (batch {batch}) | {flops / 1e9:.1f} | "
                      f"{step * 1e3:.1f} ({flops / step / 1e12:.1f}) | {mb:.2f} | {link} | "
                      f"{' | '.join(cells)} |")  # fmt: skip
    report["paper"] = paper
    path = ROOT / "bench" / "out" / "ddp_scaling" / "ddp_scaling.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\ncells: scaling efficiency = compute / (compute + all-reduce); figures in {path}")


if __name__ == "__main__":
    main()
