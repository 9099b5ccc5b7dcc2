"""Restyling video: speed, flicker (warping error) and style kept, plain per-frame against the
flow-guided temporal blend, in one process.

    .venv/bin/python bench/video.py [MODEL] [--clip CLIP] [--alphas 0.5,0.6,0.7]
        [--style-dir DIR] [--seconds 3] [--fps 30] [--out bench/out/video]

MODEL: a ``.safetensors`` stylizer or its ``.onnx`` export, run on onnxruntime
(``Restyler.open(model, backend="onnx")``); without one, the zero-training model of
``--style-dir`` (the painter prior with the collection's mean style, what ``Restyler.preview``
runs) is written to ``OUT/preview.safetensors`` and used.

CLIP: a content clip; without one a 640×360 clip of ``--seconds`` s is made by panning and
zooming across scikit-image's astronaut photo, with a little sensor noise (σ = 2 of 255) so it
has real texture and real noise.

For plain per-frame restyling (α = 0) and each blend weight α it runs the whole
``restyle_video`` (decode, restyle, flow + blend, H.264 encode) and reports:

- frames per second of wall time (and the CPU share the process got: below ~90 % another job
  slowed it);
- the warping error (Lai et al. 2018; squared L2 over RGB in [0, 1], non-occluded pixels, flow of
  the input frames by DIS ``medium`` at full size) of the decoded output, the input's own as a
  floor, and blend / plain (target ≤ 0.5);
- the style gain (``styleforge evaluate``'s: Gram distance of the input frame to the style
  collection's centroid ÷ that of the output frame, VGG16 at 256 px) over every
  ``--gain-every``-th frame, and blend / plain (target: within 10 %, ≥ 0.9).

Also the cost of the flow alone at the clip's size: DIS ``fast`` at 320 px (the blend's) and
``medium`` at full size (the metric's), per frame pair (two flows and the consistency check).
Figures go to stdout and ``OUT/figures.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from PIL import Image

from styleforge.infer.restyle import Restyler
from styleforge.video import (
    DEFAULT_TEMPORAL,
    FlowEstimator,
    FlowSettings,
    open_clip,
    restyle_video,
    warping_error,
)
from styleforge.video.temporal import METRIC_FLOW

ROOT = Path(__file__).resolve().parents[1]
STYLE_DIR = ROOT / "src" / "styleforge" / "assets" / "hokusai_fuji"


def synth_clip(path: Path, seconds: float, fps: int, width: int = 640, height: int = 360) -> Path:
    """A pan + slow zoom across the astronaut photo with per-frame sensor noise, H.264 at
    ``fps``."""
    from skimage import data

    rng = np.random.default_rng(0)
    photo = data.astronaut()  # 512x512
    photo = cv2.resize(photo, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    n = round(seconds * fps)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"crf": "16"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(n):
            u = i / max(1, n - 1)
            zoom = 1.0 + 0.25 * u  # 1.0 -> 1.25
            cx, cy = 380 + 260 * u, 420 + 80 * np.sin(np.pi * u)
            # output pixel (x, y) <- photo (cx + (x - w/2) / zoom, cy + (y - h/2) / zoom)
            m = np.array(
                [[1 / zoom, 0, cx - width / 2 / zoom], [0, 1 / zoom, cy - height / 2 / zoom]]
            )
            frame = cv2.warpAffine(
                photo, m, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            )
            frame = np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8)
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            out.mux(stream.encode(vf))
        out.mux(stream.encode(None))
    return path


def preview_model(style_dir: Path, path: Path) -> Path:
    """The painter prior with ``style_dir``'s mean style, as a model file."""
    from styleforge import collection, images
    from styleforge.infer import prior
    from styleforge.infer.model_file import ModelInfo, write_model
    from styleforge.nets import PainterConfig

    pictures = [images.open_image(p) for p in collection.scan(style_dir).images]
    net = prior.painter_for(pictures)
    style = {"images": len(pictures), "preview": True, "folder_name": style_dir.name}
    return write_model(path, net.state_dict(), ModelInfo(net=PainterConfig(), style=style))


