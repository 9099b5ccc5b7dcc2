"""The quick preset against an earlier revision's, alternately in one run (issue #45).

    OMP_NUM_THREADS=1 taskset -c 1 .venv/bin/python bench/quick_preset.py [--base REV]
        [--collections ukiyoe_portraits,hokusai_fuji,van_gogh,monet] [--timing N]

The old preset is the code of ``--base`` (a git revision, default 2c36869, the last commit
before #45's changes), checked out once as a git worktree under bench/out/quick_preset/ and
imported through PYTHONPATH; the new one is this tree. Per collection both train
`styleforge train DIR -o M --content PHOTOS` (whole command, timed), one after the other, in
alternating order from one collection to the next (old first on the first); the content photos
are shared/data/content minus the 6 held-out photos of `stylizer_quality.py`. Both models are
applied with this tree's `apply` at full resolution to the held-out photos and scored with
`styleforge evaluate` against the whole collection: KID, content error, style gain, SSIM.
Sheets: a strip of the collection above photo | old | new rows, in
bench/out/quick_preset/<collection>_sheet.png; figures in bench/out/quick_preset/figures.json.

``--timing N``: instead, N pairs of whole commands on ``--timing-collection`` (hokusai_fuji)
with all 24 content photos, old and new alternately: the issue's 150 s target.
``--reuse-old``: an old model already trained for a collection is kept (the old code does not
change, and a seed gives the same weights), with the seconds it took then.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stylizer_quality import DATA, ROOT, evaluate, sh, split_photos

PY = sys.executable
OUT = ROOT / "bench" / "out" / "quick_preset"


def base_tree(rev: str) -> Path:
    """A git worktree of ``rev`` (made once, reused while it is at ``rev``)."""
    tree = OUT / f"base_{rev}"
    if not (tree / "src" / "styleforge").exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev],
                       check=True, capture_output=True)  # fmt: skip
    return tree


def train(src: Path, style_dir: Path, photos: Path, model: Path) -> float:
    """Whole-command seconds of `styleforge train` run from the code in ``src``."""
    shutil.rmtree(model.with_name(model.stem + ".run"), ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [PY, "-m", "styleforge", "train", str(style_dir), "-o", str(model), "--content",
           str(photos), "--device", "cpu", "--quiet", "--overwrite"]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return seconds


def sheet(style_dir: Path, held: Path, sets: dict[str, Path], path: Path) -> None:
    """A strip of the collection, then photo | old | new for 4 held-out photos."""
    from styleforge import images, sheets

    pictures = sorted(p for p in style_dir.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    labels = ["photo", *sets]
    rows = []
    for photo in sorted(held.glob("*.jpg"))[:4]:
        tiles = [images.load_image(photo, size=256)]
        tiles += [images.load_image(sorted(f.glob(photo.stem + ".*"))[0], size=256)
                  for f in sets.values()]  # fmt: skip
        rows.append(sheets.make_sheet(tiles, labels))
    width = max(r.shape[-1] for r in rows)
    strip = sheets.collection_strip([images.load_image(p, size=256) for p in pictures[:16]],
                                    width, height=128)  # fmt: skip
    images.save_image(sheets.stack_rows([strip, *rows]), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--base", default="2c36869", help="the old preset's git revision")
    parser.add_argument("--collections", default="ukiyoe_portraits,hokusai_fuji,van_gogh,monet")
    parser.add_argument("--timing", type=int, default=0, help="N old/new pairs, 24 photos")
    parser.add_argument("--timing-collection", default="hokusai_fuji")
    parser.add_argument("--reuse-old", action="store_true",
                        help="keep an old model of an earlier run, and its seconds")  # fmt: skip
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    srcs = {"old": base_tree(args.base) / "src", "new": ROOT / "src"}
    sf = [PY, "-m", "styleforge"]
    if args.timing:
        style_dir = DATA / "styles" / args.timing_collection
        times: dict[str, list[float]] = {"old": [], "new": []}
        for i in range(args.timing):
            for label in ("old", "new") if i % 2 == 0 else ("new", "old"):
                s = train(srcs[label], style_dir, DATA / "content", OUT / f"timing_{label}.sf")
                times[label].append(round(s, 1))
                print(f"{label}: {s:.1f} s", flush=True)
        old, new = statistics.median(times["old"]), statistics.median(times["new"])
        print(
            f"whole command, {args.timing_collection}, 24 photos: old {times['old']} s, "
            f"new {times['new']} s; medians {old:.1f} / {new:.1f} s, ratio {new / old:.2f}"
        )
        (OUT / "timing.json").write_text(json.dumps({"base": args.base, **times}, indent=2))
        return
    train_photos, held = split_photos(OUT)
    path = OUT / "figures.json"
    figures: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    for i, name in enumerate(n for n in args.collections.split(",") if n):
        style_dir, work = DATA / "styles" / name, OUT / name
        work.mkdir(parents=True, exist_ok=True)
        seconds, rows, sets = {}, {}, {}
        for label in ("old", "new") if i % 2 == 0 else ("new", "old"):
            model = work / f"{label}.safetensors"
            before = figures.get(name, {}).get("train_seconds", {}).get(label)
            if label == "old" and args.reuse_old and model.exists() and before:
                seconds[label] = before  # the old code is fixed: its model is too
                continue
            seconds[label] = round(train(srcs[label], style_dir, train_photos, model), 1)
            print(f"{name} {label}: trained in {seconds[label]} s", flush=True)
        for label in ("old", "new"):
            sets[label] = work / label
            sh([*sf, "apply", str(work / f"{label}.safetensors"), str(held), "-o",
                str(sets[label]), "--overwrite", "-q"])  # fmt: skip
            rows[label] = evaluate(sets[label], style_dir, held, work / "reports" / label)
        figures[name] = {"base": args.base, "train_seconds": seconds, "sets": rows}
        path.write_text(json.dumps(figures, indent=2))
        sheet(style_dir, held, sets, OUT / f"{name}_sheet.png")
        print(
            f"\n{name}: train {seconds['old']} s -> {seconds['new']} s "
            f"(ratio {seconds['new'] / seconds['old']:.2f})"
        )
        print("| preset | KID | content error | style gain | SSIM |\n|---|---|---|---|---|")
        for label, s in rows.items():
            print(
                f"| {label} | {s.get('kid', float('nan')):.3f} | {s['mean_content_error']:.3f} "
                f"| {s['mean_style_gain']:.2f} | {s['mean_ssim']:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
