"""``styleforge transfer``: optimisation-based style transfer of pictures onto photos."""

from __future__ import annotations

import argparse
from pathlib import Path

from styleforge.cli.common import Subparsers, add_common, floats, max_pixels, positive_int
from styleforge.errors import UserError


def add_parser(sub: Subparsers) -> None:
    """The ``transfer`` sub-command and its flags."""
    from styleforge.infer.transfer import TransferConfig

    d = TransferConfig()
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
    t.add_argument("--style-weights", type=floats, help="mixing weights, one per --style: 0.7,0.3")
    t.add_argument("-o", "--output", type=Path, required=True, help="output image or folder")
    t.add_argument(
        "--size", type=positive_int, default=d.size, help=f"long side (default {d.size})"
    )
    t.add_argument("--steps", type=positive_int, default=d.steps, help=f"default {d.steps}")
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
    add_common(t)


def run(args: argparse.Namespace) -> int:
    """``styleforge transfer PHOTO... --style STYLE... -o OUT``."""
    from styleforge.features import EncoderSpec
    from styleforge.infer.transfer import TransferConfig
    from styleforge.infer.transfer_files import load_styles, transfer_files
    from styleforge.outputs import gather_inputs, plan_outputs, refuse_existing
    from styleforge.runtime import pick_device

    limit = max_pixels(args)
    device = pick_device(args.device)
    contents = gather_inputs(args.content, "transfer", limit)
    if args.encoder == "vgg16" and args.encoder_weights is not None:
        raise UserError("--encoder-weights is for --encoder vgg19 (vgg16 weights are built in)")
    styles, weights = load_styles(args.style, args.style_weights, limit)
    config = TransferConfig(
        size=args.size,
        steps=args.steps,
        content_weight=args.content_weight,
        style_weight=args.style_weight,
        tv_weight=args.tv_weight,
        style_scale=args.style_scale,
        preserve_colors=args.preserve_colors,
        init=args.init,
        optimizer=args.optimizer,
        seed=args.seed,
        encoder=EncoderSpec(args.encoder, args.encoder_weights),
    )
    pairs = plan_outputs(contents, args.output)
    refuse_existing([out for _, out in pairs], args.overwrite)
    summary = transfer_files(
        pairs, styles, weights, config, device, left_out=contents.left_out,
        max_pixels=limit, progress=not args.quiet,
    )  # fmt: skip
    return summary.exit_code
