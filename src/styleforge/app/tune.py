"""The web app's taste actions: the Tune tab's rounds and its refine job.

Plain functions on a :class:`~styleforge.app.store.Store`; :class:`~styleforge.app.actions.App`
exposes them as its methods. The search is :class:`~styleforge.taste.TasteSession` and the
taste is stored where ``styleforge tune`` stores it, in the model file
(:func:`~styleforge.taste.record.write_taste`), after every round: Restyle follows it at once,
and a restart shows the same round again (proposals are deterministic for the rounds so far).
A refine is a job of kind ``refine`` that the worker runs with :func:`run_refine`.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from styleforge import images, sheets
from styleforge.app.store import JobRecord, Store
from styleforge.errors import UserError
from styleforge.infer.settings import Settings
from styleforge.taste import DEFAULT_VARIANTS, TasteSession
from styleforge.taste.space import look_from_dict

if TYPE_CHECKING:
    from styleforge.infer.restyle import Restyler
    from styleforge.taste.rounds import Sketcher

__all__ = [
    "TUNE_SIZE",
    "TuneView",
    "refine_status",
    "run_refine",
    "taste_of",
    "toggle_pick",
    "tune_next",
    "tune_refine",
    "tune_reset",
    "tune_round",
]

#: Long side (px) of the Tune tab's photos: small, so a round of 8 takes seconds on a CPU.
TUNE_SIZE = 256
#: The photo size the thumbnails stand for (``tune``'s default ``--size``): paint sizes are
#: scaled by TUNE_SIZE / TUNE_REFERENCE so stroke scale shows as it would there.
TUNE_REFERENCE = 512
#: The thumbnails' paint size scale: they stand for photos of TUNE_REFERENCE px.
_SCALE = TUNE_SIZE / TUNE_REFERENCE
#: Sample photos a round is judged on when none are uploaded; at most this many uploads.
TUNE_PHOTOS = 2
MAX_TUNE_PHOTOS = 4
#: Long side (px) the liked and disliked variants are rendered at for a refine (training
#: crops need more than the thumbnails' pixels).
REFINE_SIZE = TUNE_REFERENCE
#: What a refine job's run folder holds besides its model: the request (source model, rounds,
#: steps) and the photos the picks are rendered on, (1,3,H,W) arrays at REFINE_SIZE.
_REFINE_REQUEST = "refine.json"
#: A round folder's record of the variants it showed.
_GRID = "grid.json"
_REFINE_PHOTOS = "photos.npz"


@dataclass(frozen=True)
class TuneView:
    """One round as the page shows it.

    Args:
        round: the round's number (1-based).
        variants: (image path, caption) per variant, in grid order (caption ``"3: ..."``).
        text: a Markdown status line (round, picks so far, the taste saved).
    """

    round: int
    variants: tuple[tuple[str, str], ...]
    text: str


def _session(path: Path) -> TasteSession:
    """The rounds stored in the model file (none yet: a new session), searching the paint
    sizes the thumbnails can show."""
    from styleforge.taste.record import read_session

    try:
        session = read_session(path) or TasteSession()
    except UserError as err:
        raise UserError(f"{err} (Reset clears it)") from None
    session.paint_limit = TUNE_REFERENCE
    return session


def _sketched(
    session: TasteSession, path: Path, restyler: Restyler, arrays: list[np.ndarray]
) -> Sketcher:
    """Let ``session`` measure looks on sketches of the judged photos (:func:`_photos`), the
    looks kept between requests in the user cache (not in a folder the page serves)."""
    import hashlib

    from styleforge.fileio import cache_dir
    from styleforge.taste.rounds import Sketcher

    name = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]
    keep = cache_dir() / "tune-sketches" / f"{name}.npz"
    sketch = Sketcher(restyler, arrays, _SCALE, keep=keep)
    session.sketch = sketch
    return sketch


def _restyler(model: Path) -> Restyler:
    """The model for rendering variants (small: torch on the CPU is enough; the variants set
    every look setting, so the stored taste plays no part)."""
    from styleforge.infer.restyle import Restyler

    return Restyler.open(model, backend="torch", device="cpu", use_taste=False)


def _photos(store: Store, paths: list[Path], size: int = TUNE_SIZE) -> list[np.ndarray]:
    """Uploaded photos (or the bundled sample photos) at ``size``: (1,3,H,W) arrays."""
    if len(paths) > MAX_TUNE_PHOTOS:
        raise UserError(f"judge on at most {MAX_TUNE_PHOTOS} photos at once")
    out = [
        images.downscale_to(images.pil_to_array(store.open_upload(path)), size) for path in paths
    ]
    if out:
        return out
    from styleforge.train.data import sample_photos

    samples = list(sample_photos().values())[:TUNE_PHOTOS]
    return [images.resize_to(t, size).numpy() for t in samples]


def _round_folder(store: Store, model: Path, number: int) -> Path:
    """A new folder under ``tune/`` for round ``number``'s variants."""
    return store.root / "tune" / f"{model.stem}-{number:02d}-{uuid.uuid4().hex[:8]}"


