"""``styleforge train-sampler``: learn to draw new images like those of a folder."""

from __future__ import annotations

import argparse

from styleforge.cli.common import (
    Subparsers,
    TrainingVerb,
    non_negative,
    non_negative_int,
    paint_px,
    positive_int,
)

VERB = TrainingVerb(
    "train-sampler", "sampler", "folder of pictures (at least 4; 20+ is better)",
    "grids, logs, checkpoints (default SAMPLER.run/)", "sample grids",
    summary="learn to draw brand-new images like those in a folder (a GAN from noise)",
    description="Train an unconditional generator (DCGAN family with FastGAN's skip-layer "
    "excitation) on a style collection, against a discriminator that judges frozen "
    "pretrained features (Projected GAN).",
)  # fmt: skip


def add_parser(sub: Subparsers) -> None:
    """The ``train-sampler`` sub-command and its flags."""
    ts = VERB.parser(sub)
    ts.add_argument(
        "--preset", choices=("quick", "standard", "max", "classic"), default="quick",
        help="quick: 64 px, minutes on a laptop CPU; standard (128 px), max (256 px): for a "
        "GPU; classic: the pixel-discriminator quick preset of earlier versions",
    )  # fmt: skip
    ts.add_argument(
        "--resolution", type=int, choices=(64, 128, 256), help="image side (default: by preset)"
    )
    ts.add_argument("--latent-dim", type=positive_int, help="latent size (default 100)")
    ts.add_argument("--steps", type=positive_int, help="training steps (default: by preset)")
    ts.add_argument("--batch", type=positive_int, help="images per step (by preset)")
    ts.add_argument(
        "--lr", type=non_negative,
        help="Adam learning rate of G and D (quick preset 2e-3, the others 2e-4)",
    )  # fmt: skip
    ts.add_argument(
        "--gan-loss", choices=("bce", "minimax", "hinge", "lsgan"),
        help="adversarial loss (default: hinge; classic preset: bce, the non-saturating form)",
    )  # fmt: skip
    ts.add_argument(
        "--style-weight", type=non_negative,
        help="weight of the Gram style loss toward the collection (3e-10; 0 turns it off)",
    )  # fmt: skip
    ts.add_argument(
        "--disc", choices=("projected+conv", "projected", "conv"),
        help="discriminator: projected (frozen pretrained features, the default), "
        "projected+conv (with a small one on pixels too) or conv (pixels only, with R1; "
        "earlier versions)",
    )  # fmt: skip
    ts.add_argument(
        "--features", choices=("efficientnet", "vgg"),
        help="the projected discriminator's frozen network: efficientnet (EfficientNet-Lite0, "
        "the default) or vgg (VGG16, about 40x the cost per image)",
    )  # fmt: skip
    ts.add_argument(
        "--generator", choices=("fastgan", "dcgan"),
        help="fastgan (skip-layer excitation, the default) or plain dcgan",
    )  # fmt: skip
    ts.add_argument(
        "--upsample", choices=("nearest", "bilinear"),
        help="how the generator doubles its maps (default: by preset)",
    )  # fmt: skip
    ts.add_argument(
        "--framing", choices=("crop", "whole", "auto"),
        help="crop: square crops of each picture at its own shape; whole: each picture "
        "squeezed to a square, so every crop holds its whole composition, and the images "
        "drawn at the collection's median shape; auto: whole for portrait-shaped pictures, "
        "else crop (default: by preset)",
    )  # fmt: skip
    ts.add_argument(
        "--blur", type=non_negative, metavar="SIGMA",
        help="the discriminator first sees every image blurred by this much (px), fading to "
        "none over the first part of the run, so the layout is learned before the texture "
        "(0 turns it off; default: by preset)",
    )  # fmt: skip
    ts.add_argument(
        "--layout", type=int, choices=(0, 8, 16, 32), metavar="PX",
        help="side of the layout judge beside the projected discriminator: the picture "
        "shrunk to PX x PX (0: none; default: by preset)",
    )  # fmt: skip
    ts.add_argument(
        "--compose", action=argparse.BooleanOptionalAction,
        help="the generator holds the collection's compositions (each picture shrunk to 16 "
        "px) and draws each image over one of them, so it draws the collection's kind of "
        "picture (a head over shoulders) from the first steps (default: by preset; the "
        "quick one does)",
    )  # fmt: skip
    ts.add_argument(
        "--paint-size", type=paint_px, metavar="PX",
        help="the side `generate` paints the images at by default with the painter prior in "
        "the collection's style (default 0: the network's own pixels)",
    )  # fmt: skip
    ts.add_argument(
        "--stage-steps", type=non_negative_int, metavar="N",
        help="steps of the paint stage, trained after the sampler on the collection's own "
        "pictures, that paints each drawing at 4x its size (0: no stage; default: by preset)",
    )  # fmt: skip
    VERB.add_run_flags(ts)
    ts.add_argument("--kid-every", type=positive_int, help="steps between KID measurements")
    VERB.add_end(ts)


def run(args: argparse.Namespace) -> int:
    """``styleforge train-sampler STYLE_DIR -o SAMPLER.safetensors``."""
    from styleforge.train.config import SamplerTrainConfig
    from styleforge.train.sampler import describe_sampler, train_sampler

    config = SamplerTrainConfig.preset(args.preset, args.resolution).with_overrides(
        steps=args.steps, batch=args.batch, gan_loss=args.gan_loss, lr_g=args.lr, lr_d=args.lr,
        style_weight=args.style_weight, seed=args.seed, preview_every=args.preview_every,
        checkpoint_every=args.checkpoint_every, kid_every=args.kid_every,
        paint_size=args.paint_size, framing=args.framing, blur_sigma=args.blur,
        latent_dim=args.latent_dim, disc=args.disc, features=args.features,
        generator=args.generator, upsample=args.upsample, layout=args.layout,
        stage_steps=args.stage_steps, compose=args.compose,
    )  # fmt: skip
    return VERB.run(
        args,
        lambda run: train_sampler(config, args.style_dir, args.output, **run),
        describe_sampler,
    )
