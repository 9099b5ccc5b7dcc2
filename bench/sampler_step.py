"""Where a sampler training step's time goes, per part, for this tree and an older one.

    .venv/bin/python bench/sampler_step.py [--baseline REV] [--steps 40] [--collection NAME]

Runs ``--steps`` steps of the quick preset's loop (``train_sampler_loop``, no KID, no previews)
on a collection from shared/data/styles/, in a fresh process per tree, alternately for this
tree and for ``--baseline`` (a git revision, checked out into a temporary worktree), and prints
the median time of each part of a step: the draw (crops, latents and, since issue #41, the
step's one generator pass), each phase's loss (the discriminator's; the generator's with the
Gram term), each phase's backward pass and optimiser step, and the EMA update, with the ratio of
this tree's total to the baseline's. The first 5 steps are left out (warm-up).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

CHILD = r"""
import json, math, statistics, sys, time
from dataclasses import replace
from pathlib import Path
import torch
from styleforge import images
from styleforge.train import loop
from styleforge.train.config import SamplerTrainConfig
from styleforge.train.sampler import train_sampler_loop

steps, folder = int(sys.argv[1]), Path(sys.argv[2])
cfg = SamplerTrainConfig.preset("quick")
cfg = replace(cfg, steps=steps, checkpoint_every=10**6)
side = cfg.pool_side
squeeze = getattr(cfg, "framing", "crop") == "whole"
pool = []
for p in sorted(folder.glob("*.jpg")):
    t = images.load_image(p)
    small = images.resize_tensor(t, side, side) if squeeze else images.resize_to(t, side, "short")
    pool.append(small)
times: dict[str, list[float]] = {}

def note(name, t0):
    t = time.perf_counter()
    times.setdefault(name, []).append(t - t0)
    return t

def run_phases(plan, step, world):
    t = time.perf_counter()
    batch = plan.draw(step)
    t = note("draw", t)
    logs = {"step": float(step)}
    for i, phase in enumerate(plan.phases):
        who = "d" if i == 0 else "g"
        result = phase.loss(batch, step)
        t = note(f"{who} loss", t)
        if result is None:
            continue
        logs |= result.logs
        phase.optimizer.zero_grad(set_to_none=True)
        result.loss.backward()
        t = note(f"{who} backward", t)
        phase.optimizer.step()
        t = note(f"{who} optimiser", t)
    return logs

ema = loop.update_ema
def timed_ema(*a, **k):
    t = time.perf_counter(); ema(*a, **k); note("ema", t)

loop._run_phases = run_phases
loop.update_ema = timed_ema
torch.manual_seed(0)
train_sampler_loop(cfg, pool, torch.device("cpu"))
print(json.dumps({k: statistics.median(v[5:]) for k, v in times.items()}))
"""


def measure(tree: Path, steps: int, folder: Path, threads: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(tree / "src"), OMP_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", CHILD, str(steps), str(folder)], env=env,
                         capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="05fb230", help="git revision to compare with")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--collection", default="ukiyoe_portraits")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each run")
    args = parser.parse_args()
    folder = DATA / "styles" / args.collection
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old),
                        args.baseline], check=True, capture_output=True)  # fmt: skip
        try:
            runs: dict[str, list[dict[str, float]]] = {"baseline": [], "this tree": []}
            for _ in range(args.rounds):  # alternately, so drift hits both alike
                runs["baseline"].append(measure(old, args.steps, folder, args.threads))
                runs["this tree"].append(measure(ROOT, args.steps, folder, args.threads))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                           check=True, capture_output=True)  # fmt: skip
    parts = sorted({k for r in runs.values() for m in r for k in m})
    print(
        f"quick preset step on {args.collection}, medians of steps 6-{args.steps} "
        f"(s; median over {args.rounds} alternating runs per tree; {args.threads} threads)"
    )
    print("| part | baseline " + args.baseline + " | this tree |")
    print("|---|---:|---:|")
    totals = {}
    for name, r in runs.items():
        totals[name] = statistics.median(sum(m.values()) for m in r)
    for part in parts:
        cells = [statistics.median(m.get(part, 0.0) for m in r) for r in runs.values()]
        print(f"| {part} | {cells[0]:.3f} | {cells[1]:.3f} |")
    b, n = totals["baseline"], totals["this tree"]
    print(f"| **step** | **{b:.3f}** | **{n:.3f}** |")
    print(f"steps per unit time: {b / n:.2f}x the baseline's")


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t0:.0f} s)")