def _newest_round_folder(store: Store, model: Path, number: int) -> Path | None:
    """The newest folder of round ``number``'s variants under ``tune/`` (``None``: none)."""
    folders = sorted(
        (store.root / "tune").glob(f"{model.stem}-{number:02d}-*"), key=lambda p: p.stat().st_mtime
    )
    return folders[-1] if folders else None


def _shown_grid(store: Store, model: Path, number: int) -> list[Settings] | None:
    """The variants round ``number`` showed, as its folder records them (``None``: not
    recorded, or unreadable: the grid is proposed again, deterministically)."""
    folder = _newest_round_folder(store, model, number)
    try:
        data = json.loads((folder / _GRID).read_text()) if folder is not None else None
        return None if data is None else [look_from_dict(c) for c in data]
    except (OSError, ValueError, TypeError, UserError):
        return None


def _shown_renders(
    store: Store, model: Path, restyler: Restyler, arrays: list[np.ndarray],
    variants: list[Settings], number: int,
) -> list[list[np.ndarray]]:  # fmt: skip
    """The renders of round ``number`` as the page showed them, per variant: read back from
    the variant images of its newest folder under ``tune/`` (rendered again when they were
    swept away)."""
    from styleforge.taste.rounds import render_round

    folder = _newest_round_folder(store, model, number)
    if folder is not None:
        files = [folder / f"variant_{i + 1}.png" for i in range(len(variants))]
        if all(f.is_file() for f in files):
            return [[images.pil_to_array(images.open_image(f))] for f in files]
    rows = render_round(restyler, arrays, variants, _SCALE)
    return [[row[i] for row in rows] for i in range(len(variants))]


def _render(
    store: Store, model: Path, restyler: Restyler, arrays: list[np.ndarray],
    variants: list[Settings], number: int,
) -> tuple[tuple[str, str], ...]:  # fmt: skip
    """Each variant as one image (the ``arrays`` side by side), saved under ``tune/``."""
    import torch

    from styleforge.taste.rounds import render_round

    rows = render_round(restyler, arrays, variants, _SCALE)
    height = min(p.shape[-2] for p in arrays)
    out = _round_folder(store, model, number)
    shown = []
    for i, controls in enumerate(variants):
        tiles = [torch.from_numpy(row[i]) for row in rows]
        sheet = sheets.make_sheet(tiles, height=height, pad=4)
        path = images.save_image(sheet, out / f"variant_{i + 1}.png")
        shown.append((str(path), f"{i + 1}: {controls.describe()}"))
    (out / _GRID).write_text(json.dumps([c.to_record() for c in variants]))
    return tuple(shown)


def _status(session: TasteSession, note: str = "") -> str:
    picked = len(session.rounds)
    text = f"**Round {picked + 1}**. Like your favourite first. "
    if picked:
        text += (f"Your taste after {picked} round(s), saved in the model (Restyle follows it): "
                 f"{session.recommendation().describe()}. It is variant 1: like another "
                 "first only if you like it better.")  # fmt: skip
    else:
        text += "Nothing picked yet: Restyle uses the model's defaults."
    advice = session.advice()
    if advice:
        text += (f"\n\n**More like this?** {advice[0].upper()}{advice[1:]}: the four controls "
                 "may be as close as this look gets. **Refine** learns your liked results as an "
                 "extra style target (a new model).")  # fmt: skip
    return f"{note}\n\n{text}" if note else text


def tune_round(store: Store, model: str, photos: list[Path]) -> TuneView:
    """The current round's grid (the same after a restart: proposals are deterministic)."""
    path = store.stylizer(model)
    session = _session(path)
    restyler, arrays = _restyler(path), _photos(store, photos)
    sketch = _sketched(session, path, restyler, arrays)
    variants = session.propose(DEFAULT_VARIANTS)
    sketch.save()
    number = len(session.rounds) + 1
    shown = _render(store, path, restyler, arrays, variants, number)
    return TuneView(number, shown, _status(session))


