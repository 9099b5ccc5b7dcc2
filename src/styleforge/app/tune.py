"""The web app's taste actions: the Tune tab's rounds and its refine job.

Plain functions on a :class:`~styleforge.app.store.Store`; :class:`~styleforge.app.actions.App`
exposes them as its methods. The search is :class:`~styleforge.taste.TasteSession` and the
model file's taste is written by :func:`~styleforge.taste_record.write_taste`, exactly as
``styleforge tune`` does; the rounds so far live in the store's ``tastes`` table, so a restart
shows the same round again (proposals are deterministic for the rounds so far).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from styleforge import images
from styleforge.app.store import Job, Store
from styleforge.errors import UserError
from styleforge.taste import DEFAULT_VARIANTS, Controls, TasteSession

__all__ = [
    "TUNE_SIZE",
    "TuneView",
    "is_refine",
    "refine_status",
    "run_refine",
    "taste_of",
    "toggle_pick",
    "tune_apply",
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
#: Sample photos a round is judged on when none are uploaded; at most this many uploads.
TUNE_PHOTOS = 2
MAX_TUNE_PHOTOS = 4
#: Long side (px) the liked and disliked variants are rendered at for a refine (training
#: crops need more than the thumbnails' pixels).
REFINE_SIZE = TUNE_REFERENCE
#: What a refine job's run folder holds besides its model: the request (source model, rounds,
#: steps) and the photos the picks are rendered on, (1,3,H,W) arrays at REFINE_SIZE.
_REFINE_REQUEST = "refine.json"
_REFINE_PHOTOS = "photos.npz"


@dataclass(frozen=True)
class TuneView:
    """One round as the page shows it.

    Args:
        round: the round's number (1-based).
        variants: (image path, caption) per variant, in grid order (caption ``"3: ..."``).
        text: a Markdown status line (round, picks so far, the applied taste).
    """

    round: int
    variants: tuple[tuple[str, str], ...]
    text: str


def _model(store: Store, model: str) -> Path:
    """A finished stylizer of this store (a page never names an arbitrary file to write)."""
    if not model:
        raise UserError("pick a trained style model (train one in the Train tab)")
    if model not in {str(p) for _, p in store.models("stylizer")}:
        raise UserError("that is not one of this app's trained style models")
    return Path(model)


def _session(store: Store, model: str) -> TasteSession:
    row = store.taste(model)
    if row is None:
        return TasteSession()
    try:
        return TasteSession.from_dict(row.session)
    except UserError as err:
        raise UserError(f"{err} (Reset clears it)") from None


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


def _render(
    store: Store, model: Path, variants: list[Controls], photos: list[Path], number: int
) -> tuple[tuple[str, str], ...]:
    """Each variant as one image (the photos side by side), saved under ``tune/``."""
    import torch

    from styleforge.infer.stylizer import Stylizer
    from styleforge.taste_rounds import render_round

    arrays = _photos(store, photos)
    backend = Stylizer.load(model, torch.device("cpu")).backend()  # small: the CPU is enough
    rows = render_round(backend, arrays, variants, paint_scale=TUNE_SIZE / TUNE_REFERENCE)
    height = min(p.shape[-2] for p in arrays)
    out = store.root / "tune" / f"{model.stem}-{number:02d}-{uuid.uuid4().hex[:8]}"
    shown = []
    for i, controls in enumerate(variants):
        tiles = [torch.from_numpy(row[i]) for row in rows]
        sheet = images.make_sheet(tiles, height=height, pad=4)
        path = images.save_image(sheet, out / f"variant_{i + 1}.png")
        shown.append((str(path), f"{i + 1}: {controls.describe()}"))
    return tuple(shown)


def _status(store: Store, model: str, session: TasteSession, note: str = "") -> str:
    row = store.taste(model)
    picked = len(session.rounds)
    text = f"**Round {picked + 1}**. "
    text += f"{picked} round(s) picked so far. " if picked else "Nothing picked yet. "
    if row is not None and row.applied is not None:
        from styleforge.taste import stored_recommendation

        text += f"Applied taste: {stored_recommendation(row.applied).describe()}."
    else:
        text += "No taste applied yet."
    return f"{note}\n\n{text}" if note else text


def tune_round(store: Store, model: str, photos: list[Path]) -> TuneView:
    """The current round's grid (the same after a restart: proposals are deterministic)."""
    path = _model(store, model)
    session = _session(store, model)
    variants = session.propose(DEFAULT_VARIANTS)
    number = len(session.rounds) + 1
    shown = _render(store, path, variants, photos, number)
    return TuneView(number, shown, _status(store, model, session))


