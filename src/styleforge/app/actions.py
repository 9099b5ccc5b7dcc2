"""The web app's actions: ``App`` holds every button of the page as a plain method.

Each action takes and returns plain values (names, paths, numbers, text), so tests call them
directly; the Gradio layer (:mod:`styleforge.app.ui` and its tabs) only wires components to
them. A user mistake is a :class:`~styleforge.errors.UserError`, shown as a message in the page
(never a traceback). The Tune tab's actions live in :mod:`.tune`, the Dream tab's in
:mod:`.dream`; ``App`` hands them its store and device.
"""

from __future__ import annotations

import html
import math
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from styleforge import images, sheets
from styleforge.app import dream, tune
from styleforge.app.store import ACTIVE, JobKind, ModelKind, Store, reason
from styleforge.app.watch import Watches
from styleforge.app.worker import STABILITY_WEIGHT, Worker, job_config, write_train_options
from styleforge.errors import UserError
from styleforge.fileio import atomic_write
from styleforge.infer.settings import Settings
from styleforge.train.config import PRESETS

__all__ = [
    "CLIP_MAX_SIZE",
    "COLORS",
    "MAX_CLIP_SECONDS",
    "MAX_FOLDER_FILES",
    "MAX_STEPS",
    "STRENGTH",
    "TRUNCATION",
    "App",
    "NumberRange",
    "plain",
    "upload_paths",
]


#: The longest clip the Restyle tab takes (seconds), and the long side its frames are shrunk to.
MAX_CLIP_SECONDS = 20.0
CLIP_MAX_SIZE = 640


#: The most files a style made from a folder on the server may scan.
MAX_FOLDER_FILES = 2000
#: The most steps the Train tab's Steps field takes.
MAX_STEPS = 1_000_000


@dataclass(frozen=True)
class NumberRange:
    """What a number field of the page takes: a number from ``low`` to ``high``."""

    name: str
    low: float
    high: float

    def parse(self, value: object) -> float:
        """The field's value as sent -> the number; anything else (empty, text, not finite,
        out of range) is a :class:`UserError` saying what the field takes."""
        takes = f"a number from {self.low:g} to {self.high:g}"
        if value is None or (isinstance(value, str) and not value.strip()):
            raise UserError(f"{self.name}: the field is empty; give {takes}")
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        written = isinstance(value, str) and _DECIMAL.fullmatch(value.strip()) is not None
        number = float(value) if numeric or written else math.nan  # type: ignore[arg-type]
        if not (math.isfinite(number) and self.low <= number <= self.high):
            text = str(value).strip()
            shown = text if len(text) <= 12 else text[:12] + "…"
            shown = f"{number:g}" if numeric or written else plain(shown)  # safe as Markdown
            raise UserError(f"{self.name}: {shown} is not {takes}")
        return number


#: The Restyle tab's sliders and the Dream tab's.
STRENGTH = NumberRange("strength", 0.0, 2.0)
COLORS = NumberRange("photo colours kept", 0.0, 1.0)
TRUNCATION = NumberRange("truncation", 0.0, 1.0)
#: The most restyled photos a page's Restyle history keeps.
HISTORY = 24
_DECIMAL = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def plain(text: str) -> str:
    """User-given text (a style name) for a Markdown message: shown as typed, never as
    formatting, a link, an image or HTML."""
    escaped = html.escape(text, quote=False)
    return _MARKDOWN.sub(r"\\\1", escaped)


def upload_paths(files: Any) -> list[Path]:
    """Gradio file values (paths, or objects with ``.name``; one or a list) -> paths."""
    if files is None:
        return []
    items = files if isinstance(files, list | tuple) else [files]
    return [Path(f) if isinstance(f, str | Path) else Path(str(f.name)) for f in items]


