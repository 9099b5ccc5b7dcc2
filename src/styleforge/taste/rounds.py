"""A tuning round: its variants restyled on the photos, the numbered grid, the picks typed for
it, and the liked and disliked renders a refine learns from (``styleforge tune``, the web app's
Tune tab)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from styleforge import images, sheets
from styleforge.errors import UserError
from styleforge.taste.controls import Controls
from styleforge.taste.session import TasteSession

if TYPE_CHECKING:
    from styleforge.infer.restyle import Restyler

__all__ = [
    "PICKS_HELP",
    "Picks",
    "grid_sheet",
    "paint_limit",
    "parse_all_picks",
    "parse_picks",
    "play_rounds",
    "render_round",
    "sketcher",
    "taste_sheet",
]

#: Long side (px) of the sketches the search measures looks on, and how many of the judged
#: photos it sketches: enough to rank looks as the full renders do, fast enough to sketch a
#: few hundred candidates a round (their network runs shared, see :func:`sketcher`).
SKETCH_SIDE, SKETCH_PHOTOS = 192, 2
#: Network runs a sketcher keeps (about 0.3 MB each).
_NET_MEMO = 256

#: How a round's picks are typed: numbers liked (the favourite first), ``-N`` disliked, by
#: spaces or commas.
PICKS_HELP = (
    "numbers you like, your favourite first, -N for one you dislike (e.g. '5 2 -7'); "
    "Enter alone finishes"
)

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
    restyler: Restyler, photos: Sequence[np.ndarray], variants: Sequence[Controls],
    paint_scale: float = 1.0,
) -> list[list[np.ndarray]]:  # fmt: skip
    """Each (1,3,H,W) photo restyled with each variant through the restyle service:
    [photo][variant] -> (1,3,H,W).

    ``paint_scale`` < 1 previews photos shrunk by that factor as they would look at full
    size: each variant's paint size is scaled alike (the web app's small thumbnails)."""
    settings = [c.to_settings(paint_scale) for c in variants]
    return [[restyler.array(p, s) for s in settings] for p in photos]


class _NetMemo:
    """A backend (``RunBatch``) whose outputs are kept by input, strength and predictor
    square: sketches that differ only in colours kept or tone share one network run."""

    def __init__(self, run_batch: Any) -> None:
        self.inner = run_batch
        self.conditional = getattr(run_batch, "conditional", False)
        self.paint_size = getattr(run_batch, "paint_size", None)
        self.kept: dict[tuple[Any, ...], np.ndarray] = {}

    def __call__(self, x: np.ndarray, **kw: Any) -> np.ndarray:
        square = kw.get("square")
        key = (x.shape, hash(x.tobytes()), kw.get("strength"),
               None if square is None else hash(np.asarray(square).tobytes()))  # fmt: skip
        if key not in self.kept:
            if len(self.kept) >= _NET_MEMO:
                self.kept.pop(next(iter(self.kept)))  # the oldest
            self.kept[key] = self.inner(x, **kw)
        return self.kept[key]


def sketcher(
    restyler: Restyler, photos: Sequence[np.ndarray], paint_scale: float = 1.0
) -> Callable[[Sequence[Controls]], np.ndarray]:
    """The looks of settings on the (1,3,H,W) ``photos`` as :func:`render_round` shows them
    (``paint_scale`` alike): each setting restyled on the first :data:`SKETCH_PHOTOS` photos
    shrunk to :data:`SKETCH_SIDE` px (the paint size shrunk with them), its
    :func:`~styleforge.taste.looks.look` -> (k,F). Looks and network runs are remembered, so
    a session's later rounds sketch only what is new."""
    from styleforge.infer.restyle import Restyler as _Restyler
    from styleforge.taste.looks import look

    quick = _Restyler(_NetMemo(restyler.run_batch))
    small = [images.downscale_to(p, SKETCH_SIDE) for p in photos[:SKETCH_PHOTOS]]
    scales = [paint_scale * max(s.shape[-2:]) / max(p.shape[-2:]) for s, p in
              zip(small, photos, strict=False)]  # fmt: skip
    kept: dict[Controls, np.ndarray] = {}

    def looks(settings: Sequence[Controls]) -> np.ndarray:
        for c in settings:
            if c not in kept:
                renders = [quick.array(p, c.to_settings(f)) for p, f in
                           zip(small, scales, strict=True)]  # fmt: skip
                kept[c] = look(renders).astype(np.float32)
        return np.array([kept[c] for c in settings])

    return looks


def paint_limit(photos: Sequence[np.ndarray], paint_scale: float = 1.0) -> int:
    """The paint size above which the (1,3,H,W) ``photos``, shown as :func:`render_round`
    shows them, look the same: their longest side, in the sizes the variants name."""
    return max(16, round(max(max(p.shape[-2:]) for p in photos) / paint_scale))


def grid_sheet(rows: Sequence[Sequence[np.ndarray]], labels: Sequence[str], height: int) -> Any:
    """One labelled row per photo, stacked: -> (1,3,H,W) tensor (for ``images.save_image``)."""
    import torch

    made = [
        sheets.make_sheet([torch.from_numpy(x) for x in row], list(labels), height=height)
        for row in rows
    ]
    return sheets.stack_rows(made)


def play_rounds(
    session: TasteSession,
    restyler: Restyler,
    photos: Sequence[np.ndarray],
    sheets: Path,
    ask: Callable[[int, list[Controls], Path], Picks | None],
    *,
    variants: int,
    thumb: int,
    after_round: Callable[[TasteSession], object] | None = None,
    limit: int | None = None,
) -> int:
    """Rounds until ``ask`` gives no picks: propose ``variants`` around the picks so far,
    restyle them on the (1,3,H,W) ``photos``, save the numbered grid under ``sheets`` and ask
    ``ask(round_number, variants, sheet)`` for the picks, recorded with the renders (the
    preference model learns from them how much each control changes the picture);
    ``after_round(session)`` after each (``tune`` writes the taste there, so an interruption
    loses nothing); at most ``limit`` rounds. Returns the rounds picked."""
    session.paint_limit = paint_limit(photos)
    session.sketch = sketcher(restyler, photos)
    done = 0
    while limit is None or done < limit:
        number = len(session.rounds) + 1
        shown = session.propose(variants)
        rows = render_round(restyler, photos, shown)
        labels = [str(i) for i in range(1, variants + 1)]
        sheet = images.save_image(
            grid_sheet(rows, labels, thumb), sheets / f"round-{number:02d}.png"
        )
        picks = ask(number, shown, sheet)
        if picks is None:
            return done
        session.record(*picks, renders=[[row[i] for row in rows] for i in range(len(shown))])
        if after_round is not None:
            after_round(session)
        done += 1
    return done


def taste_sheet(
    session: TasteSession, restyler: Restyler, photos: Sequence[np.ndarray], path: Path,
    thumb: int,
) -> Path:  # fmt: skip
    """The before/after sheet, one row per photo: photo | the model's default | the taste."""
    from styleforge.infer.apply import DEFAULT_PAINT_SIZE

    default = Controls(paint_size=restyler.paint_size or DEFAULT_PAINT_SIZE)
    renders = render_round(restyler, photos, [default, session.recommendation()])
    rows = [[p, *row] for p, row in zip(photos, renders, strict=True)]
    return images.save_image(grid_sheet(rows, ["photo", "default", "your taste"], thumb), path)
