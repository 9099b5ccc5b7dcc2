"""Seed lists as people type them: ``0-15``, ``1,5,9``, ``0-3,10`` (``generate``, the web app)."""

from __future__ import annotations

from styleforge.errors import UserError

__all__ = ["MAX_SEEDS", "parse_likes", "parse_seeds"]

#: The most seeds one list may name.
MAX_SEEDS = 10_000


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
    if len(seeds) > MAX_SEEDS:
        raise UserError(f"{flag} {text}: {len(seeds)} seeds is too many at once (max {MAX_SEEDS})")
    return list(dict.fromkeys(seeds))


def parse_likes(like: str, dislike: str | None) -> tuple[list[int], list[int]]:
    """``--like 3,7,42 --dislike 5`` -> (liked, disliked) seeds; a seed in both is an error."""
    liked = parse_seeds(like, "--like")
    disliked = [] if dislike is None else parse_seeds(dislike, "--dislike")
    both = sorted(set(liked) & set(disliked))
    if both:
        raise UserError(f"seed {both[0]} is both liked (--like) and disliked (--dislike)")
    return liked, disliked