class App:
    """Every action of the page, on a store and its worker."""

    def __init__(self, store: Store, worker: Worker, allowed_folders: Sequence[Path] = ()) -> None:
        self.store = store
        self.worker = worker
        #: Folders on this machine a style may be made from (resolved); none: uploads only.
        self.allowed_folders = tuple(Path(f).expanduser().resolve() for f in allowed_folders)
        #: The jobs pages watch: their logs read incrementally (the same for every visitor).
        self.watches = Watches(lambda job_id: store.preview_of("job", f"{job_id}-losses"))

    # ------------------------------------------------------------------ My styles

    def style_choices(self) -> list[tuple[str, str]]:
        """(label, id) of every style, for dropdowns."""
        return [(f"{s.name} ({s.images} images)", s.id) for s in self.store.styles()]

    def styles_table(self) -> list[list[Any]]:
        """Rows: name, images, created, id."""
        return [[s.name, s.images, s.created, s.id] for s in self.store.styles()]

    def create_style(self, name: str, files: Any, folder: str = "") -> str:
        """Create a style from uploads, or from a folder on this machine under one of the roots
        the operator allowed (``serve --allow-folder``); returns the audit. A folder's files are
        never listed: only counts and the reasons files were skipped."""
        return self.new_style(name, files, folder)[0]

    def new_style(self, name: str, files: Any, folder: str = "") -> tuple[str, str]:
        """:meth:`create_style`; -> (the audit, the new style's id), for the page that asked
        (the app keeps no "last created" that another visitor could see)."""
        paths = upload_paths(files)
        from_folder = bool(folder.strip())
        if from_folder:
            paths += self._folder_files(folder.strip())
        style, audit = self.store.create_style(name, paths, name_refused=not from_folder)
        audit = audit.replace("`", "'")  # nothing closes the code block it is shown in
        return f"Created style **{plain(style.name)}**.\n\n```\n{audit}\n```", style.id

    def _folder_files(self, folder: str) -> list[Path]:
        """The files of ``folder`` (resolved; it and every file inside an allowed root, links
        that lead out skipped), at most :data:`MAX_FOLDER_FILES`."""
        if not self.allowed_folders:
            raise UserError(
                "this server reads no folders of its own: upload the pictures (its operator "
                "can allow one with `styleforge serve --allow-folder DIR`)"
            )
        root = Path(folder).expanduser().resolve()
        if not any(root.is_relative_to(r) for r in self.allowed_folders):
            raise UserError("that folder is outside the folders this server may read")
        if not root.is_dir():
            raise UserError("no such folder among those this server may read")
        found: list[Path] = []
        for here, dirs, names in os.walk(root):
            dirs.sort()
            for name in sorted(names):
                path = Path(here) / name
                if path.resolve().is_relative_to(root) and path.is_file():
                    found.append(path)
                if len(found) > MAX_FOLDER_FILES:
                    raise UserError(f"that folder holds more than {MAX_FOLDER_FILES} files; "
                                    "pick one with only the style's pictures")  # fmt: skip
        return found

    def style_preview(self, style_id: str | None) -> str | None:
        """Path of a sheet showing the style before any training: a strip of its pictures over
        the sample photos restyled straight from the painter prior (made once, then kept)."""
        if not style_id:
            return None
        sheet = self._preview_path(style_id)
        if sheet.exists():
            return str(sheet)
        from styleforge import collection
        from styleforge.infer.restyle import Restyler
        from styleforge.train.data import sample_photos

        found = collection.scan(self.store.style_folder(style_id)).images
        pictures = [images.open_image(p) for p in found]
        if not pictures:
            return None
        # small previews: the CPU is enough (the GPU is for training jobs)
        preview = Restyler.like(pictures, device="cpu")
        photos = [images.resize_to(p, 256) for p in list(sample_photos().values())[:4]]
        labels = ["photo", "your style, no training yet"]
        rows = [sheets.make_sheet([p, images.pil_to_tensor(preview(images.tensor_to_pil(p)))],
                                  labels, height=192) for p in photos]  # fmt: skip
        width = max(r.shape[-1] for r in rows)
        strip = sheets.collection_strip([images.pil_to_tensor(p) for p in pictures], width)
        return str(images.save_image(sheets.stack_rows([strip, *rows]), sheet))

    def _preview_path(self, style_id: str) -> Path:
        return self.store.preview_of("style", style_id)

    def rename_style(self, style_id: str, name: str) -> str:
        """Rename a style."""
        if not style_id:
            raise UserError("pick a style")
        self.store.rename_style(style_id, name)
        return f"Renamed to **{plain(self.store.style(style_id).name)}**."

    def delete_style(self, style_id: str) -> str:
        """Delete a style with its pictures, jobs and models."""
        if not style_id:
            raise UserError("pick a style")
        name = self.store.style(style_id).name
        self._preview_path(style_id).unlink(missing_ok=True)
        self.store.delete_style(style_id)
        return f"Deleted **{plain(name)}**."

    # ------------------------------------------------------------------ Train

    def start_training(
        self, style_id: str, kind: JobKind, preset: str, steps: str | int | None,
        steady: bool = False,
    ) -> str:  # fmt: skip
        """Queue a job; returns its id. ``steps``: as typed (:meth:`parse_steps`); ``steady``:
        a stylizer learns with the stability term (:data:`~.worker.STABILITY_WEIGHT`, recorded
        in its run folder before it is queued, so a resume keeps it)."""
        n = self.parse_steps(steps, kind, preset)
        if not style_id:
            raise UserError("pick a style to train")
        prepare = None
        if steady and kind == "stylizer":

            def prepare(run_dir: Path) -> None:
                write_train_options(run_dir, stability_weight=STABILITY_WEIGHT)

        job = self.store.create_job(style_id, kind, preset, n, prepare=prepare)
        self.worker.wake()
        return job.id

    @staticmethod
    def preset_steps(kind: JobKind, preset: str) -> int:
        """The steps of a preset of a kind of model (what the Steps field shows)."""
        from styleforge.train.config import SamplerTrainConfig, StylizerTrainConfig

        if kind not in ("stylizer", "sampler"):
            raise UserError(f"unknown model kind {kind!r}")
        if preset not in PRESETS:
            raise UserError(f"unknown preset {preset!r}")
        config = SamplerTrainConfig if kind == "sampler" else StylizerTrainConfig
        return config.preset(preset).steps

    @classmethod
    def parse_steps(cls, steps: str | int | None, kind: JobKind, preset: str) -> int | None:
        """The Steps field as typed -> a step count; empty: ``None`` (the preset's). Anything
        but a whole number from 1 to :data:`MAX_STEPS` is a :class:`UserError` saying so."""
        default = cls.preset_steps(kind, preset)
        text = "" if steps is None else str(steps).strip()
        if not text:
            return None
        if not re.fullmatch(r"[0-9]+", text) or not 1 <= int(text) <= MAX_STEPS:
            shown = text if len(text) <= 12 else text[:12] + "…"
            raise UserError(f"steps: {plain(shown)} is not a whole number from 1 to "
                            f"{MAX_STEPS}; leave it empty for the preset's {default}")  # fmt: skip
        return int(text)

    def job_choices(self) -> list[tuple[str, str]]:
        """(label, id) of every job, newest first."""
        names = self.store.style_names()
        return [
            (f"{names.get(j.style_id, '?')} · {j.kind} · {j.status} ({j.id})", j.id)
            for j in self.store.jobs()
        ]

    def job_status(self, job_id: str | None) -> tuple[str, str | None, str | None]:
        """Markdown status line, latest preview path and loss plot path of a job (its logs
        read incrementally, the plot redrawn only when they grew: :mod:`.watch`)."""
        if not job_id:
            jobs = self.store.jobs()
            if not jobs:
                return "No training jobs yet.", None, None
            job_id = jobs[0].id
        job = self.store.job(job_id)
        total = job.steps or job_config(job).steps
        last, plot = self.watches.of(job.id, job.run_dir).status(final=job.status not in ACTIVE)
        step = total if job.status == "done" else 0 if last is None else last + 1
        frac = min(1.0, step / max(1, total))
        bar = "█" * round(24 * frac) + "░" * (24 - round(24 * frac))
        text = (
            f"**{job.kind}** job `{job.id}`: **{job.status}**, step {step} of "
            f"{total} ({100 * frac:.0f} %). {self._unpathed(job.message)}\n\n`{bar}`"
        )
        stage = _stage_progress(job.run_dir) if job.kind == "sampler" else None
        if stage is not None and job.status in ACTIVE and step >= total:
            text += f"\n\nPainting stage: step {stage[0]} of {stage[1]}."
        if job.resumable:
            text += " It can be resumed from its checkpoint."
        preview = job.run_dir / "preview.png"
        shown = self._job_preview(job.id, preview if preview.is_file() else None)
        return text, shown, None if plot is None else str(plot)

    def _unpathed(self, text: str) -> str:
        """A message for the page: the data directory's path left out, shown as text."""
        for root in {str(self.store.root.resolve()), str(self.store.root)}:
            text = text.replace(root + os.sep, "").replace(root, "the data folder")
        return plain(text)

    def _job_preview(self, job_id: str, source: Path | None) -> str | None:
        """The page's copy of a job's latest preview (the run folder is never served)."""
        if source is None:
            return None
        shown = self.store.preview_of("job", job_id)
        if not shown.is_file() or shown.stat().st_mtime < source.stat().st_mtime:
            with atomic_write(shown) as tmp:
                shutil.copyfile(source, tmp)
        return str(shown)

    def cancel(self, job_id: str) -> str:
        """Cancel a queued or running job (a running one keeps its checkpoint)."""
        if not job_id:
            raise UserError("pick a job")
        return f"Job `{self.worker.cancel(job_id).id}`: cancelling."

    def resume(self, job_id: str) -> str:
        """Queue an interrupted or cancelled job to continue from its checkpoint."""
        if not job_id:
            raise UserError("pick a job")
        return f"Job `{self.worker.resume(job_id).id}` queued to resume."

    # ------------------------------------------------------------------ Restyle, Dream

    def model_choices(self, kind: ModelKind) -> list[tuple[str, str]]:
        """(label, path) of finished models of a kind."""
        return [(label, str(path)) for label, path in self.store.models(kind)]

    def restyle(
        self, files: Any, model: str, strength: float | None = None,
        colors: float | None = None, use_taste: bool = True,
    ) -> list[tuple[str, str]]:  # fmt: skip
        """Restyle uploaded photos; returns (before, after) path pairs. The command line's rule
        (:mod:`styleforge.infer.restyle`): ``strength`` and ``colors`` (the photo's colours
        kept, 0..1) as set now win over the model's taste (``use_taste``), which wins over its
        defaults; ``None``: not set."""
        from styleforge.infer.restyle import Restyler

        settings = self._settings(strength, colors)  # a refused number: nothing done
        photos = upload_paths(files)
        if not photos:
            raise UserError("upload at least one photo")
        path = self.store.stylizer(model)
        opened = []
        for photo in photos:  # all checked first: a refused upload leaves nothing behind
            try:
                opened.append(self.store.open_upload(photo))  # refuses non-images and bombs
            except UserError as err:
                raise UserError(f"{photo.name}: {reason(err, photo)}") from None
        restyler = Restyler.open(path, device=self.worker.device, use_taste=use_taste)
        out = self.store.results_dir()
        pairs = []
        for i, img in enumerate(opened, 1):
            before = images.save_image(img, out / f"photo_{i:03d}.png")  # each written whole
            after = images.save_image(restyler(img, settings), out / f"restyled_{i:03d}.png")
            pairs.append((str(before), str(after)))
        return pairs

    def restyle_history(self, entries: Any) -> list[tuple[str, str]]:
        """A page's Restyle history as the browser keeps it (newest first) -> the (before,
        after) pairs still on disk, at most :data:`HISTORY`. The browser's copy is never
        trusted: only files of this app's results folder are kept."""
        results = (self.store.root / "results").resolve()
        kept: list[tuple[str, str]] = []
        for entry in entries if isinstance(entries, list) else []:
            if not (isinstance(entry, list | tuple) and len(entry) == 2):
                continue
            pair = tuple(Path(str(p)).resolve() for p in entry)
            if all(p.is_relative_to(results) and p.is_file() for p in pair):
                kept.append((str(pair[0]), str(pair[1])))
            if len(kept) == HISTORY:
                break
        return kept

    def restyle_clip(
        self, clip: Any, model: str, strength: float | None = None,
        colors: float | None = None, use_taste: bool = True,
    ) -> str:  # fmt: skip
        """Restyle an uploaded short clip (at most :data:`MAX_CLIP_SECONDS`, frames shrunk to
        :data:`CLIP_MAX_SIZE`), with the sound and the temporal blend against flicker; the
        settings as :meth:`restyle`. Returns the restyled ``.mp4``."""
        from styleforge.infer.restyle import Restyler
        from styleforge.video import open_clip, restyle_video

        settings = self._settings(strength, colors)
        paths = upload_paths(clip)
        if len(paths) != 1:
            raise UserError("upload one clip")
        path = paths[0]
        stylizer = self.store.stylizer(model)
        if path.stat().st_size > self.store.max_upload_bytes:
            raise UserError(f"{path.name}: over the upload limit")
        try:
            info = open_clip(path).info  # a file that is no clip is one clear line
        except UserError as err:
            raise UserError(f"{path.name}: {reason(err, path)}") from None
        if info.duration is None or info.duration > MAX_CLIP_SECONDS:
            length = "of unknown length" if info.duration is None else f"{info.duration:.0f} s"
            raise UserError(f"{path.name} is {length}: the web app restyles clips of up to "
                            f"{MAX_CLIP_SECONDS:.0f} s (`styleforge apply` takes any)")  # fmt: skip
        restyler = Restyler.open(stylizer, device=self.worker.device, use_taste=use_taste)
        out = self.store.results_dir() / "restyled.mp4"
        restyle_video(restyler, path, out, settings,
                      max_size=CLIP_MAX_SIZE, progress=False)  # fmt: skip
        return str(out)

    @staticmethod
    def _settings(strength: float | None, colors: float | None) -> Settings:
        """What the sliders set now (``None``: not set); out of range: a UserError."""
        return Settings(
            strength=None if strength is None else STRENGTH.parse(strength),
            colors=None if colors is None else COLORS.parse(colors),
        )  # fmt: skip

    def restyle_controls(self, model: str, use_taste: bool = True) -> tuple[float, float]:
        """(strength, colours kept) the Restyle tab shows for ``model``: its taste's when it
        has one and ``use_taste``, else the defaults (1, 0)."""
        taste = self.taste_of(str(self.store.stylizer(model))) if model and use_taste else None
        strength, colors, _ = (taste or Settings()).plain()
        return strength, colors

    def dream(self, sampler: str, seeds: str, truncation: float) -> tuple[str, list[str]]:
        """Generate images for seeds (``"0-15"``); returns the grid path and the image paths."""
        return dream.dream(self.store, sampler, seeds, TRUNCATION.parse(truncation),
                           self.worker.device)  # fmt: skip

    def dream_more(
        self, sampler: str, liked: str, disliked: str, truncation: float, seed: float = 0
    ) -> tuple[str, list[str]]:
        """More like these: 16 images around the liked seeds, away from the disliked ones."""
        return dream.dream_more(self.store, sampler, liked, disliked, TRUNCATION.parse(truncation),
                                int(seed or 0), self.worker.device)  # fmt: skip

    @staticmethod
    def toggle_seed(liked: str, disliked: str, seed: int | None, like: bool) -> tuple[str, str]:
        """The Dream tab's liked / disliked seed lists with ``seed`` moved to one of them."""
        return dream.toggle_seed(liked, disliked, seed, like)

    # ------------------------------------------------------------------ Tune (taste)

    def tune_round(self, model: str, files: Any = None) -> tune.TuneView:
        """The model's current round of 8 variants (photos: uploads, else sample photos)."""
        return tune.tune_round(self.store, model, upload_paths(files))

    def tune_next(self, model: str, picks: str, files: Any = None) -> tune.TuneView:
        """Record this round's picks (``"2 5 -7"``), save the taste in the model (Restyle
        follows it) and show the next round."""
        return tune.tune_next(self.store, model, picks, upload_paths(files))

    def tune_reset(self, model: str) -> str:
        """Forget the rounds; remove the model's taste."""
        return tune.tune_reset(self.store, model)

    def tune_refine(self, model: str, files: Any = None, steps: int = 150) -> str:
        """Refine my model: queue a job fine-tuning a new model toward the liked variants
        (minutes; :meth:`refine_status` says when it is done); returns the job's id."""
        job = tune.tune_refine(self.store, model, upload_paths(files), steps)
        self.worker.wake()
        return job.id

    def refine_status(self, job_id: str) -> str | None:
        """A refine job's outcome as a line; ``None`` while it is queued or running."""
        return tune.refine_status(self.store, job_id)

    @staticmethod
    def toggle_pick(picks: str, number: int | None, like: bool) -> str:
        """The picks text with variant ``number`` (1-based) liked or disliked (again: undone)."""
        return tune.toggle_pick(picks, number, like)

    @staticmethod
    def taste_of(model: str) -> Settings | None:
        """The model's taste (the controls Restyle follows), ``None`` without one."""
        return tune.taste_of(model)


def _stage_progress(run_dir: Path) -> tuple[int, int] | None:
    """(step, steps) of a sampler run's paint stage as it last wrote them, if it has begun."""
    import json

    from styleforge.train.sampler import STAGE_PROGRESS

    try:
        data = json.loads((run_dir / STAGE_PROGRESS).read_text())
        return int(data["step"]), int(data["steps"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
