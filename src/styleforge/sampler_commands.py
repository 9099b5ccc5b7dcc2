"""``styleforge train-sampler`` and ``generate``: parsed arguments -> library calls."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from styleforge import images
from styleforge.errors import UserError

if TYPE_CHECKING:
    from torch import Tensor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def parse_seeds(text: str, flag: str = "--seeds") -> list[int]:
    """``"0-15"``, ``"1,5,9"`` or ``"0-3,10"`` -> the seeds, in order, without repeats.

    A bad list (not whole numbers, a negative seed, nothing, too many) is a one-line
    :class:`UserError` that names ``flag``."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            if "-" in part[1:]:
                cut = part.index("-", 1)
                lo, hi = int(part[:cut]), int(part[cut + 1 :])
                if hi < lo:
                    raise UserError(f"{flag} {text}: {part} runs backwards")
                seeds += range(lo, hi + 1)
            else:
                seeds.append(int(part))
        except ValueError:
            raise UserError(f"{flag} {text}: expected seeds like 0-15 or 1,5,9") from None
    if not seeds:
        raise UserError(f"{flag} {text!r}: no seeds")
    negative = [s for s in seeds if s < 0]
    if negative:
        raise UserError(f"{flag} {text}: seeds are whole numbers from 0 up, got {negative[0]}")
    if len(seeds) > 10_000:
        raise UserError(f"{flag} {text}: {len(seeds)} seeds is too many at once (max 10000)")
    return list(dict.fromkeys(seeds))


def parse_likes(like: str, dislike: str | None) -> tuple[list[int], list[int]]:
    """``--like 3,7,42 --dislike 5`` -> (liked, disliked) seeds; a seed in both is an error."""
    liked = parse_seeds(like, "--like")
    disliked = [] if dislike is None else parse_seeds(dislike, "--dislike")
    both = sorted(set(liked) & set(disliked))
    if both:
        raise UserError(f"seed {both[0]} is both liked (--like) and disliked (--dislike)")
    return liked, disliked


def run_train_sampler(args: argparse.Namespace) -> int:
    """``styleforge train-sampler STYLE_DIR -o SAMPLER.safetensors``."""
    from styleforge.distributed import joined
    from styleforge.train.config import SamplerTrainConfig
    from styleforge.train.sampler import describe_sampler, train_sampler

    if args.output.suffix.lower() != ".safetensors":
        raise UserError(f"-o {args.output}: the sampler file name must end in .safetensors")
    if args.output.exists() and not args.overwrite and not args.resume:
        raise UserError(f"{args.output} already exists; pass --overwrite to replace it")
    config = SamplerTrainConfig.preset(args.preset, args.resolution)
    overrides = {
        "steps": args.steps, "batch": args.batch, "gan_loss": args.gan_loss,
        "style_weight": args.style_weight, "seed": args.seed, "lr_g": args.lr, "lr_d": args.lr,
        "preview_every": args.preview_every, "checkpoint_every": args.checkpoint_every,
        "kid_every": args.kid_every,
    }  # fmt: skip
    config = config.with_overrides(latent_dim=args.latent_dim, **overrides)
    with joined(args.device) as w:
        result = train_sampler(
            config, args.style_dir, args.output, run_dir=args.run_dir, resume=args.resume,
            device=args.device, progress=not args.quiet,
            max_pixels=int(args.max_pixels or images.DEFAULT_MAX_PIXELS), world=w,
        )  # fmt: skip
    if result.stopped_early:
        return 130
    if w.is_main:
        _note(describe_sampler(result))
    return 0


def _check_free(paths: list[Path], overwrite: bool) -> None:
    taken = [p for p in paths if p.exists()]
    if taken and not overwrite:
        more = f" and {len(taken) - 1} more" if len(taken) > 1 else ""
        raise UserError(f"{taken[0]}{more} already exist(s); pass --overwrite to replace")


