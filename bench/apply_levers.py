"""The levers of `styleforge apply`'s speed on the CPU, one at a time, in one process.

    .venv/bin/python bench/apply_levers.py --model M.safetensors [--repeats 5]
    .venv/bin/python bench/apply_levers.py --quick          # smoke run: 1 repeat, no int8 gain

On one 1024×768 photo (a content photo resized to exactly that size), with the model's ONNX
export, each figure the median of ``--repeats`` timings after one untimed run:

- start-up: a bare interpreter, then `import` of what the ONNX path needs (numpy, PIL,
  onnxruntime) and of torch, each in a fresh process; and which heavy packages a whole
  `styleforge apply M.onnx` imports (torch, gradio, matplotlib, skimage must not be among them);
- onnxruntime: session creation and one network run per graph-optimisation level, and with an
  optimised graph saved once and loaded back; intra-op threads 1 and 2;
- int8: static QDQ quantisation (onnxruntime's quantiser, calibrated on crops of the model's
  own training photos, ``--calibration``): network time, PSNR of the restyled photo against
  float32 (target ≥ 35 dB), and the style gain of both on the held-out photos (``--held``,
  target: within 2 %);
- the network's cost: multiply-accumulates per painted pixel (from the graph's Conv nodes) and
  the time at paint sizes 384, 427, 512 and full size;
- decode: PIL `open` + `convert` of the JPEG, and with `draft` when ``--max-size 512`` asks for
  less; encode: PNG at compress levels 6 (Pillow's default), 3 and 1, and JPEG quality 95;
- tiles: a 3840×2160 photo painted at full size in 1024 px tiles, 1 and 4 tiles per run.

Prints one table; writes bench/out/apply_levers/levers.json. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PY = sys.executable
HEAVY = ("torch", "gradio", "matplotlib", "skimage", "scipy", "onnx")


def median_s(fn: Callable[[], object], repeats: int) -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` runs after one untimed run."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fresh_process_s(code: str, repeats: int) -> float:
    """Median wall seconds of ``python -c code`` in a fresh process."""
    return median_s(lambda: subprocess.run([PY, "-c", code], check=True), repeats)


def apply_imports(onnx_model: Path, photo: Path, out: Path) -> list[str]:
    """The heavy top-level packages a whole ``styleforge apply M.onnx`` imports."""
    done = subprocess.run(
        [
            PY,
            "-X",
            "importtime",
            "-m",
            "styleforge",
            "apply",
            str(onnx_model),
            str(photo),
            "-o",
            str(out / "imports.png"),
            "--overwrite",
            "-q",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    return sorted(n for n in names if n in HEAVY)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) of two float images in [0,1]."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def conv_macs(onnx_path: Path, height: int, width: int) -> dict[str, float]:
    """Multiply-accumulates of the graph's Conv nodes for a (1,3,height,width) image: the
    transformer's and the style predictor's (named so). Each Conv output is made a graph output
    and the graph is run once, so the shapes are the ones onnxruntime computes."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(onnx_path))
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv" and n.input[1] in weights]
    known = {o.name for o in model.graph.output}
    for node in convs:
        if node.output[0] not in known:
            model.graph.output.append(onnx.ValueInfoProto(name=node.output[0]))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options)
    feeds = {}
    for value in session.get_inputs():
        if value.name == "image":
            feeds[value.name] = np.zeros((1, 3, height, width), np.float32)
        else:
            shape = [d if isinstance(d, int) else 1 for d in value.shape]
            feeds[value.name] = np.ones(shape, np.float32)
    names = [node.output[0] for node in convs]
    shapes = dict(zip(names, (a.shape for a in session.run(names, feeds)), strict=True))
    total = {"transformer": 0.0, "predictor": 0.0}
    for node in convs:
        c_out, c_in_per_group, kh, kw = weights[node.input[1]]
        out_shape = shapes[node.output[0]]
        macs = out_shape[2] * out_shape[3] * c_out * c_in_per_group * kh * kw
        part = "predictor" if "predict" in node.name.lower() else "transformer"
        total[part] += float(macs)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a .safetensors model")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--photo", type=Path, default=DATA / "content" / "tubingen_neckarfront.jpg")
    parser.add_argument(
        "--calibration",
        type=Path,
        default=ROOT / "bench" / "out" / "stylizer_quality" / "train_photos",
        help="photos the model was trained on (int8 calibration crops)",
    )
    parser.add_argument(
        "--held",
        type=Path,
        default=ROOT / "bench" / "out" / "stylizer_quality" / "heldout",
        help="held-out photos for the int8 style gain",
    )
    parser.add_argument("--style-dir", type=Path, help="the model's collection (int8 gain)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "apply_levers")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    import onnxruntime as ort

    from styleforge import images
    from styleforge.infer.apply import predictor_square, stylize_array
    from styleforge.infer.export import export_model, open_exported
    from styleforge.infer.settings import Settings

    onnx_path = export_model(args.model, out / "model.onnx")
    photo_path = out / "photo_1024x768.jpg"
    Image.open(args.photo).convert("RGB").resize((1024, 768), Image.Resampling.LANCZOS).save(
        photo_path, quality=95
    )
    photo = images.pil_to_array(Image.open(photo_path).convert("RGB"))
    net = open_exported(onnx_path)
    paint = net.paint_size or 512
    work = images.resize_array(photo, *images.scaled_size(768, 1024, paint))
    square = predictor_square(photo)
    rows: dict[str, Any] = {}

    def row(name: str, seconds: float | None, note: str = "") -> None:
        rows[name] = {"s": seconds, "note": note}
        shown = "" if seconds is None else f"{1000 * seconds:8.1f} ms"
        print(f"| {name} | {shown} | {note} |", flush=True)

    print(f"model {args.model}, paints at {paint} px; {repeats} repeats\n")
    print("| lever | time | note |\n|---|---|---|")
    # --- start-up
    row("start-up: python -c pass", fresh_process_s("pass", repeats))
    row("start-up: import numpy, PIL.Image", fresh_process_s("import numpy, PIL.Image", repeats))
    row("start-up: import onnxruntime", fresh_process_s("import onnxruntime", repeats))
    row("start-up: import torch", fresh_process_s("import torch", repeats))
    heavy = apply_imports(onnx_path, photo_path, out)
    row("start-up: heavy packages `apply M.onnx` imports", None, ", ".join(heavy) or "none")
    # --- onnxruntime options
    levels = {
        "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }

    def session(level: Any, threads: int = 2, path: Path = onnx_path, save: Path | None = None):
        opts = ort.SessionOptions()
        opts.graph_optimization_level = level
        opts.intra_op_num_threads = threads
        if save is not None:
            opts.optimized_model_filepath = str(save)
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    feeds = {"image": work, "strength": np.ones(1, np.float32), "style_square": square}
    for name, level in levels.items():
        made = median_s(lambda level=level: session(level), repeats)
        s = session(level)
        ran = median_s(lambda s=s: s.run(None, feeds), repeats)
        row(f"onnxruntime {name}: session / network", made, f"network {1000 * ran:.1f} ms")
    saved = out / "model.optimized.onnx"
    session(levels["all"], save=saved)
    made = median_s(lambda: session(levels["disabled"], path=saved), repeats)
    s = session(levels["disabled"], path=saved)
    ran = median_s(lambda: s.run(None, feeds), repeats)
    row("onnxruntime: optimised graph saved, loaded as is", made, f"network {1000 * ran:.1f} ms")
    for threads in (1, 2):
        s = session(levels["all"], threads)
        row(
            f"onnxruntime all, {threads} thread(s): network",
            median_s(lambda s=s: s.run(None, feeds), repeats),
        )
    # --- the network's cost per pixel and paint size
    h, w = work.shape[-2:]
    macs = conv_macs(onnx_path, h, w)
    row(
        "network: Conv multiply-accumulates",
        None,
        f"transformer {macs['transformer'] / (h * w) / 1e3:.0f} k per painted pixel; "
        f"style predictor {macs['predictor'] / 1e6:.0f} M per photo (its 256² square)",
    )
    for size in (384, 427, 512, 0):
        options = Settings(paint_size=size)
        row(
            f"whole stylize_array, paint size {size or 'full'}",
            median_s(lambda o=options: stylize_array(net, photo, o), repeats),
        )
    # --- int8
    _int8(args, out, onnx_path, photo, net, row, repeats)
    # --- decode / encode
    row(
        "decode: open + convert 1024×768 JPEG",
        median_s(lambda: Image.open(photo_path).convert("RGB").load(), repeats),
    )

    def drafted() -> None:
        img = Image.open(photo_path)
        img.draft("RGB", (512, 512))
        img.convert("RGB").load()

    row("decode: with draft for --max-size 512", median_s(drafted, repeats))
    result = images.array_to_pil(stylize_array(net, photo, Settings()))
    for level in (6, 3, 1):
        buf = io.BytesIO()
        t = median_s(
            lambda level=level: result.save(io.BytesIO(), "PNG", compress_level=level), repeats
        )
        result.save(buf, "PNG", compress_level=level)
        row(f"encode: PNG compress level {level}", t, f"{len(buf.getvalue()) / 1e6:.2f} MB")
    buf = io.BytesIO()
    result.save(buf, "JPEG", quality=95)
    row(
        "encode: JPEG quality 95",
        median_s(lambda: result.save(io.BytesIO(), "JPEG", quality=95), repeats),
        f"{len(buf.getvalue()) / 1e6:.2f} MB",
    )
    # --- tiles
    big = images.resize_array(photo, 2160, 3840)
    for batch in (1, 4):
        options = Settings(paint_size=0, tile=1024, batch=batch)
        row(
            f"tiles: 3840×2160 at full size, {batch} tile(s) per run",
            median_s(lambda o=options: stylize_array(net, big, o), max(1, repeats // 2)),
        )
    (out / "levers.json").write_text(json.dumps(rows, indent=2))
    print(f"\nwrote {out / 'levers.json'}")


def _int8(args, out, onnx_path, photo, net, row, repeats) -> None:
    """Static QDQ int8 quantisation, calibrated on crops of the training photos."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from styleforge import images
    from styleforge.infer.apply import predictor_square, stylize_array
    from styleforge.infer.export import open_exported
    from styleforge.infer.settings import Settings

    photos = sorted(p for p in args.calibration.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    feeds = []
    rng = np.random.default_rng(0)
    for p in photos[:12]:
        x = images.pil_to_array(Image.open(p).convert("RGB"))
        x = images.resize_array(x, *images.scaled_size(*x.shape[-2:], net.paint_size or 512))
        h, w = x.shape[-2:]
        top, left = rng.integers(0, h - 255), rng.integers(0, w - 255)
        crop = np.ascontiguousarray(x[..., top : top + 256, left : left + 256])
        feeds.append(
            {"image": crop, "strength": np.ones(1, np.float32), "style_square": predictor_square(x)}
        )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    prepared = out / "model.prep.onnx"
    quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True)
    int8_path = out / "model.int8.onnx"
    start = time.perf_counter()
    quantize_static(
        str(prepared),
        str(int8_path),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
    made = time.perf_counter() - start
    import onnx

    model = onnx.load(str(int8_path))
    model.metadata_props.clear()
    for key, value in net.metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(int8_path))
    q = open_exported(int8_path)
    fp = stylize_array(net, photo, Settings())
    qq = stylize_array(q, photo, Settings())
    row(
        "int8 QDQ: whole stylize_array",
        median_s(lambda: stylize_array(q, photo, Settings()), repeats),
        f"PSNR vs float32 {psnr(fp, qq):.1f} dB (target ≥ 35); quantised in {made:.0f} s",
    )
    if args.quick or args.style_dir is None:
        return
    gains = {}
    for name, backend in (("float32", net), ("int8", q)):
        folder = out / f"held_{name}"
        folder.mkdir(exist_ok=True)
        for p in sorted(args.held.glob("*.jpg")):
            x = images.pil_to_array(Image.open(p).convert("RGB"))
            images.array_to_pil(stylize_array(backend, x, Settings())).save(
                folder / f"{p.stem}.png"
            )
        done = subprocess.run(
            [
                PY,
                "-m",
                "styleforge",
                "evaluate",
                str(folder),
                "--style",
                str(args.style_dir),
                "--content",
                str(args.held),
                "-o",
                str(out / f"eval_{name}"),
                "--json",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        gains[name] = json.loads(done.stdout)["summary"]["mean_style_gain"]
    change = gains["int8"] / gains["float32"] - 1
    row(
        "int8 QDQ: style gain on the held-out photos",
        None,
        f"{gains['int8']:.3f} vs float32 {gains['float32']:.3f} "
        f"({100 * change:+.1f} %, target ±2 %)",
    )


if __name__ == "__main__":
    main()
