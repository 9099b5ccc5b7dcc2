"""``styleforge generate``: new images, a grid or a latent walk from a trained sampler."""

from __future__ import annotations

import argparse
from pathlib import Path

from styleforge.cli.common import Subparsers, add_device, fraction, note, paint_px, positive_int
from styleforge.errors import UserError


def add_parser(sub: Subparsers) -> None:
    """The ``generate`` sub-command and its flags."""
    ge = sub.add_parser(
        "generate",
        help="draw new images from a trained sampler (reproducible by seed)",
        description="Generate images, a grid or a latent walk with a sampler from train-sampler.",
    )
    ge.add_argument("sampler", type=Path, help="sampler file from `styleforge train-sampler`")
    ge.add_argument("-n", type=positive_int, default=16, help="images, seeds 0..n-1 (16)")
    ge.add_argument("--seeds", help="which seeds, e.g. 0-15 or 3,7,42 (overrides -n)")
    ge.add_argument(
        "-o", "--output", type=Path, required=True,
        help="folder for the images (a .gif or a folder of frames with --interpolate)",
    )  # fmt: skip
    ge.add_argument("--grid", type=Path, help="also write all images as one grid image")
    ge.add_argument(
        "--truncation",
        type=fraction,
        default=1.0,
        help="0..1: scale latents toward the mean; lower = more typical, less varied (1)",
    )
    ge.add_argument(
        "--like", metavar="SEEDS",
        help="-n new images around these seeds' latents, e.g. 3,7,42 (written as like_NNNN.png)",
    )  # fmt: skip
    ge.add_argument("--dislike", metavar="SEEDS", help="with --like: seeds to move away from")
    ge.add_argument("--seed", type=int, default=0,
                    help="randomness of --like's neighbourhoods (0)")  # fmt: skip
    ge.add_argument(
        "--size", "--paint-size", dest="paint_size", type=paint_px, metavar="PX",
        help="long side of the images: larger than the network's own (64) paints them, with "
        "the sampler file's paint stage when it has one, else the painter prior; 64 or 0: "
        "the network's own pixels (default: the file's: 4x with a paint stage)",
    )  # fmt: skip
    ge.add_argument("--interpolate", metavar="A,B", help="a latent walk from seed A to seed B")
    ge.add_argument("--frames", type=positive_int, default=24, help="frames of a walk (24)")
    ge.add_argument("--fps", type=positive_int, default=12, help="GIF frames per second (12)")
    ge.add_argument("--overwrite", action="store_true", help="replace existing files")
    add_device(ge)


def run(args: argparse.Namespace) -> int:
    """``styleforge generate SAMPLER -n 16 -o OUT_DIR`` (or ``--interpolate A,B -o walk.gif``)."""
    if not args.sampler.is_file():
        raise UserError(f"{args.sampler}: no such sampler file")
    if args.interpolate is not None:
        return _walk(args)
    return _images(args)


def _walk(args: argparse.Namespace) -> int:
    """``--interpolate A,B``: a GIF or a folder of frames."""
    from styleforge import images
    from styleforge.infer.sampler import Sampler
    from styleforge.outputs import refuse_existing, walk_outputs, write_gif
    from styleforge.seeds import parse_seeds

    seeds = parse_seeds(args.interpolate)
    if len(seeds) != 2:
        raise UserError(f"--interpolate {args.interpolate}: give two seeds like 3,7")
    if args.frames < 2:
        raise UserError("--frames must be at least 2")
    targets = walk_outputs(args.output, args.frames)
    refuse_existing(targets, args.overwrite)
    sampler = Sampler.load(args.sampler, args.device)
    frames = sampler.walk(
        seeds[0], seeds[1], args.frames, args.truncation, paint_size=args.paint_size
    )
    if len(targets) == 1:
        write_gif(frames, targets[0], args.fps)
    else:
        for frame, path in zip(frames, targets, strict=True):
            images.save_image(frame[None], path)
    note(f"wrote a {args.frames}-frame walk from seed {seeds[0]} to {seeds[1]}: {args.output}")
    return 0


def _images(args: argparse.Namespace) -> int:
    """Images by seed, or ``--like``'s variants around liked seeds, and ``--grid``."""

    from styleforge import images, sheets
    from styleforge.infer.sampler import Sampler
    from styleforge.outputs import refuse_existing, sample_outputs
    from styleforge.seeds import parse_likes, parse_seeds

    likes = None
    if args.like is not None:
        if args.seeds:
            raise UserError("--like draws new images around liked seeds; leave out --seeds")
        likes = parse_likes(args.like, args.dislike)
    elif args.dislike is not None:
        raise UserError("--dislike goes with --like (the seeds to sample around)")
    seeds = parse_seeds(args.seeds) if args.seeds else list(range(args.n))
    prefix = "seed" if likes is None else "like"  # variants around likes are numbered
    targets = sample_outputs(args.output, seeds, prefix, args.grid)
    refuse_existing(targets, args.overwrite)
    sampler = Sampler.load(args.sampler, args.device)
    if likes is None:
        batch = sampler.sample(seeds, args.truncation, paint_size=args.paint_size)
    else:
        batch = sampler.around(
            *likes, n=len(seeds), seed=args.seed, truncation=args.truncation,
            paint_size=args.paint_size,
        )  # fmt: skip
    for img, path in zip(batch, targets, strict=False):
        images.save_image(img[None], path)
    if args.grid is not None:
        images.save_image(sheets.dream_grid(batch), args.grid)
    grid_note = f" and a grid {args.grid}" if args.grid is not None else ""
    around = ""
    if likes is not None:
        around = f" around seed(s) {','.join(map(str, likes[0]))}"
        if likes[1]:
            around += f", away from {','.join(map(str, likes[1]))}"
    note(f"wrote {len(seeds)} image(s){around} to {args.output}{grid_note}")
    return 0