def flow_cost(frames: list[np.ndarray], settings: FlowSettings, pairs: int = 10) -> float:
    """Median ms for one frame pair: two flows and the consistency check."""
    est = FlowEstimator(settings)
    times = []
    for a, b in zip(frames[1 : pairs + 1], frames[:pairs], strict=True):
        t = time.perf_counter()
        est.flow_and_mask(a, b)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def style_gains(inputs: list[np.ndarray], outputs: list[np.ndarray], style_dir: Path,
                every: int) -> float:  # fmt: skip
    """Mean style gain (``styleforge evaluate``'s) of every ``every``-th output frame."""
    import torch

    from styleforge import collection
    from styleforge.metrics.evaluate import evaluate_images
    from styleforge.metrics.features import FeatureBank

    def tensor(frame: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255.0

    picks = range(0, len(inputs), every)
    coll = collection.scan(style_dir)
    bank = FeatureBank(None, "cpu")
    ev = evaluate_images(
        bank, list(coll.images), [tensor(outputs[i]) for i in picks],
        [tensor(inputs[i]) for i in picks],
    )  # fmt: skip
    return float(ev.summary["mean_style_gain"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, nargs="?", help=".safetensors stylizer or .onnx")
    parser.add_argument("--clip", type=Path, help="content clip (default: synthesized)")
    parser.add_argument("--alphas", default=f"0.4,{DEFAULT_TEMPORAL},0.6", help="blend weights")
    parser.add_argument("--style-dir", type=Path, default=STYLE_DIR, help="the model's style")
    parser.add_argument("--seconds", type=float, default=3.0, help="synthesized clip length")
    parser.add_argument("--fps", type=int, default=30, help="synthesized clip frame rate")
    parser.add_argument("--gain-every", type=int, default=10, help="frames between gain samples")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "video")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    src = args.clip or synth_clip(args.out / "content.mp4", args.seconds, args.fps)
    if args.model is None:
        args.model = preview_model(args.style_dir, args.out / "preview.safetensors")
    inputs = list(open_clip(src).frames())
    h, w = inputs[0].shape[:2]
    print(f"clip: {src} ({w}x{h}, {len(inputs)} frames); model: {args.model} (onnx)")
    print(f"cores: {os.cpu_count()}")

    restyler = Restyler.open(args.model, backend="onnx")
    restyler(Image.fromarray(inputs[0]))  # warm-up (export, sessions)
    floor = warping_error(inputs, inputs)
    blend_flow, metric_flow = FlowSettings(), METRIC_FLOW
    figures: dict[str, Any] = {
        "clip": str(src), "size": [w, h], "frames": len(inputs), "model": str(args.model),
        "input_warping_error": floor,
        "flow_ms_blend": flow_cost(inputs, blend_flow),
        "flow_ms_metric": flow_cost(inputs, metric_flow),
        "runs": {},
    }  # fmt: skip
    alphas = [0.0, *(a for a in map(float, args.alphas.split(",")) if a != 0.0)]
    for alpha in alphas:
        dst = args.out / f"restyled_a{round(alpha * 100):02d}.mp4"
        cpu0, wall0 = time.process_time(), time.perf_counter()
        summary = restyle_video(restyler, src, dst, temporal=alpha, progress=False, overwrite=True)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        outputs = list(open_clip(dst).frames())
        run = {
            "fps": summary.frames_per_second,
            "cpu_share": cpu / wall / (os.cpu_count() or 1),
            "warping_error": warping_error(inputs, outputs),
            "style_gain": style_gains(inputs, outputs, args.style_dir, args.gain_every),
        }
        figures["runs"][str(alpha)] = run
        print(f"α={alpha:.2f}: {run['fps']:.2f} frames/s (CPU share {run['cpu_share']:.0%}), "
              f"warping error {run['warping_error']:.5f}, style gain {run['style_gain']:.3f}",
              flush=True)  # fmt: skip

    plain = figures["runs"]["0.0"]
    print(f"\nflow per frame pair at {w}x{h}: blend (DIS fast, 320 px) "
          f"{figures['flow_ms_blend']:.1f} ms; metric (DIS medium, full) "
          f"{figures['flow_ms_metric']:.1f} ms")  # fmt: skip
    print(f"input's own warping error (floor): {floor:.5f}\n")
    print("| α | frames/s | warping error | × plain | style gain | × plain |")
    print("|---|---|---|---|---|---|")
    for alpha in alphas:
        r = figures["runs"][str(alpha)]
        print(f"| {alpha:.2f} | {r['fps']:.2f} | {r['warping_error']:.5f} | "
              f"{r['warping_error'] / plain['warping_error']:.2f} | {r['style_gain']:.3f} | "
              f"{r['style_gain'] / plain['style_gain']:.3f} |")  # fmt: skip
    default = figures["runs"].get(str(DEFAULT_TEMPORAL))
    if default is not None:
        ratio = default["warping_error"] / plain["warping_error"]
        gain = default["style_gain"] / plain["style_gain"]
        print(f"\ndefault α={DEFAULT_TEMPORAL}: warping error {ratio:.2f}× plain "
              f"(target ≤ 0.5: {'met' if ratio <= 0.5 else 'MISSED'}), style gain {gain:.3f}× "
              f"(target ≥ 0.9: {'met' if gain >= 0.9 else 'MISSED'}), speed "
              f"{default['fps'] / plain['fps']:.2f}× plain")  # fmt: skip
    (args.out / "figures.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
