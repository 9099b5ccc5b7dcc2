"""Refine from a taste session: the liked and disliked renders of its rounds become the
targets of a short fine-tune into a new model (``tune --refine``, the web app's refine job)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from styleforge import images
from styleforge.errors import UserError
from styleforge.taste.session import TasteSession

if TYPE_CHECKING:
    from styleforge.infer.restyle import Restyler

__all__ = ["REFINE_MAX_RENDERS", "pick_renders", "refine_on_picks"]

#: At most this many liked (and disliked) renders join a refine: the most recent rounds'.
REFINE_MAX_RENDERS = 24


def pick_renders(
    restyler: Restyler, photos: Sequence[np.ndarray], session: TasteSession
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every liked and every disliked variant of all rounds, restyled on ``photos`` ((1,3,H,W)
    each): -> (liked, disliked) lists of (1,3,H,W) arrays, the most recent first, each at most
    :data:`REFINE_MAX_RENDERS` long."""
    out: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    for rnd in reversed(session.rounds):
        for renders, picked in zip(out, (rnd.liked, rnd.disliked), strict=True):
            for i in picked:
                if len(renders) < REFINE_MAX_RENDERS:
                    settings = rnd.shown[i]
                    renders.extend(restyler.array(p, settings) for p in photos)
    return out[0][:REFINE_MAX_RENDERS], out[1][:REFINE_MAX_RENDERS]


def refine_on_picks(
    source: Path,
    target: Path,
    style_dir: Path,
    session: TasteSession,
    restyler: Restyler,
    photos: Sequence[np.ndarray],
    *,
    steps: int,
    device: str = "auto",
    max_pixels: int = images.DEFAULT_MAX_PIXELS,
    starting: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Refine a taste session into a new model, the one way both front ends do it: render the
    session's liked and disliked variants with ``restyler`` (``source`` opened) on
    ``photos`` ((1,3,H,W) arrays), fine-tune ``source`` toward them into ``target`` and store
    the session as the new model's taste. ``starting(liked, disliked)`` is told the counts
    before the fine-tuning. Returns (liked, disliked) counts; nothing liked is a
    :class:`UserError`."""
    import torch

    from styleforge.taste.record import write_taste
    from styleforge.train.refine import RefineConfig, refine_model

    config = RefineConfig(steps=steps)  # checked before the renders
    liked, disliked = pick_renders(restyler, photos, session)
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