def tune_next(store: Store, model: str, picks: str, photos: list[Path]) -> TuneView:
    """Record the picks (``"2 5 -7"``: 1-based, ``-N`` disliked) for the current grid, store
    the rounds and the taste in the model file (as ``styleforge tune`` does after every
    round), and show the next grid."""
    from styleforge.taste.record import write_taste
    from styleforge.taste.rounds import parse_picks

    path = store.stylizer(model)
    session = _session(path)
    restyler, arrays = _restyler(path), _photos(store, photos)
    sketch = _sketched(session, path, restyler, arrays)
    number = len(session.rounds) + 1
    grid = _shown_grid(store, path, number) or session.propose(DEFAULT_VARIANTS)  # on the page
    session.pending = tuple(grid)
    liked, disliked = parse_picks(picks or "", DEFAULT_VARIANTS)
    renders = _shown_renders(store, path, restyler, arrays, grid, number)
    session.record(liked, disliked, renders=renders)
    write_taste(path, session)
    variants = session.propose(DEFAULT_VARIANTS)
    sketch.save()
    number = len(session.rounds) + 1
    shown = _render(store, path, restyler, arrays, variants, number)
    return TuneView(number, shown, _status(session))


def tune_refine(store: Store, model: str, photos: list[Path], steps: int = 150) -> JobRecord:
    """Queue a refine of the model toward the liked variants and away from the disliked ones
    (``styleforge tune --refine``) as a job the worker runs (:func:`run_refine`; minutes on a
    CPU): a new model of the same style, listed like a trained one when it is done."""
    from styleforge.train.refine import RefineConfig

    session = _session(store.stylizer(model))
    RefineConfig(steps=steps)  # a bad step count is refused before anything is queued
    if not any(r.liked for r in session.rounds):
        raise UserError("nothing liked yet: like a few variants and press Next round first")
    source = next(j for j in store.jobs() if j.model == model)  # _model checked it is one
    arrays = _photos(store, photos, REFINE_SIZE)
    request = {"model": model, "from_job": source.id, "steps": steps,
               "session": session.to_dict()}  # fmt: skip

    def prepare(run_dir: Path) -> None:
        np.savez(run_dir / _REFINE_PHOTOS, *arrays)
        (run_dir / _REFINE_REQUEST).write_text(json.dumps(request), encoding="utf-8")

    return store.create_job(source.style_id, "refine", source.preset, steps, prepare=prepare)


def run_refine(store: Store, job: JobRecord, device: str) -> tuple[Path, str]:
    """Run a queued refine job (in the worker): render the liked and disliked variants,
    fine-tune, write the new model with the rounds as its taste; -> (model, job message)."""
    from styleforge.taste.refine import refine_on_picks

    request = json.loads((job.run_dir / _REFINE_REQUEST).read_text(encoding="utf-8"))
    session = TasteSession.from_dict(request["session"])
    with np.load(job.run_dir / _REFINE_PHOTOS) as saved:
        arrays = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    source = Path(request["model"])
    target = job.run_dir / "model.safetensors"
    liked, disliked = refine_on_picks(
        source, target, store.style_folder(job.style_id), session, _restyler(source), arrays,
        steps=request["steps"], device=device,
    )  # fmt: skip
    return target, (f"refined from {request['from_job']} on {liked} liked and "
                    f"{disliked} disliked results")  # fmt: skip


def refine_status(store: Store, job_id: str) -> str | None:
    """What became of a refine job: ``None`` while it is queued or running, else a line."""
    job = store.job(job_id)
    if job.status in ("queued", "running"):
        return None
    if job.status != "done":
        return f"⚠️ Refining ({job.id}) {job.status}: {job.message}"
    return (f"Refined into a new model ({job.id}): pick it in Restyle. It was {job.message}; "
            "the original is as it was.")  # fmt: skip


def tune_reset(store: Store, model: str) -> str:
    """Forget the rounds: remove the taste from the model file."""
    from styleforge.taste.record import has_taste, write_taste

    path = store.stylizer(model)
    had = has_taste(path)
    if had:
        write_taste(path, None)
    note = "Taste reset: Restyle uses the plain defaults." if had else "No taste to reset."
    return _status(TasteSession(), note)


def taste_of(model: str) -> Settings | None:
    """The taste stored in a model file (what Restyle follows), ``None`` without one."""
    from styleforge.infer.header import read_taste

    return read_taste(Path(model)) if model else None


def toggle_pick(picks: str, number: int | None, like: bool) -> str:
    """Picks text with variant ``number`` (1-based) liked (``like``) or disliked (``-N``);
    pressing the same again takes it back, the other way switches it."""
    if number is None:
        raise UserError("click a variant first, then Like or Dislike")
    tokens = [t for t in re.split(r"[\s,]+", picks.strip()) if t]
    token = str(number) if like else f"-{number}"
    kept = [t for t in tokens if t.lstrip("-") != str(number)]
    if token not in tokens:
        kept.append(token)
    return " ".join(kept)
