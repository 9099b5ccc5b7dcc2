"""``styleforge train``: learn the style of a folder of pictures into a model file."""

from __future__ import annotations

import argparse
from pathlib import Path

from styleforge.cli.common import Subparsers, TrainingVerb, non_negative, positive_int

VERB = TrainingVerb(
    "train", "model", "folder of pictures whose style to learn",
    "previews, logs, checkpoints (default MODEL.run/)", "preview grids",
    summary="learn the style of a folder of pictures (GAN + Gram style loss) into a model file",
    description="Train a fast feed-forward stylizer on a style collection.",
)  # fmt: skip


def add_parser(sub: Subparsers) -> None:
    """The ``train`` sub-command and its flags."""
    p = VERB.parser(sub)
    p.add_argument(
        "--content", type=Path,
        help="folder of your own photos to train on (default: a few built-in sample photos)",
    )  # fmt: skip
    p.add_argument(
        "--preset", choices=("quick", "standard", "max"), default="quick",
        help="quick: ~2.5 min on a 2-core CPU; standard, max: bigger models for a GPU",
    )  # fmt: skip
    p.add_argument(
        "--from-scratch", action="store_true",
        help="train the classic network from nothing instead of fine-tuning the painter prior",
    )  # fmt: skip
    p.add_argument("--steps", type=positive_int, help="training steps (default: by preset)")
    p.add_argument("--size", type=positive_int, help="training crop size in px (by preset)")
    p.add_argument("--batch", type=positive_int, help="images per step (by preset)")
    p.add_argument("--lr", type=non_negative, help="generator learning rate (D gets lr/10)")
    p.add_argument("--style-weight", type=non_negative, help="Gram style loss weight")
    p.add_argument("--content-weight", type=non_negative, help="content loss weight")
    p.add_argument("--adv-weight", type=non_negative, help="adversarial loss weight")
    p.add_argument(
        "--stability", type=non_negative, metavar="W",
        help="weight of a temporal-stability term (Gupta et al. 2017): the result should change "
        "little when the photo gets a little noise or moves a pixel or two, for steadier video; "
        "each step runs the generator twice. Try 1e8 (default 0: off)",
    )  # fmt: skip
    p.add_argument(
        "--gan-loss", choices=("hinge", "bce", "minimax", "lsgan"),
        help="adversarial loss (default: hinge; bce is the non-saturating form)",
    )  # fmt: skip
    VERB.add_run_flags(p)
    p.add_argument("--compile", action="store_true", help="torch.compile the generator (CUDA)")
    VERB.add_end(p)


def run(args: argparse.Namespace) -> int:
    """``styleforge train STYLE_DIR -o MODEL``."""
    from styleforge.train.config import StylizerTrainConfig
    from styleforge.train.stylizer import describe_stylizer, train_stylizer

    base = StylizerTrainConfig.preset(args.preset, from_scratch=args.from_scratch)
    lr_d = None if args.lr is None else args.lr / 10
    config = base.with_overrides(
        steps=args.steps, size=args.size, batch=args.batch, lr_g=args.lr, lr_d=lr_d,
        style_weight=args.style_weight, content_weight=args.content_weight,
        adv_weight=args.adv_weight, stability_weight=args.stability, gan_loss=args.gan_loss,
        seed=args.seed, preview_every=args.preview_every, checkpoint_every=args.checkpoint_every,
    )  # fmt: skip
    if args.compile:
        config = config.with_overrides(compile=True)
    return VERB.run(
        args,
        lambda run: train_stylizer(
            config, args.style_dir, args.output, content_dir=args.content, **run
        ),
        describe_stylizer,
    )
