"""Command line: arguments -> config -> library call, nothing else.

A user mistake prints one line on stderr and exits with code 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from styleforge import __version__
from styleforge.configs import DEVICE_CHOICES
from styleforge.errors import EXIT_FAULT, EXIT_USAGE, JobFailed, ReportedElsewhere, UserError
from styleforge.fileio import NO_SPACE

#: Training steps of ``styleforge demo`` (a few minutes on a 2-core CPU).
DEMO_STEPS = 300
#: Sampler training steps of ``styleforge demo``.
DEMO_SAMPLER_STEPS = 500


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (exit code 2) instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _floats(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0.7,0.3, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected non-negative numbers like 0.7,0.3, got {text!r}"
        )
    return values


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="default: auto")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--max-pixels", type=_positive_int, default=None,
        help="refuse input images larger than this many pixels (default: 50 million)",
    )  # fmt: skip


def _number_in(low: float, high: float) -> Callable[[str], float]:
    """argparse type: a number in [low, high]."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not low <= value <= high:
            message = f"expected a number from {low:g} to {high:g}, got {text}"
            raise argparse.ArgumentTypeError(message)
        return value

    return parse


_fraction = _number_in(0.0, 1.0)
_strength = _number_in(0.0, 2.0)
_tone = _number_in(-1.0, 1.0)


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number ≥ 0, got {value}")
    return value


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("style_dir", type=Path, help="folder of pictures whose style to learn")
    p.add_argument("-o", "--output", type=Path, required=True, help="model file (.safetensors)")
    p.add_argument(
        "--content", type=Path,
        help="folder of your own photos to train on (default: a few built-in sample photos)",
    )  # fmt: skip
    p.add_argument(
        "--preset", choices=("quick", "standard", "max"), default="quick",
        help="quick: ~15 min on a laptop CPU; standard, max: bigger models for a GPU",
    )  # fmt: skip
    p.add_argument(
        "--from-scratch", action="store_true",
        help="train the classic network from nothing instead of fine-tuning the painter prior",
    )  # fmt: skip
    p.add_argument("--steps", type=_positive_int, help="training steps (default: by preset)")
    p.add_argument("--size", type=_positive_int, help="training crop size in px (by preset)")
    p.add_argument("--batch", type=_positive_int, help="images per step (by preset)")
    p.add_argument("--lr", type=_non_negative, help="generator learning rate (D gets lr/10)")
    p.add_argument("--style-weight", type=_non_negative, help="Gram style loss weight")
    p.add_argument("--content-weight", type=_non_negative, help="content loss weight")
    p.add_argument("--adv-weight", type=_non_negative, help="adversarial loss weight")
    p.add_argument(
        "--gan-loss", choices=("hinge", "bce", "minimax", "lsgan"),
        help="adversarial loss (default: hinge; bce is the non-saturating form)",
    )  # fmt: skip
    p.add_argument("--run-dir", type=Path, help="previews, logs, checkpoints (default MODEL.run/)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--preview-every", type=_positive_int, help="steps between preview grids")
    p.add_argument("--checkpoint-every", type=_positive_int, help="steps between checkpoints")
    p.add_argument("--compile", action="store_true", help="torch.compile the generator (CUDA)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _add_common(p)


def _add_apply_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model", type=Path, nargs="?",
        help="model file (.safetensors, or .onnx from export); left out with --style-from",
    )  # fmt: skip
    p.add_argument("inputs", nargs="*", type=Path, help="photo(s) or folder(s) of photos")
    p.add_argument("-o", "--output", type=Path, required=True, help="output image or folder")
    p.add_argument(
        "--style-from", type=Path, metavar="DIR",
        help="no model: restyle in the look of this folder of pictures at once, straight "
        "from the painter prior (a preview of what `train` will learn)",
    )  # fmt: skip
    p.add_argument(
        "--strength", type=_strength,
        help="0 (the photo) .. 1 (the style, default) .. 2 (more paint; painter-prior models)",
    )  # fmt: skip
    p.add_argument(
        "--paint-size", type=int, metavar="PX",
        help="long side the network paints at; bigger photos are painted at it and scaled up, "
        "so strokes keep their size (default: 512 for painter-prior models; 0: full size)",
    )  # fmt: skip
    p.add_argument(
        "--preserve-colors", action="store_true", default=None, help="keep the photo's colours"
    )
    p.add_argument(
        "--color-amount", type=_fraction, metavar="A",
        help="keep this much of the photo's colours, 0..1 (--preserve-colors: 1)",
    )  # fmt: skip
    p.add_argument("--tone", type=_tone, help="contrast curve: -1 softer .. 0 (default) .. 1")
    p.add_argument(
        "--no-taste", action="store_true",
        help="ignore the taste `styleforge tune` stored in the model (by default apply uses "
        "it; the flags above override it one by one)",
    )  # fmt: skip
    p.add_argument("--max-size", type=_positive_int, help="downscale the long side to this first")
    p.add_argument(
        "--tile", type=int, default=None,
        help="tile side in px for large images (default: automatic; 0 = never tile)",
    )  # fmt: skip
    p.add_argument("--overlap", type=int, default=64, help="tile overlap in px (default 64)")
    p.add_argument("--batch", type=_positive_int, default=1, help="tiles per pass (default 1)")
    p.add_argument(
        "--backend", choices=("torch", "onnx"),
        help="default: onnx for a .onnx model, else torch",
    )  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument(
        "--skip-existing", action="store_true", help="keep existing outputs, do the rest"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _add_common(p)


def _add_tune_parser(sub: Any) -> None:
    from styleforge.taste_commands import PICKS_HELP

    tu = sub.add_parser(
        "tune",
        help="rounds of picks among variants of your photos; apply then follows your taste",
        description="Show a numbered grid of variants of the photos (strength, stroke scale, "
        f"colours kept, tone) and type the ones you like: {PICKS_HELP}. Each next grid explores "
        "around what you liked (a Gaussian-process preference model, expected improvement). "
        "After every round the model file's taste is updated (same weights); `apply` uses it "
        "unless --no-taste. Running tune again continues the rounds stored in the model.",
    )  # fmt: skip
    tu.add_argument("model", type=Path, help="model file (.safetensors) from `styleforge train`")
    tu.add_argument("photos", nargs="*", type=Path, help="one to a few photos to judge on")
    tu.add_argument("-n", "--variants", type=_at_least_2, default=8, help="per round (8)")
    tu.add_argument(
        "--picks", metavar="'1,3;2 -5'",
        help="the rounds' picks without asking, rounds separated by ';' (for scripts)",
    )  # fmt: skip
    tu.add_argument(
        "--size", type=_positive_int, default=512,
        help="long side the photos are restyled at (512; bigger shows stroke scale better)",
    )  # fmt: skip
    tu.add_argument("--thumb", type=_positive_int, default=192, help="grid row height (192)")
    tu.add_argument("--out", type=Path, help="folder for the grids (default MODEL.tune/)")
    tu.add_argument("--restart", action="store_true", help="forget the stored rounds, start over")
    tu.add_argument("--show", action="store_true", help="print the stored taste and stop")
    tu.add_argument("--reset", action="store_true", help="remove the stored taste and stop")
    tu.add_argument("--quiet", "-q", action="store_true", help="do not list each variant")
    tu.add_argument(
        "--refine", action="store_true",
        help="after the rounds, fine-tune the model toward what you liked (a new model file; "
        "needs --style)",
    )  # fmt: skip
    tu.add_argument("--style", type=Path, help="with --refine: the style folder it learned")
    tu.add_argument(
        "--refined", type=Path, metavar="PATH",
        help="with --refine: the new model (default MODEL-refined.safetensors)",
    )  # fmt: skip
    tu.add_argument(
        "--refine-steps", type=_positive_int, default=150,
        help="with --refine: training steps (150: about 2 minutes on a 2-core CPU)",
    )  # fmt: skip
    tu.add_argument("--overwrite", action="store_true", help="with --refine: replace --refined")
    _add_common(tu)


def _at_least_2(text: str) -> int:
    value = _positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected at least 2, got {value}")
    return value


def build_apply_parser() -> argparse.ArgumentParser:
    """Just ``styleforge apply`` (keeps its start-up free of torch for ONNX models)."""
    p = _Parser(prog="styleforge apply", description="Restyle photos with a trained model.")
    _add_apply_args(p)
    return p


def build_parser() -> argparse.ArgumentParser:
    """The ``styleforge`` argument parser with all sub-commands."""
    from styleforge.infer.transfer import TransferConfig

    d = TransferConfig()
    parser = _Parser(prog="styleforge", description="Learn a visual style and apply it.")
    parser.add_argument("--version", action="version", version=f"styleforge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser(
        "transfer",
        help="paint a photo in the style of one or more pictures (optimisation, Gatys et al.)",
        description="Optimisation-based style transfer of style pictures onto photos.",
    )
    t.add_argument("content", nargs="+", type=Path, help="photo(s) or folder(s) of photos")
    t.add_argument(
        "--style", "-s", action="append", type=Path, required=True,
        help="style image or folder of style images; repeat to mix several styles",
    )  # fmt: skip
    t.add_argument("--style-weights", type=_floats, help="mixing weights, one per --style: 0.7,0.3")
    t.add_argument("-o", "--output", type=Path, required=True, help="output image or folder")
    t.add_argument(
        "--size", type=_positive_int, default=d.size, help=f"long side (default {d.size})"
    )
    t.add_argument("--steps", type=_positive_int, default=d.steps, help=f"default {d.steps}")
    t.add_argument("--content-weight", type=float, default=d.content_weight)
    t.add_argument("--style-weight", type=float, default=d.style_weight)
    t.add_argument("--tv-weight", type=float, default=d.tv_weight)
    t.add_argument(
        "--style-scale",
        type=float,
        default=d.style_scale,
        help="style image size relative to the output (bigger = larger strokes)",
    )
    t.add_argument("--preserve-colors", action="store_true", help="keep the photo's colours")
    t.add_argument("--init", choices=("content", "noise"), default=d.init)
    t.add_argument("--optimizer", choices=("lbfgs", "adam"), default=d.optimizer)
    t.add_argument("--encoder", choices=("vgg16", "vgg19"), default="vgg16")
    t.add_argument("--encoder-weights", type=Path, help="torchvision VGG19 state dict (vgg19)")
    t.add_argument("--overwrite", action="store_true", help="replace existing output files")
    t.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _add_common(t)

    ev = sub.add_parser(
        "evaluate",
        help="measure style fidelity, content preservation and sample quality",
        description="Score results against a style collection; pairs results with photos by name.",
    )
    ev.add_argument("results", nargs="+", type=Path, help="result images or folders")
    ev.add_argument("--style", "-s", type=Path, required=True, help="the style collection (folder)")
    ev.add_argument("--content", "-c", type=Path, help="the photos the results were made from")
    ev.add_argument("-o", "--output", type=Path, default=Path("evaluation"), help="report folder")
    ev.add_argument("--json", action="store_true", help="print the figures as JSON")
    ev.add_argument("--run", type=Path, help="a training run folder: plot its loss curves")
    ev.add_argument("--size", type=_positive_int, default=256, help="evaluation size (long side)")
    _add_common(ev)

    tr = sub.add_parser(
        "train",
        help="learn the style of a folder of pictures (GAN + Gram style loss) into a model file",
        description="Train a fast feed-forward stylizer on a style collection.",
    )
    _add_train_args(tr)
    ap = sub.add_parser(
        "apply",
        help="restyle photos with a trained model (fast, any size)",
        description="Restyle photos with a model from `styleforge train` (or its ONNX export).",
    )
    _add_apply_args(ap)
    ex = sub.add_parser(
        "export",
        help="export a trained model to ONNX (dynamic height and width)",
        description="Export a .safetensors stylizer to ONNX for onnxruntime and other runtimes.",
    )
    ex.add_argument("model", type=Path, help="model file from `styleforge train`")
    ex.add_argument("-o", "--output", type=Path, required=True, help="the .onnx file to write")
    ex.add_argument("--overwrite", action="store_true", help="replace an existing file")

    _add_tune_parser(sub)

    ts = sub.add_parser(
        "train-sampler",
        help="learn to draw brand-new images like those in a folder (a GAN from noise)",
        description="Train an unconditional generator (DCGAN family) on a style collection.",
    )
    ts.add_argument("style_dir", type=Path, help="folder of pictures (at least 4; 20+ is better)")
    ts.add_argument("-o", "--output", type=Path, required=True, help="sampler file (.safetensors)")
    ts.add_argument(
        "--preset", choices=("quick", "standard", "max"), default="quick",
        help="quick: 64 px, minutes on a laptop CPU; standard (128 px), max (256 px): for a GPU",
    )  # fmt: skip
    ts.add_argument(
        "--resolution", type=int, choices=(64, 128, 256), help="image side (default: by preset)"
    )
    ts.add_argument("--latent-dim", type=_positive_int, help="latent size (default 100)")
    ts.add_argument("--steps", type=_positive_int, help="training steps (default: by preset)")
    ts.add_argument("--batch", type=_positive_int, help="images per step (by preset)")
    ts.add_argument("--lr", type=_non_negative, help="Adam learning rate of G and D (2e-4)")
    ts.add_argument(
        "--gan-loss", choices=("bce", "minimax", "hinge", "lsgan"),
        help="adversarial loss (default: bce, the non-saturating form)",
    )  # fmt: skip
    ts.add_argument(
        "--style-weight", type=_non_negative,
        help="weight of the extra Gram style loss toward the collection (3e-10; 0: off)",
    )  # fmt: skip
    ts.add_argument("--run-dir", type=Path, help="grids, logs, checkpoints (default SAMPLER.run/)")
    ts.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    ts.add_argument("--preview-every", type=_positive_int, help="steps between sample grids")
    ts.add_argument("--checkpoint-every", type=_positive_int, help="steps between checkpoints")
    ts.add_argument("--kid-every", type=_positive_int, help="steps between KID measurements")
    ts.add_argument("--overwrite", action="store_true", help="replace an existing sampler file")
    ts.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _add_common(ts)

    ge = sub.add_parser(
        "generate",
        help="draw new images from a trained sampler (reproducible by seed)",
        description="Generate images, a grid or a latent walk with a sampler from train-sampler.",
    )
    ge.add_argument("sampler", type=Path, help="sampler file from `styleforge train-sampler`")
    ge.add_argument("-n", type=_positive_int, default=16, help="images, seeds 0..n-1 (16)")
    ge.add_argument("--seeds", help="which seeds, e.g. 0-15 or 3,7,42 (overrides -n)")
    ge.add_argument(
        "-o", "--output", type=Path, required=True,
        help="folder for the images (a .gif or a folder of frames with --interpolate)",
    )  # fmt: skip
    ge.add_argument("--grid", type=Path, help="also write all images as one grid image")
    ge.add_argument(
        "--truncation", type=_fraction, default=1.0,
        help="0..1: scale latents toward the mean; lower = more typical, less varied (1)",
    )  # fmt: skip
    ge.add_argument(
        "--like", metavar="SEEDS",
        help="-n new images around these seeds' latents, e.g. 3,7,42 (written as like_NNNN.png)",
    )  # fmt: skip
    ge.add_argument("--dislike", metavar="SEEDS", help="with --like: seeds to move away from")
    ge.add_argument("--seed", type=int, default=0,
                    help="randomness of --like's neighbourhoods (0)")  # fmt: skip
    ge.add_argument("--interpolate", metavar="A,B", help="a latent walk from seed A to seed B")
    ge.add_argument("--frames", type=_positive_int, default=24, help="frames of a walk (24)")
    ge.add_argument("--fps", type=_positive_int, default=12, help="GIF frames per second (12)")
    ge.add_argument("--overwrite", action="store_true", help="replace existing files")
    ge.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="default: auto")

    sv = sub.add_parser(
        "serve",
        help="a local web app: create styles from uploads, train, restyle photos, dream",
        description="Start the styleforge web app (Gradio) on this machine.",
    )
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default: localhost)")
    sv.add_argument("--port", type=_positive_int, default=7860, help="default 7860")
    sv.add_argument(
        "--data-dir", type=Path, default=Path("styleforge-data"),
        help="where styles, models and jobs are kept (default ./styleforge-data)",
    )  # fmt: skip
    sv.add_argument(
        "--max-upload-mb", type=_positive_int, default=20, help="largest upload (default 20 MB)"
    )
    sv.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="default: auto")
    sv.add_argument(
        "--auth", metavar="USER:PASSWORD",
        help="require this login (or @FILE holding it; default: $STYLEFORGE_AUTH); needed for "
        "a --host other than this machine's own",
    )  # fmt: skip
    sv.add_argument(
        "--no-auth", action="store_true",
        help="serve a non-local --host without a login, on purpose",
    )  # fmt: skip

    demo = sub.add_parser(
        "demo",
        help="learn the bundled Hokusai prints, restyle sample photos, draw new images "
        "(a few minutes)",
    )
    demo.add_argument("-o", "--output", type=Path, default=Path("demo-output"))
    demo.add_argument("--style", type=Path, help="a folder of pictures instead of the bundled")
    demo.add_argument("--steps", type=_positive_int, default=DEMO_STEPS, help="training steps")
    demo.add_argument(
        "--sampler-steps", type=int, default=DEMO_SAMPLER_STEPS,
        help="sampler training steps (0: skip the sampler)",
    )  # fmt: skip
    demo.add_argument("--quiet", "-q", action="store_true")
    _add_common(demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``styleforge`` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["apply"]:
        parser = build_apply_parser()
        args = parser.parse_args(argv[1:])
        args.command = "apply"
    else:
        parser = build_parser()
        args = parser.parse_args(argv)
    try:
        if args.command in ("train", "apply", "export"):
            from styleforge import stylizer_commands

            return int(getattr(stylizer_commands, f"run_{args.command}")(args))
        if args.command == "tune":
            from styleforge.taste_commands import run_tune

            return run_tune(args)
        if args.command in ("train-sampler", "generate"):
            from styleforge import sampler_commands

            name = args.command.replace("-", "_")
            return int(getattr(sampler_commands, f"run_{name}")(args))
        if args.command == "serve":
            from styleforge.app.auth import resolve_auth

            login = resolve_auth(args.host, args.auth, args.no_auth)  # before Gradio loads
            from styleforge.app.ui import serve

            serve(args.data_dir, args.host, args.port, args.max_upload_mb, args.device, login)
            return 0
        if args.command == "transfer":
            from styleforge.commands import run_transfer

            return run_transfer(args)
        if args.command == "evaluate":
            from styleforge.commands import run_evaluate

            return run_evaluate(args)
        if args.command == "demo":
            from styleforge.commands import run_demo

            return run_demo(args)
    except ReportedElsewhere:
        return EXIT_USAGE  # process 0 of a torchrun job printed it
    except UserError as err:
        print(f"styleforge: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except JobFailed as err:  # DiskFull included
        print(f"styleforge: error: {err}", file=sys.stderr)
        return EXIT_FAULT
    except OSError as err:  # a full disk met outside styleforge's own writers
        if err.errno not in NO_SPACE:
            raise
        print(f"styleforge: error: {err.filename or 'a file'}: no space left on device",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAULT
    except KeyboardInterrupt:
        print("styleforge: interrupted", file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command}")
