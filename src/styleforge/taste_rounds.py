"""A tuning round: its variants restyled on the photos, the numbered grid, the picks typed for
it, and the liked and disliked renders a refine learns from (``styleforge tune``, the web app's
Tune tab)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from styleforge import images
from styleforge.errors import UserError
from styleforge.infer.apply import RunBatch, stylize_array
from styleforge.taste import Controls, TasteSession

__all__ = [
    "PICKS_HELP",
    "REFINE_MAX_RENDERS",
    "Picks",
    "grid_sheet",
    "parse_all_picks",
    "parse_picks",
    "pick_renders",
    "refine_on_picks",
    "render_round",
]

#: How a round's picks are typed: numbers liked, ``-N`` disliked, by spaces or commas.
PICKS_HELP = "numbers you like, -N for one you dislike (e.g. '2 5 -7'); Enter alone finishes"
#: At most this many liked (and disliked) renders join a refine: the most recent rounds'.
REFINE_MAX_RENDERS = 24

#: One round's picks: 0-based indices of the (liked, disliked) variants.
Picks = tuple[list[int], list[int]]


def parse_picks(text: str, n: int) -> Picks:
    """One round's picks ``'2 5 -7'`` / ``'2,5,-7'`` (1-based) -> 0-based (liked, disliked).

    Raises a :class:`UserError` for a bad token, a number out of range, an empty round or a
    number picked twice."""
    liked: list[int] = []
    disliked: list[int] = []
    for token in re.split(r"[\s,]+", text.strip()):
        if not token:
            continue
        if not re.fullmatch(r"-?\d+", token):
            raise UserError(f"{token!r} is not a pick: {PICKS_HELP}")
        number = abs(int(token))
        if not 1 <= number <= n:
            raise UserError(f"pick {number} is out of range: the grid shows 1 to {n}")
        (disliked if token.startswith("-") else liked).append(number - 1)
    if not liked and not disliked:
        raise UserError("an empty round: pick at least one number you like (or -N to dislike)")
    if set(liked) & set(disliked):
        raise UserError(f"{min(set(liked) & set(disliked)) + 1} is both liked and disliked")
    if len(set(liked)) < len(liked) or len(set(disliked)) < len(disliked):
        raise UserError("a number is picked twice in one round")
    return liked, disliked


def parse_all_picks(text: str, n: int) -> list[Picks]:
    """``--picks '1,3;2 -5'``: rounds separated by ``;`` (each checked by :func:`parse_picks`)."""
    rounds = []
    for i, part in enumerate(text.split(";"), 1):
        try:
            rounds.append(parse_picks(part, n))
        except UserError as err:
            raise UserError(f"--picks round {i}: {err}") from None
    return rounds


def render_round(
    run_batch: RunBatch, photos: Sequence[np.ndarray], variants: Sequence[Controls],
    paint_scale: float = 1.0,
) -> list[list[np.ndarray]]:  # fmt: skip
    """Each (1,3,H,W) photo restyled with each variant: [photo][variant] -> (1,3,H,W).

    ``paint_scale`` < 1 previews photos shrunk by that factor as they would look at full
    size: each variant's paint size is scaled alike (the web app's small thumbnails)."""
    options = [c.to_options() for c in variants]
    if paint_scale != 1.0:
        options = [
            replace(o, paint_size=max(16, round(c.paint_size * paint_scale)))
            for o, c in zip(options, variants, strict=True)
        ]
    return [[stylize_array(run_batch, p, o) for o in options] for p in photos]


def grid_sheet(rows: Sequence[Sequence[np.ndarray]], labels: Sequence[str], height: int) -> Any:
    """One labelled row per photo, stacked: -> (1,3,H,W) tensor (for ``images.save_image``)."""
    import torch

    sheets = [
        images.make_sheet([torch.from_numpy(x) for x in row], list(labels), height=height)
        for row in rows
    ]
    return images.stack_rows(sheets)


def pick_renders(
    run_batch: RunBatch, photos: Sequence[np.ndarray], session: TasteSession
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every liked and every disliked variant of all rounds, restyled on ``photos`` ((1,3,H,W)
    each): -> (liked, disliked) lists of (1,3,H,W) arrays, the most recent first, each at most
    :data:`REFINE_MAX_RENDERS` long."""
    out: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    for rnd in reversed(session.rounds):
        for renders, picked in zip(out, (rnd.liked, rnd.disliked), strict=True):
            for i in picked:
                if len(renders) < REFINE_MAX_RENDERS:
                    options = rnd.shown[i].to_options()
                    renders.extend(stylize_array(run_batch, p, options) for p in photos)
    return out[0][:REFINE_MAX_RENDERS], out[1][:REFINE_MAX_RENDERS]


def refine_on_picks(
    source: Path,
    target: Path,
    style_dir: Path,
    session: TasteSession,
    run_batch: RunBatch,
    photos: Sequence[np.ndarray],
    *,
    steps: int,
    device: str = "auto",
    max_pixels: int = images.DEFAULT_MAX_PIXELS,
    starting: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Refine a taste session into a new model, the one way both front ends do it: render the
    session's liked and disliked variants with ``run_batch`` (``source``'s network) on
    ``photos`` ((1,3,H,W) arrays), fine-tune ``source`` toward them into ``target`` and store
    the session as the new model's taste. ``starting(liked, disliked)`` is told the counts
    before the fine-tuning. Returns (liked, disliked) counts; nothing liked is a
    :class:`UserError`."""
    import torch

    from styleforge.taste_record import write_taste
    from styleforge.train.refine import RefineConfig, refine_model

    config = RefineConfig(steps=steps)  # checked before the renders
    liked, disliked = pick_renders(run_batch, photos, session)
    if not liked:
        raise UserError("nothing liked yet: like a few variants before refining")
    if starting is not None:
        starting(len(liked), len(disliked))
    tensors = [[torch.from_numpy(np.ascontiguousarray(x)) for x in group]
               for group in (liked, disliked, photos)]  # fmt: skip
    refine_model(
        source, target, style_dir, *tensors, config=config,
        record={"rounds": len(session.rounds)}, device=device, max_pixels=max_pixels,
    )  # fmt: skip
    write_taste(target, session)
    return len(liked), len(disliked)
