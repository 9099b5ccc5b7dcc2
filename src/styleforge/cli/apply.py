"""``styleforge apply``: restyle photos (or a clip) with a trained model, its ONNX export, or
(``--style-from``) straight from the painter prior.

With an ``.onnx`` model nothing here imports torch: it runs on onnxruntime, numpy and PIL.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from styleforge.cli.common import (
    Subparsers,
    add_common,
    fraction,
    max_pixels,
    note,
    number_in,
    positive_int,
)
from styleforge.errors import UserError

if TYPE_CHECKING:
    from styleforge.infer.apply import ApplySummary
    from styleforge.infer.backends import Backend
    from styleforge.infer.restyle import Restyler
    from styleforge.infer.settings import Settings

_strength = number_in(0.0, 2.0)
_tone = number_in(-1.0, 1.0)
_temporal = number_in(0.0, 0.95)
_seconds = number_in(0.0, 1e7)


def add_parser(sub: Subparsers) -> None:
    """The ``apply`` sub-command and its flags."""
    p = sub.add_parser(
        "apply",
        help="restyle photos with a trained model (fast, any size)",
        description="Restyle photos with a model from `styleforge train` (or its ONNX export).",
    )
    _add_inputs(p)
    _add_look(p)
    _add_work(p)
    _add_video(p)
    add_common(p)


def _add_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model", type=Path, nargs="?",
        help="model file (.safetensors, or .onnx from export); left out with --style-from",
    )  # fmt: skip
    p.add_argument(
        "inputs", nargs="*", type=Path,
        help="photo(s) or folder(s) of photos, or one clip (.mp4, .mov, .webm, .mkv, .avi, an "
        "animated .gif)",
    )  # fmt: skip
    p.add_argument(
        "-o", "--output", type=Path, required=True,
        help="output image or folder; for a clip a video file (.mp4, .mov, .webm, .mkv, .gif) "
        "or a new folder of frames",
    )  # fmt: skip
    p.add_argument(
        "--style-from", type=Path, metavar="DIR",
        help="no model: restyle in the look of this folder of pictures at once, straight "
        "from the painter prior (a preview of what `train` will learn)",
    )  # fmt: skip


def _add_look(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--strength", type=_strength,
        help="0 (the photo) .. 1 (the style, default) .. 2 (more paint; painter-prior models)",
    )  # fmt: skip
    p.add_argument(
        "--paint-size", type=int, metavar="PX",
        help="long side the network paints at; bigger photos are painted at it and scaled up, "
        "so strokes keep their size (default: the scale the model learned at, 427 for the quick "
        "preset; 0: full size)",
    )  # fmt: skip
    p.add_argument(
        "--preserve-colors", action="store_true", default=None, help="keep the photo's colours"
    )
    p.add_argument(
        "--colors", "--color-amount", type=fraction, metavar="A", dest="colors",
        help="colours kept: this much of the photo's colours, 0..1 (--preserve-colors: 1)",
    )  # fmt: skip
    p.add_argument("--tone", type=_tone, help="contrast curve: -1 softer .. 0 (default) .. 1")
    p.add_argument(
        "--no-taste", action="store_true",
        help="ignore the taste `styleforge tune` stored in the model (by default apply uses "
        "it; the flags above override it one by one)",
    )  # fmt: skip


def _add_work(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-size", type=positive_int, help="downscale the long side to this first")
    p.add_argument(
        "--tile", type=int, default=None,
        help="tile side in px for large images (default: automatic; 0 = never tile)",
    )  # fmt: skip
    p.add_argument("--overlap", type=int, default=64, help="tile overlap in px (default 64)")
    p.add_argument("--batch", type=positive_int, default=1, help="tiles per pass (default 1)")
    p.add_argument(
        "--backend", choices=("torch", "onnx"),
        help="default: onnx on the CPU (a .safetensors model is exported once, into the user "
        "cache), torch on a GPU",
    )  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument(
        "--skip-existing", action="store_true", help="keep existing outputs, do the rest"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def settings_from(args: argparse.Namespace) -> Settings:
    """What the flags set now (``None`` where a flag is left out: the model's taste or its
    default decides, see :mod:`styleforge.infer.restyle`)."""
    from styleforge.infer.settings import Settings

    return Settings(
        strength=args.strength, colors=1.0 if args.preserve_colors else args.colors,
        tone=args.tone, paint_size=args.paint_size, max_size=args.max_size, tile=args.tile,
        overlap=args.overlap, batch=args.batch,
    )  # fmt: skip


def _add_video(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("clips")
    g.add_argument(
        "--temporal", type=_temporal, metavar="A",
        help="against flicker: each frame is blended with the previous result carried along "
        "the motion (optical flow), this much of it where the motion is trusted, and denoised "
        "along the motion before restyling; 0 restyles each frame alone (0.5)",
    )  # fmt: skip
    g.add_argument("--start", type=_seconds, metavar="S", help="seconds into the clip to begin")
    g.add_argument("--end", type=_seconds, metavar="S", help="seconds into the clip to stop")
    g.add_argument("--no-audio", action="store_true", help="leave the clip's sound out")


def _model_and_inputs(args: argparse.Namespace) -> tuple[Path | None, list[Path]]:
    """(the model, ``None`` with ``--style-from``; the photos and folders to restyle)."""
    inputs: list[Path] = list(args.inputs)
    model: Path | None = args.model
    if args.style_from is not None:
        if args.backend == "onnx":
            raise UserError("--style-from runs the torch backend; leave out --backend onnx")
        return None, [model, *inputs] if model is not None else inputs
    if model is None or not inputs:
        raise UserError("give a model file and the photos to restyle (or --style-from DIR)")
    return model, inputs


def run(args: argparse.Namespace) -> int:
    """``styleforge apply MODEL INPUT... -o OUT`` (or ``--style-from DIR INPUT... -o OUT``); under
    torchrun every process restyles its share of the files."""
    from styleforge.distributed import world
    from styleforge.infer import backends
    from styleforge.infer.restyle import Restyler
    from styleforge.outputs import list_inputs, plan_outputs

    model, inputs = _model_and_inputs(args)
    if not inputs:
        raise UserError("give the photos to restyle")
    limit = max_pixels(args)
    settings = settings_from(args)
    clip = _clip_of(args, inputs)
    if model is None:
        restyler = Restyler.preview(args.style_from, device=args.device, max_pixels=limit)
    else:
        sharded = world().distributed
        backend = backends.choose_backend(model, args.backend, args.device, sharded=sharded)
        if sharded and clip is None:
            return _apply_sharded(args, model, backend, inputs, settings, limit)
        restyler = Restyler.open(model, backend=backend, device=args.device,
                                 use_taste=not args.no_taste)  # fmt: skip
        _announce(model, restyler.taste)
    if clip is not None:
        return _apply_clip(args, restyler, clip, settings)
    pairs = plan_outputs(list_inputs(inputs), args.output)
    summary = restyler.files(
        pairs, settings, overwrite=args.overwrite, skip_existing=args.skip_existing,
        max_pixels=limit, progress=not args.quiet,
    )  # fmt: skip
    _report_failed(summary)
    if len(pairs) == 1 and summary.done:
        note(f"{pairs[0][0]} -> {summary.done[0]}")
    else:
        note(summary.line())
    return summary.exit_code


def _clip_of(args: argparse.Namespace, inputs: list[Path]) -> Path | None:
    """The clip to restyle (a clip comes alone), or ``None`` for photos."""
    from styleforge.collection import is_clip

    clips = [p for p in inputs if is_clip(p)]
    if not clips:
        for flag in ("temporal", "start", "end"):
            if getattr(args, flag) is not None:
                raise UserError(f"--{flag} is for clips; {inputs[0]} is not one")
        return None
    if len(inputs) > 1:
        raise UserError(f"restyle a clip on its own: one clip per command ({clips[0]})")
    return clips[0]


def _apply_clip(
    args: argparse.Namespace, restyler: Restyler, clip: Path, settings: Settings
) -> int:
    """Restyle one clip into ``-o``: a video file, a ``.gif``, a new folder of frames (or one
    written before: ``frame_*.png``), or an existing folder, under the clip's name."""
    from styleforge.video import DEFAULT_DENOISE, DEFAULT_TEMPORAL, restyle_video

    out: Path = args.output
    if out.is_dir() and not any(out.glob("frame_*.png")):
        out = out / clip.name
    temporal = DEFAULT_TEMPORAL if args.temporal is None else args.temporal
    summary = restyle_video(
        restyler, clip, out, settings,
        temporal=temporal, denoise=DEFAULT_DENOISE if temporal > 0 else 0.0,  # 0: all off
        start=args.start, end=args.end, audio=not args.no_audio, progress=not args.quiet,
        overwrite=args.overwrite,
    )  # fmt: skip
    note(f"{clip} -> {summary.output}: {summary.line()}")
    return 0


def _announce(model: Path, taste: Settings | None) -> None:
    if taste is not None:
        note(f"{model}: using its taste ({taste.describe()}); --no-taste ignores it")


def _apply_sharded(
    args: argparse.Namespace, model: Path, backend: Backend, inputs: list[Path],
    settings: Settings, limit: int,
) -> int:  # fmt: skip
    """Each torchrun process restyles its share of the files; process 0 reports for all."""
    from styleforge.infer import backends
    from styleforge.infer.header import read_taste
    from styleforge.outputs import list_inputs, plan_outputs

    taste = None if args.no_taste else read_taste(model)
    _announce(model, taste)
    pairs = plan_outputs(list_inputs(inputs), args.output)
    shared = backends.apply_sharded(
        model, backend, pairs, settings.over(taste), args.device, overwrite=args.overwrite,
        max_pixels=limit,
    )  # fmt: skip
    if shared is None:  # not process 0: it reports for all
        return 0
    _report_failed(shared.total)
    note(shared.line())
    return shared.total.exit_code


def _report_failed(summary: ApplySummary) -> None:
    for src, reason in summary.failed:
        note(f"failed {src}: {reason}")