def run_generate(args: argparse.Namespace) -> int:
    """``styleforge generate SAMPLER -n 16 -o OUT_DIR`` (or ``--interpolate A,B -o walk.gif``)."""
    from styleforge.infer.sampler import Sampler

    out: Path = args.output
    if not args.sampler.is_file():
        raise UserError(f"{args.sampler}: no such sampler file")
    if args.interpolate is not None:
        seeds = parse_seeds(args.interpolate)
        if len(seeds) != 2:
            raise UserError(f"--interpolate {args.interpolate}: give two seeds like 3,7")
        if args.frames < 2:
            raise UserError("--frames must be at least 2")
        gif = out.suffix.lower() == ".gif"
        if not gif and out.suffix:
            raise UserError(f"-o {out}: a walk is written as a .gif or into a folder of frames")
        targets = [out] if gif else [out / f"frame_{i:03d}.png" for i in range(args.frames)]
        _check_free(targets, args.overwrite)
        sampler = Sampler.load(args.sampler, args.device)
        frames = sampler.walk(seeds[0], seeds[1], args.frames, args.truncation)
        if gif:
            _write_gif(frames, out, args.fps)
        else:
            for frame, path in zip(frames, targets, strict=True):
                images.save_image(frame[None], path)
        _note(f"wrote a {args.frames}-frame walk from seed {seeds[0]} to {seeds[1]}: {out}")
        return 0

    likes = None
    if args.like is not None:
        if args.seeds:
            raise UserError("--like draws new images around liked seeds; leave out --seeds")
        likes = parse_likes(args.like, args.dislike)
    elif args.dislike is not None:
        raise UserError("--dislike goes with --like (the seeds to sample around)")
    seeds = parse_seeds(args.seeds) if args.seeds else list(range(args.n))
    if out.suffix.lower() in IMAGE_SUFFIXES:
        raise UserError(f"-o {out}: give a folder for the images (and --grid FILE for a grid)")
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {out}: exists and is not a folder")
    width = max(4, len(str(max(seeds))))
    if likes is None:
        targets = [out / f"seed_{s:0{width}d}.png" for s in seeds]
    else:  # variants, numbered
        targets = [out / f"like_{i:0{width}d}.png" for i in seeds]
    if args.grid is not None:
        if args.grid.suffix.lower() not in IMAGE_SUFFIXES:
            raise UserError(f"--grid {args.grid}: give an image file name like grid.png")
        targets.append(args.grid)
    _check_free(targets, args.overwrite)
    sampler = Sampler.load(args.sampler, args.device)
    if likes is None:
        batch = sampler.sample(seeds, args.truncation)
    else:
        batch = sampler.around(*likes, n=len(seeds), seed=args.seed, truncation=args.truncation)
    for img, path in zip(batch, targets, strict=False):
        images.save_image(img[None], path)
    if args.grid is not None:
        cols = math.ceil(math.sqrt(len(seeds)))
        images.save_image(images.grid(batch, cols), args.grid)
    grid_note = f" and a grid {args.grid}" if args.grid is not None else ""
    around = ""
    if likes is not None:
        around = f" around seed(s) {','.join(map(str, likes[0]))}"
        if likes[1]:
            around += f", away from {','.join(map(str, likes[1]))}"
    _note(f"wrote {len(seeds)} image(s){around} to {out}{grid_note}")
    return 0


def _write_gif(frames: Tensor, path: Path, fps: int) -> None:
    """Frames (K,3,R,R) in [0,1] -> a looping GIF (there and back), written atomically."""
    from styleforge.fileio import atomic_write

    pics = [images.tensor_to_pil(f[None]) for f in frames]
    loop = pics + pics[-2:0:-1]
    with atomic_write(path, ".gif") as tmp:
        loop[0].save(
            tmp, format="GIF", save_all=True, append_images=loop[1:],
            duration=max(1, round(1000 / fps)), loop=0,
        )  # fmt: skip
