"""``styleforge demo``: the bundled Hokusai prints learned, sample photos restyled, new images
drawn, in a few minutes."""

from __future__ import annotations

import argparse
from pathlib import Path

from styleforge.cli.common import Subparsers, add_common, max_pixels, positive_int
from styleforge.demo import BUNDLED_STYLE, DEMO_SAMPLER_STEPS, DEMO_STEPS, DemoConfig, run_demo


def add_parser(sub: Subparsers) -> None:
    """The ``demo`` sub-command and its flags."""
    demo = sub.add_parser(
        "demo",
        help="learn the bundled Hokusai prints, restyle sample photos, draw new images "
        "(a few minutes)",
    )
    demo.add_argument("-o", "--output", type=Path, default=Path("demo-output"))
    demo.add_argument("--style", type=Path, help="a folder of pictures instead of the bundled")
    demo.add_argument("--steps", type=positive_int, default=DEMO_STEPS, help="training steps")
    demo.add_argument(
        "--sampler-steps", type=int, default=DEMO_SAMPLER_STEPS,
        help="sampler training steps (0: skip the sampler)",
    )  # fmt: skip
    demo.add_argument("--quiet", "-q", action="store_true")
    add_common(demo)


def run(args: argparse.Namespace) -> int:
    """``styleforge demo [-o DIR]``; 130 when stopped early."""
    config = DemoConfig(steps=args.steps, sampler_steps=args.sampler_steps, seed=args.seed)
    finished = run_demo(
        config, args.output, args.style or BUNDLED_STYLE, args.device,
        progress=not args.quiet, max_pixels=max_pixels(args),
    )  # fmt: skip
    return 0 if finished else 130
