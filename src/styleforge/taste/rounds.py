"""A tuning round: its variants restyled on the photos, the numbered grid, the picks typed for
it, and the liked and disliked renders a refine learns from (``styleforge tune``, the web app's
Tune tab)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from styleforge import images, sheets
from styleforge.errors import UserError
from styleforge.infer.settings import DEFAULT_PAINT_SIZE, Settings
from styleforge.taste.session import TasteSession
from styleforge.taste.space import BASE, scaled

if TYPE_CHECKING:
    from styleforge.infer.restyle import Restyler

__all__ = [
    "PICKS_HELP",
    "Picks",
    "Sketcher",
    "grid_sheet",
    "paint_limit",
    "parse_all_picks",
    "parse_picks",
    "play_rounds",
    "render_round",
    "taste_sheet",
]

#: Long side (px) of the sketches the search measures looks on, and how many of the judged
#: photos it sketches: enough to rank looks as the full renders do, fast enough to sketch a
#: few hundred candidates a round (their network runs shared, see :class:`Sketcher`).
SKETCH_SIDE, SKETCH_PHOTOS = 192, 2
#: The file in a tune folder that keeps the sketches' looks between commands.
SKETCHES = "sketches.npz"
#: Network runs and paintings a :class:`Sketcher` keeps (each about 0.3 MB), and the looks it
#: carries to the next command (the newest; about 12 kB each per photo).
_NET_MEMO, _KEPT_LOOKS = 128, 3000

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
    restyler: Restyler, photos: Sequence[np.ndarray], variants: Sequence[Settings],
    paint_scale: float = 1.0,
) -> list[list[np.ndarray]]:  # fmt: skip
    """Each (1,3,H,W) photo restyled with each variant through the restyle service:
    [photo][variant] -> (1,3,H,W).

    ``paint_scale`` < 1 previews photos shrunk by that factor as they would look at full
    size: each variant's paint size is scaled alike (the web app's small thumbnails)."""
    settings = [scaled(c, paint_scale) for c in variants]
    return [[restyler.array(p, s) for s in settings] for p in photos]


class Sketcher:
    """The looks of settings on the (1,3,H,W) ``photos`` as :func:`render_round` shows them
    (``paint_scale`` alike): each setting restyled on the first :data:`SKETCH_PHOTOS` photos
    shrunk to :data:`SKETCH_SIDE` px (the paint size shrunk with them), its
    :func:`~styleforge.taste.looks.look` -> (k,F) (a
    :data:`~styleforge.taste.looks.LookFn`). Looks and network runs are remembered, so later
    rounds sketch only what is new; :meth:`save` and ``keep`` carry the looks to the next
    command."""

    def __init__(
        self, restyler: Restyler, photos: Sequence[np.ndarray], paint_scale: float = 1.0,
        keep: Path | None = None,
    ) -> None:  # fmt: skip
        from styleforge.infer.apply import MemoisedNet
        from styleforge.infer.restyle import Restyler as _Restyler

        self.restyler = _Restyler(MemoisedNet(restyler.run_batch, _NET_MEMO))
        self.painted: dict[tuple[int, float, int | None], np.ndarray] = {}
        self.small = [images.downscale_to(p, SKETCH_SIDE) for p in photos[:SKETCH_PHOTOS]]
        self.scales = [paint_scale * max(s.shape[-2:]) / max(p.shape[-2:]) for s, p in
                       zip(self.small, photos, strict=False)]  # fmt: skip
        self.kept: dict[Settings, np.ndarray] = {}
        self.keep = keep
        self._saved = 0
        if keep is not None:
            self._load(keep)

    def _look(self, c: Settings) -> np.ndarray:
        """One setting's look: the network's painting kept per photo, strength and paint size
        (colours kept and tone only blend and curve it)."""
        from styleforge.infer.apply import finish_array, paint_array
        from styleforge.taste.looks import look

        renders = []
        for i, (photo, scale) in enumerate(zip(self.small, self.scales, strict=True)):
            options = self.restyler.options(scaled(c, scale))
            key = (i, options.plain()[0], options.paint_size)
            if options.plain()[0] and key not in self.painted:
                if len(self.painted) >= _NET_MEMO:
                    self.painted.pop(next(iter(self.painted)))  # the oldest
                self.painted[key] = paint_array(self.restyler.run_batch, photo, options)
            renders.append(finish_array(photo, self.painted.get(key, photo), options))
        return look(renders).astype(np.float32)

    def __call__(self, settings: Sequence[Settings]) -> np.ndarray:
        for c in settings:
            if c not in self.kept:
                self.kept[c] = self._look(c)
        return np.array([self.kept[c] for c in settings])

    def _load(self, path: Path) -> None:
        """The looks an earlier command kept at ``path``, if they are this model's on these
        photos: the first is sketched again and must match (else they are ignored)."""
        try:
            with np.load(path) as data:
                values, looks = data["settings"], data["looks"]
            kept = {
                Settings(strength=float(s), paint_size=int(p), colors=float(c), tone=float(t)): x
                for (s, p, c, t), x in zip(values, looks, strict=True)
            }
        except (OSError, KeyError, ValueError, TypeError, UserError):
            return
        first = next(iter(kept), None)
        if first is None:
            return
        probe = self._look(first)  # other photos (or as many), another model: other looks
        if probe.shape != kept[first].shape or not np.allclose(probe, kept[first], atol=1e-5):
            return
        self.kept = kept
        self._saved = len(kept)

    def save(self) -> None:
        """Write the looks to ``keep`` (atomically) if new ones were sketched; a cache that
        cannot be written is skipped."""
        from styleforge.fileio import atomic_write

        if self.keep is None or len(self.kept) == self._saved:
            return
        newest = list(self.kept.items())[-_KEPT_LOOKS:]
        values = np.array([[c.strength, c.paint_size, c.colors, c.tone] for c, _ in newest])
        try:
            with atomic_write(self.keep, ".npz") as tmp, tmp.open("wb") as fh:
                np.savez(fh, settings=values, looks=np.array([x for _, x in newest]))
        except OSError:
            return
        self._saved = len(self.kept)


def paint_limit(photos: Sequence[np.ndarray], paint_scale: float = 1.0) -> int:
    """The paint size above which the (1,3,H,W) ``photos``, shown as :func:`render_round`
    shows them, look the same: their longest side, in the sizes the variants name."""
    return max(16, round(max(max(p.shape[-2:]) for p in photos) / paint_scale))


def grid_sheet(
    rows: Sequence[Sequence[np.ndarray]], labels: Sequence[str], height: int
) -> Image.Image:
    """One labelled row per photo, stacked: -> an RGB PIL image (for ``images.save_image``;
    no torch, so ``tune`` on onnxruntime starts without it)."""
    made = [sheets.sheet_image(list(row), list(labels), height=height) for row in rows]
    return sheets.stack_images(made)


def play_rounds(
    session: TasteSession,
    restyler: Restyler,
    photos: Sequence[np.ndarray],
    sheets: Path,
    ask: Callable[[int, list[Settings], Path], Picks | None],
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
    sketch = Sketcher(restyler, photos, keep=sheets / SKETCHES)
    session.sketch = sketch
    done = 0
    while limit is None or done < limit:
        number = len(session.rounds) + 1
        shown = session.propose(variants)
        sketch.save()
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
    default = replace(BASE, paint_size=restyler.paint_size or DEFAULT_PAINT_SIZE)
    renders = render_round(restyler, photos, [default, session.recommendation()])
    rows = [[p, *row] for p, row in zip(photos, renders, strict=True)]
    return images.save_image(grid_sheet(rows, ["photo", "default", "your taste"], thumb), path)