def tune_next(store: Store, model: str, picks: str, photos: list[Path]) -> TuneView:
    """Record the picks (``"2 5 -7"``: 1-based, ``-N`` disliked) for the current grid, store
    the rounds, and show the next grid."""
    from styleforge.taste_rounds import parse_picks

    path = _model(store, model)
    session = _session(store, model)
    session.propose(DEFAULT_VARIANTS)  # the grid on the page
    liked, disliked = parse_picks(picks or "", DEFAULT_VARIANTS)
    session.record(liked, disliked)
    row = store.taste(model)
    store.save_taste(model, session.to_dict(), None if row is None else row.applied)
    variants = session.propose(DEFAULT_VARIANTS)
    number = len(session.rounds) + 1
    shown = _render(store, path, variants, photos, number)
    return TuneView(number, shown, _status(store, model, session))


def tune_apply(store: Store, model: str) -> str:
    """Write the recommendation into the model file's taste (as ``styleforge tune`` does) and
    the database; Restyle uses it from then on."""
    from styleforge.taste_record import write_taste

    path = _model(store, model)
    session = _session(store, model)
    if not session.rounds:
        raise UserError("no picks yet: like a few variants and press Next round first")
    write_taste(path, session)
    record = session.to_dict()
    store.save_taste(model, record, record)
    taste = session.recommendation()
    note = (f"Your taste is applied: {taste.describe()}. Restyle uses it (untick "
            "*Use my taste* there to ignore it).")  # fmt: skip
    return _status(store, model, session, note)


def tune_refine(store: Store, model: str, photos: list[Path], steps: int = 150) -> Job:
    """Queue a refine of the model toward the liked variants and away from the disliked ones
    (``styleforge tune --refine``) as a job the worker runs (:func:`run_refine`; minutes on a
    CPU): a new model of the same style, listed like a trained one when it is done."""
    from styleforge.train.refine import RefineConfig

    _model(store, model)
    session = _session(store, model)
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

    return store.create_job(source.style_id, "stylizer", f"refined {source.preset}", steps,
                            prepare=prepare)  # fmt: skip


def is_refine(job: Job) -> bool:
    """Whether ``job`` is a refine (:func:`tune_refine`) rather than a training run."""
    return (job.run_dir / _REFINE_REQUEST).is_file()


def run_refine(store: Store, job: Job, device: str) -> tuple[Path, str]:
    """Run a queued refine job (in the worker): render the liked and disliked variants,
    fine-tune, write the new model with the rounds as its taste; -> (model, job message)."""
    import torch

    from styleforge.infer.stylizer import Stylizer
    from styleforge.taste_rounds import refine_on_picks

    request = json.loads((job.run_dir / _REFINE_REQUEST).read_text(encoding="utf-8"))
    session = TasteSession.from_dict(request["session"])
    with np.load(job.run_dir / _REFINE_PHOTOS) as saved:
        arrays = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    source = Path(request["model"])
    backend = Stylizer.load(source, torch.device("cpu")).backend()  # renders: the CPU is enough
    target = job.run_dir / "model.safetensors"
    liked, disliked = refine_on_picks(
        source, target, store.style_folder(job.style_id), session, backend, arrays,
        steps=request["steps"], device=device,
    )  # fmt: skip
    record = session.to_dict()
    store.save_taste(str(target), record, record)
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
    """Forget the rounds and remove the taste from the model file and the database."""
    from styleforge.taste_record import taste_text, write_taste

    path = _model(store, model)
    had = store.delete_taste(model)
    if taste_text(path) is not None:
        write_taste(path, None)
        had = True
    note = "Taste reset: Restyle uses the plain defaults." if had else "No taste to reset."
    return _status(store, model, TasteSession(), note)


def taste_of(model: str) -> Controls | None:
    """The taste stored in a model file (what Restyle follows), ``None`` without one."""
    from styleforge.taste_record import model_taste

    return model_taste(Path(model)) if model else None


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
