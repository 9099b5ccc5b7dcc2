"""Restyling video: speed, flicker (warping error) and style kept, frame by frame against the
flow-guided temporal path, on a clean, a noisy and an occlusion clip, in one process.

    .venv/bin/python bench/video.py [MODEL] [--clip CLIP] [--clips clean,noisy,occlusion]
        [--style-dir DIR] [--seconds 3] [--fps 30] [--size 640x360] [--sigma 3] [--hd S]
        [--out bench/out/video]

MODEL: a ``.safetensors`` stylizer or its ``.onnx`` export, run on onnxruntime
(``Restyler.open(model, backend="onnx")``); without one, the zero-training model of
``--style-dir`` (the painter prior with the collection's mean style, what ``Restyler.preview``
runs) is written to ``OUT/preview.safetensors`` and used.

Clips, made here at ``--size`` for ``--seconds`` s (H.264, crf 10 so the noise survives):

- ``clean``: a pan and slow zoom across scikit-image's astronaut photo;
- ``noisy``: the same with fresh Gaussian sensor noise of ``--sigma`` (of 255) in every frame,
  what a phone records;
- ``occlusion``: a textured disc (the cat's face) crossing a still, lightly noisy background
  (the coffee photo), so pixels are covered and uncovered every frame;

and ``--clip``, a clip of your own. Each runs through the whole ``restyle_video`` (decode,
restyle, flow + blend, H.264 encode) three ways: frame by frame (α = 0, β = 0), the output
blend alone (α default, β = 0: the temporal path before issue 46) and the defaults (the blend
and the input denoise, β default). Reported per run:

- frames per second of wall time (and the CPU share the process got: below ~90 % of a core,
  another job slowed it);
- the warping error (Lai et al. 2018; squared L2 over RGB in [0, 1], non-occluded pixels, flow of
  the input frames by DIS ``medium`` at full size) of the decoded output, the input's own as a
  floor, and × frame by frame (target on the noisy clip: ≤ 0.4);
- the style gain (``styleforge evaluate``'s: Gram distance of the input frame to the style
  collection's centroid ÷ that of the output frame, VGG16 at 256 px) and the change from the
  input (mean |output − input| over RGB in [0, 1]), over every ``--gain-every``-th frame
  (target: the defaults' change within 10 % of the blend alone's).

Also the cost of the flow alone at the clip's size: DIS ``fast`` at 320 px (the blend's) and
``medium`` at full size (the metric's), per frame pair (two flows and the consistency check),
and with ``--hd S`` the whole ``styleforge apply MODEL clip.mp4 --backend onnx`` on S seconds
of a 1920×1080 noisy pan in a child process: frames/s, its peak RSS and the progress bar's
ETA once 10 % of the frames are done against the time the rest took (target: within 20 %).
Figures go to stdout and ``OUT/figures.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from PIL import Image

from styleforge.infer.restyle import Restyler
from styleforge.video import (
    DEFAULT_DENOISE,
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


def _photo(name: str, side: int) -> np.ndarray:
    """One of scikit-image's photos (RGB uint8), resized to ``side``×``side``."""
    from skimage import data

    return cv2.resize(getattr(data, name)(), (side, side), interpolation=cv2.INTER_CUBIC)


