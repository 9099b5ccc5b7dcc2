"""The web app's Dream actions: new images from a trained sampler, and more like the liked ones.

Plain functions on a :class:`~styleforge.app.store.Store`; :class:`~styleforge.app.actions.App`
exposes them as its methods. Each call saves its images and their grid in a new results folder.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from torch import Tensor

from styleforge import images, sheets
from styleforge.app.store import Store
from styleforge.errors import UserError

__all__ = ["DEFAULT_SEEDS", "MAX_SEEDS", "dream", "dream_more", "dream_seeds", "toggle_seed"]

#: The seeds a Dream press without any shows, and the most one press may ask for.
DEFAULT_SEEDS = "0-15"
MAX_SEEDS = 256


def _save_batch(store: Store, batch: Tensor, names: Sequence[str]) -> tuple[str, list[str]]:
    """Save each image of ``batch`` ((N,3,H,W) in [0,1]) as ``names[i]`` and the batch as a
    square-ish grid, in a new results folder; -> (grid path, image paths)."""
    out = store.results_dir()
    paths = [str(images.save_image(img[None], out / name))
             for name, img in zip(names, batch, strict=True)]  # fmt: skip
    grid = images.save_image(sheets.dream_grid(batch), out / "grid.png")
    return str(grid), paths


def dream_seeds(text: str) -> list[int]:
    """The seeds of a Dream press (``"0-3,7"``; empty: :data:`DEFAULT_SEEDS`)."""
    from styleforge.seeds import parse_seeds

    seeds = parse_seeds(text or DEFAULT_SEEDS)
    if len(seeds) > MAX_SEEDS:
        raise UserError(f"at most {MAX_SEEDS} seeds at once here")
    return seeds


def dream(
    store: Store, sampler: str, seeds: str, truncation: float, device: str
) -> tuple[str, list[str]]:
    """One image per seed of ``seeds`` (:func:`dream_seeds`); -> the grid path and the image
    paths, in seed order."""
    from styleforge.infer.sampler import Sampler

    if not sampler:
        raise UserError("pick a trained sampler (train one in the Train tab)")
    picked = dream_seeds(seeds)
    batch = Sampler.load(sampler, device).sample(picked, truncation)
    return _save_batch(store, batch, [f"seed_{s:04d}.png" for s in picked])


def dream_more(
    store: Store, sampler: str, liked: str, disliked: str, truncation: float, seed: int,
    device: str, n: int = 16,
) -> tuple[str, list[str]]:  # fmt: skip
    """``n`` new images around the liked seeds, away from the disliked ones (as ``generate
    --like``); returns the grid path and the image paths."""
    from styleforge.infer.sampler import Sampler
    from styleforge.seeds import parse_likes

    if not sampler:
        raise UserError("pick a trained sampler (train one in the Train tab)")
    if not (liked or "").strip():
        raise UserError("like at least one image first (click it, then Like)")
    likes = parse_likes(liked, disliked if (disliked or "").strip() else None)
    batch = Sampler.load(sampler, device).around(*likes, n=n, seed=seed, truncation=truncation)
    return _save_batch(store, batch, [f"like_{i:04d}.png" for i in range(n)])


def toggle_seed(liked: str, disliked: str, seed: int | None, like: bool) -> tuple[str, str]:
    """The liked / disliked seed lists (``"3,7"``) with ``seed`` moved to one of them (pressing
    the same again takes it back)."""
    if seed is None:
        raise UserError("click one of a Dream grid's seeds first, then Like or Dislike")

    def seeds(text: str) -> list[int]:
        return [int(t) for t in re.split(r"[\s,]+", text.strip()) if t.isdigit()]

    mine, other = (seeds(liked), seeds(disliked)) if like else (seeds(disliked), seeds(liked))
    other = [s for s in other if s != seed]
    mine = [s for s in mine if s != seed] if seed in mine else [*mine, seed]
    pair = (mine, other) if like else (other, mine)
    return ",".join(map(str, pair[0])), ",".join(map(str, pair[1]))