def _write(path: Path, frames: Iterator[np.ndarray], fps: int, width: int, height: int) -> Path:
    """Frames (RGB uint8 (H, W, 3)) as H.264 at ``fps``, crf 10 (sensor noise survives, as at
    a phone's bit rate)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"crf": "10"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i, frame in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            out.mux(stream.encode(vf))
        out.mux(stream.encode(None))
    return path


def _noisy(frame: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """``frame`` with fresh Gaussian sensor noise of ``sigma`` levels of 255 (0: as is)."""
    if sigma <= 0:
        return frame
    return np.clip(frame + rng.normal(0, sigma, frame.shape), 0, 255).astype(np.uint8)


def synth_clip(path: Path, seconds: float, fps: int, width: int = 640, height: int = 360,
               sigma: float = 0.0) -> Path:  # fmt: skip
    """A pan + slow zoom across the astronaut photo, with fresh sensor noise of ``sigma``
    levels of 255 in every frame (0: none; a phone's is 2–4), H.264 at ``fps``."""
    rng = np.random.default_rng(0)
    photo = _photo("astronaut", 1024)
    n = round(seconds * fps)
    scale = width / 640  # the same view at any size

    def frames() -> Iterator[np.ndarray]:
        for i in range(n):
            u = i / max(1, n - 1)
            zoom = (1.0 + 0.25 * u) * scale  # 1.0 -> 1.25
            cx, cy = 380 + 260 * u, 420 + 80 * np.sin(np.pi * u)
            # output pixel (x, y) <- photo (cx + (x - w/2) / zoom, cy + (y - h/2) / zoom)
            m = np.array(
                [[1 / zoom, 0, cx - width / 2 / zoom], [0, 1 / zoom, cy - height / 2 / zoom]]
            )
            frame = cv2.warpAffine(
                photo, m, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            )
            yield _noisy(frame, rng, sigma)

    return _write(path, frames(), fps, width, height)


def occlusion_clip(path: Path, seconds: float, fps: int, width: int = 640, height: int = 360,
                   sigma: float = 2.0) -> Path:  # fmt: skip
    """A still background (a crop of the coffee photo) with a textured disc (the cat's face)
    crossing it left to right, so pixels are covered and uncovered every frame; fresh sensor
    noise of ``sigma``."""
    rng = np.random.default_rng(1)
    background = cv2.resize(_photo("coffee", 1024)[200:776], (width, height))
    r = height // 4
    face = cv2.resize(_photo("chelsea", 512)[60:360, 80:380], (2 * r, 2 * r))
    disc = np.zeros((2 * r, 2 * r), np.uint8)
    cv2.circle(disc, (r, r), r - 1, 1, -1)
    n = round(seconds * fps)

    def frames() -> Iterator[np.ndarray]:
        for i in range(n):
            frame = background.copy()
            x = round(-r + (width + 2 * r) * i / max(1, n - 1)) - r
            y = height // 2 - r
            x0, x1 = max(0, x), min(width, x + 2 * r)
            if x1 > x0:
                sub = frame[y : y + 2 * r, x0:x1]
                m = disc[:, x0 - x : x1 - x, None].astype(bool)
                sub[...] = np.where(m, face[:, x0 - x : x1 - x], sub)
            yield _noisy(frame, rng, sigma)

    return _write(path, frames(), fps, width, height)


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


#: The runs compared on each clip: (name, temporal α, input denoise β).
RUNS = (
    ("frame by frame", 0.0, 0.0),
    ("blend only", DEFAULT_TEMPORAL, 0.0),
    ("default", DEFAULT_TEMPORAL, DEFAULT_DENOISE),
)


def bench_clip(restyler: Restyler, src: Path, out: Path, style_dir: Path,
               gain_every: int) -> dict[str, Any]:  # fmt: skip
    """Every run of :data:`RUNS` on the clip ``src``: frames/s, warping error, style gain."""
    inputs = list(open_clip(src).frames())
    h, w = inputs[0].shape[:2]
    figures: dict[str, Any] = {
        "clip": str(src), "size": [w, h], "frames": len(inputs),
        "input_warping_error": warping_error(inputs, inputs), "runs": {},
    }  # fmt: skip
    print(f"\n{src.name}: {w}x{h}, {len(inputs)} frames; the input's own warping error "
          f"(floor) {figures['input_warping_error']:.5f}", flush=True)  # fmt: skip
    for name, alpha, beta in RUNS:
        dst = out / f"{src.stem}_{name.replace(' ', '_')}.mp4"
        cpu0, wall0 = time.process_time(), time.perf_counter()
        summary = restyle_video(
            restyler, src, dst, temporal=alpha, denoise=beta, progress=False, overwrite=True
        )
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        outputs = list(open_clip(dst).frames())
        run = {
            "temporal": alpha, "denoise": beta, "fps": summary.frames_per_second,
            "cpu_share": cpu / wall / (os.cpu_count() or 1),
            "warping_error": warping_error(inputs, outputs),
            "style_gain": style_gains(inputs, outputs, style_dir, gain_every),
            "change": change(inputs, outputs, gain_every),
        }  # fmt: skip
        figures["runs"][name] = run
        print(f"  {name} (α={alpha:.2f}, β={beta:.2f}): {run['fps']:.2f} frames/s "
              f"(CPU share {run['cpu_share']:.0%}), warping error {run['warping_error']:.5f}, "
              f"style gain {run['style_gain']:.3f}, change {run['change']:.3f}",
              flush=True)  # fmt: skip
    return figures


def hd_run(model: Path, out: Path, seconds: float, fps: int) -> dict[str, Any]:
    """``styleforge apply MODEL clip.mp4 --backend onnx`` on a 1920×1080 noisy pan of
    ``seconds`` s, in a child process: frames/s of the whole command and its peak RSS."""
    import resource
    import subprocess
    import sys

    src = synth_clip(out / "hd.mp4", seconds, fps, 1920, 1080, sigma=3.0)
    frames = round(seconds * fps)
    cmd = [str(Path(sys.executable).with_name("styleforge")), "apply", str(model), str(src), "-o",
           str(out / "hd_restyled.mp4"), "--backend", "onnx", "--overwrite"]  # fmt: skip
    wall0 = time.perf_counter()
    done = subprocess.run(cmd, check=True, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - wall0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB -> MiB (Linux)
    eta = eta_check(done.stderr)
    print(f"\n1080p: {frames} frames in {wall:.1f} s: {frames / wall:.2f} frames/s, "
          f"peak RSS {rss:.0f} MiB; {eta['line']}", flush=True)  # fmt: skip
    return {"frames": frames, "seconds": wall, "fps": frames / wall, "peak_rss_mib": rss, **eta}


def _clock(text: str) -> float:
    """Seconds of a tqdm clock ``[H:]MM:SS``."""
    seconds = 0.0
    for part in text.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def eta_check(stderr: str, at: float = 0.1) -> dict[str, Any]:
    """What the progress bar promised once ``at`` of the frames were done, against what
    followed: the bar's remaining time then, the time the rest really took (the bar's own
    clock at its end) and their ratio (target: within 20 %)."""
    import re

    ticks = [
        (int(m[1]), int(m[2]), _clock(m[3]), _clock(m[4]))
        for m in re.finditer(r"(\d+)/(\d+) \[([\d:]+)<([\d:]+)", stderr)
    ]  # fmt: skip
    if not ticks:
        return {"line": "no progress bar seen"}
    total = ticks[-1][1]
    first = next(t for t in ticks if t[0] >= at * total)
    last = max(ticks, key=lambda t: (t[0], t[2]))
    promised, took = first[3], last[2] - first[2]
    ratio = promised / took if took > 0 else float("nan")
    line = (f"at {first[0]}/{total} frames the bar said {promised:.0f} s left; the rest took "
            f"{took:.0f} s ({ratio:.2f}×, target within 20 %: "
            f"{'met' if abs(ratio - 1) <= 0.2 else 'MISSED'})")  # fmt: skip
    return {"line": line, "eta_promised_s": promised, "eta_took_s": took, "eta_ratio": ratio}


def noisy_verdict(runs: dict[str, Any]) -> str:
    """The noisy clip's figures against the targets of issue 46."""
    ratio = runs["default"]["warping_error"] / runs["frame by frame"]["warping_error"]
    gain = runs["default"]["change"] / runs["blend only"]["change"]
    return (
        f"\nnoisy clip, defaults (α={DEFAULT_TEMPORAL}, β={DEFAULT_DENOISE}): warping error "
        f"{ratio:.2f}× frame by frame (target ≤ 0.4: {'met' if ratio <= 0.4 else 'MISSED'}), "
        f"change from the input {gain:.3f}× the blend alone's (target within 10 %: "
        f"{'met' if abs(gain - 1) <= 0.1 else 'MISSED'})"
    )


def change(inputs: list[np.ndarray], outputs: list[np.ndarray], every: int) -> float:
    """The style's change from the input: mean |output − input| over RGB in [0, 1], every
    ``every``-th frame."""
    picks = range(0, len(inputs), every)
    diffs = [np.abs(outputs[i].astype(np.float32) - inputs[i]).mean() / 255 for i in picks]
    return float(np.mean(diffs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, nargs="?", help=".safetensors stylizer or .onnx")
    parser.add_argument("--clip", type=Path, help="also measure this content clip")
    parser.add_argument("--style-dir", type=Path, default=STYLE_DIR, help="the model's style")
    parser.add_argument("--seconds", type=float, default=3.0, help="synthesized clip length")
    parser.add_argument("--fps", type=int, default=30, help="synthesized clip frame rate")
    parser.add_argument("--size", default="640x360", help="synthesized clip size, WxH")
    parser.add_argument("--sigma", type=float, default=3.0, help="noisy clip's noise (of 255)")
    parser.add_argument("--gain-every", type=int, default=10, help="frames between gain samples")
    parser.add_argument("--clips", default="clean,noisy,occlusion", help="synthesized clips")
    parser.add_argument("--hd", type=float, default=0.0, metavar="S",
                        help="also time S seconds of a 1920x1080 clip (apply, ONNX)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "video")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.lower().split("x"))
    clip_args = (args.seconds, args.fps, width, height)
    makers = {
        "clean": lambda: synth_clip(args.out / "clean.mp4", *clip_args, sigma=0.0),
        "noisy": lambda: synth_clip(args.out / "noisy.mp4", *clip_args, sigma=args.sigma),
        "occlusion": lambda: occlusion_clip(args.out / "occlusion.mp4", *clip_args),
    }
    clips = [makers[name]() for name in args.clips.split(",")]
    clips += [args.clip] if args.clip else []
    if args.model is None:
        args.model = preview_model(args.style_dir, args.out / "preview.safetensors")
    print(f"model: {args.model} (onnx); cores: {os.cpu_count()}")
    restyler = Restyler.open(args.model, backend="onnx")
    restyler(Image.fromarray(np.zeros((64, 64, 3), np.uint8)))  # warm-up (export, sessions)
    frame_pair = list(open_clip(clips[0]).frames())[:11]
    figures: dict[str, Any] = {
        "model": str(args.model),
        "flow_ms_blend": flow_cost(frame_pair, FlowSettings()),
        "flow_ms_metric": flow_cost(frame_pair, METRIC_FLOW),
        "clips": {c.stem: bench_clip(restyler, c, args.out, args.style_dir, args.gain_every)
                  for c in clips},
    }  # fmt: skip
    print(f"\nflow per frame pair at {width}x{height}: blend (DIS fast, 320 px) "
          f"{figures['flow_ms_blend']:.1f} ms; metric (DIS medium, full) "
          f"{figures['flow_ms_metric']:.1f} ms\n")  # fmt: skip
    print("| clip | run | frames/s | warping error | × frame by frame | style gain | × f-b-f | "
          "change |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for stem, clip in figures["clips"].items():
        plain = clip["runs"]["frame by frame"]
        for name, run in clip["runs"].items():
            we, gain = run["warping_error"], run["style_gain"]
            print(f"| {stem} | {name} | {run['fps']:.2f} | {we:.5f} | "
                  f"{we / plain['warping_error']:.2f} | {gain:.3f} | "
                  f"{gain / plain['style_gain']:.3f} | {run['change']:.3f} |")  # fmt: skip
    noisy = figures["clips"].get("noisy")
    if noisy is not None:
        print(noisy_verdict(noisy["runs"]))
    if args.hd > 0:
        figures["hd"] = hd_run(args.model, args.out, args.hd, args.fps)
    (args.out / "figures.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
