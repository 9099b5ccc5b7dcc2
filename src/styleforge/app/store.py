"""What the web app remembers: styles, trained models and jobs, in SQLite beside their files.

Layout of the data directory::

    styleforge.db                  the records (this module's tables)
    styles/<style id>/img_0001.jpg the uploaded pictures, renamed: upload names never make paths
    jobs/<job id>/                 a training run folder (checkpoint, previews, logs)
    models/<job id>.safetensors    the model a finished job wrote
    tune/, results/, previews/     what the page shows: the only files the server hands out

A stylizer's taste lives in its model file (:mod:`styleforge.taste.record`), not here. Jobs
are of three kinds: training a stylizer or a sampler, and refining a stylizer (its run folder
holds the refine's request and photos; its model is listed with the stylizers).

Every write is one SQLite transaction; the database is opened per call, so the request
threads and the training worker can share it. A server restart loses nothing: a job that was
``running`` when the process died is marked ``interrupted`` and can be resumed from its
checkpoint.
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from styleforge import collection, images
from styleforge.errors import ImageError, UserError
from styleforge.fileio import atomic_write
from styleforge.infer.model_file import now_iso

__all__ = [
    "MAX_NAME",
    "JobKind",
    "JobRecord",
    "ModelKind",
    "Store",
    "StyleRecord",
    "Swept",
    "checked_name",
    "reason",
]

#: A job trains a stylizer or a sampler, or refines a stylizer toward a taste session's picks.
JobKind = Literal["stylizer", "sampler", "refine"]
#: The models a job makes: a refine makes a stylizer.
ModelKind = Literal["stylizer", "sampler"]
ACTIVE = ("queued", "running")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS styles (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, style_id TEXT NOT NULL, kind TEXT NOT NULL, preset TEXT NOT NULL,
    steps INTEGER, status TEXT NOT NULL, created TEXT NOT NULL, started TEXT, finished TEXT,
    message TEXT NOT NULL DEFAULT '', model TEXT
);
"""
_SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}


@dataclass(frozen=True)
class StyleRecord:
    """A style: a named collection of uploaded pictures."""

    id: str
    name: str
    created: str
    folder: Path
    images: int


@dataclass(frozen=True)
class JobRecord:
    """A training job and where it stands."""

    id: str
    style_id: str
    kind: JobKind
    preset: str
    steps: int | None
    status: str  # queued, running, done, failed, cancelled, interrupted
    created: str
    started: str | None
    finished: str | None
    message: str
    model: str | None
    run_dir: Path

    @property
    def resumable(self) -> bool:
        """Stopped before the end with a checkpoint to go on from."""
        return (
            self.status in ("interrupted", "cancelled")
            and (self.run_dir / "checkpoint.pt").is_file()
        )


#: The longest style name (characters).
MAX_NAME = 80
#: The suffix of a style folder being filled (renamed when its row is written).
_PARTIAL = ".partial"


def checked_name(name: str) -> str:
    """A style name, stripped; empty or over :data:`MAX_NAME` characters is a
    :class:`UserError`."""
    name = " ".join(name.split())
    if not name:
        raise UserError("give the style a name")
    if len(name) > MAX_NAME:
        raise UserError(f"a style name has at most {MAX_NAME} characters; this one {len(name)}")
    return name


def _by_reason(refused: Sequence[str]) -> list[str]:
    """``name: reason`` lines -> one ``N file(s): reason`` line per reason."""
    counts: dict[str, int] = {}
    for line in refused:
        why = line.split(": ", 1)[-1]
        counts[why] = counts.get(why, 0) + 1
    return [f"{n} file(s): {why}" for why, n in counts.items()]


def _size(folder: Path) -> int:
    """Bytes of the files under ``folder``."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _remove(path: Path) -> None:
    """Remove a file or a folder tree."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _prune(parents: Sequence[Path], keep_bytes: int) -> list[Path]:
    """Remove the oldest folders (and files) directly under ``parents`` until what is left
    is under ``keep_bytes``; returns those removed."""
    entries = [d for parent in parents if parent.is_dir() for d in parent.iterdir()]
    sized = []
    for entry in entries:
        try:
            size = _size(entry) if entry.is_dir() else entry.stat().st_size
            sized.append((entry.stat().st_mtime, size, entry))
        except OSError:  # removed meanwhile (another request's prune)
            continue
    sized.sort()
    total = sum(size for _, size, _ in sized)
    removed = []
    for _, size, entry in sized:
        if total <= keep_bytes:
            break
        _remove(entry)
        total -= size
        removed.append(entry)
    return removed


@dataclass(frozen=True)
class Swept:
    """What :meth:`Store.sweep` removed at start-up.

    Args:
        leftovers: what a stop left that no record owns (temporary files, half-made styles).
        uploads: the last run's uploads and Gradio's copies.
        pruned: result folders past the ``--keep-results`` bound.
    """

    leftovers: list[Path]
    uploads: list[Path]
    pruned: list[Path]

    def describe(self) -> str | None:
        """One line for the server's start-up, ``None`` when nothing was removed."""
        parts = [f"{len(found)} {what}" for found, what in (
            (self.leftovers, "leftover(s) of an earlier stop"),
            (self.uploads, "upload folder(s) of the last run"),
            (self.pruned, "result folder(s) over --keep-results"),
        ) if found]  # fmt: skip
        return f"styleforge: removed {', '.join(parts)}" if parts else None


def reason(err: BaseException, src: Path) -> str:
    """Why a file was refused, without its path or its name (the caller names it once), and
    without the command line's hints (the web app has no ``--max-pixels``)."""
    text = str(err).replace(str(src), src.name).replace(images.MAX_PIXELS_HINT, "")
    for prefix in (f"{src.name}: ", f"{src}: "):
        text = text.removeprefix(prefix)
    return text


class Store:
    """The app's records and files under ``root`` (created if missing)."""

    def __init__(
        self, root: Path, max_upload_bytes: int = 20 * 2**20,
        keep_results_bytes: int = 500 * 2**20,
    ) -> None:  # fmt: skip
        self.root = root
        self.max_upload_bytes = max_upload_bytes
        #: Results and tune renders kept (bytes); the oldest go first.
        self.keep_results_bytes = keep_results_bytes
        #: Gradio's folder for uploads and its copies of what the page shows (``serve`` points
        #: ``GRADIO_TEMP_DIR`` here): bounded as results are, emptied at each start.
        self.uploads = root / "uploads"
        for sub in ("styles", "jobs", "models", "previews", "uploads"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self._counts: dict[Path, tuple[int, int]] = {}  # style folder -> (mtime, pictures)
        self.db = root / "styleforge.db"
        with self._connect() as con:
            con.executescript(_SCHEMA)
        self._upgrade()

    def _upgrade(self) -> None:
        """Records of older versions: a refine was stored as a ``stylizer`` job with a
        ``refine.json`` in its folder; it is a ``refine`` job now."""
        old = [
            j.id
            for j in self.jobs()
            if j.kind == "stylizer" and (j.run_dir / "refine.json").is_file()
        ]
        if old:
            with self._connect() as con:
                con.executemany("UPDATE jobs SET kind = 'refine' WHERE id = ?", [(i,) for i in old])

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.db, timeout=30)
        con.row_factory = sqlite3.Row
        try:
            with con:  # one transaction: committed on success, rolled back on error
                yield con
        finally:
            con.close()

    def results_dir(self) -> Path:
        """A new folder under ``results/`` for what one action shows in the page (the oldest
        results go first once they pass :attr:`keep_results_bytes`)."""
        self.prune_results()
        out = self.root / "results" / uuid.uuid4().hex[:12]
        out.mkdir(parents=True)
        return out

    def shown_folders(self) -> list[Path]:
        """The folders whose files the page shows (results, tune renders, previews): the only
        ones the web server hands out; never the database, pictures, models or run folders."""
        return [self.root / sub for sub in ("results", "tune", "previews")]

    def preview_of(self, kind: Literal["style", "job"], key: str) -> Path:
        """Where the page's copy of a style's or a job's preview is kept."""
        return self.root / "previews" / f"{kind}-{key}.png"

    def prune_results(self) -> list[Path]:
        """Remove the oldest folders of ``results/`` and ``tune/`` until what is left is under
        :attr:`keep_results_bytes`; returns those removed."""
        return _prune([self.root / "results", self.root / "tune"], self.keep_results_bytes)

    def prune_uploads(self) -> list[Path]:
        """Remove the oldest folders of :attr:`uploads` (Gradio's uploads and its copies of
        what the page shows) until what is left is under :attr:`keep_results_bytes`; returns
        those removed."""
        return _prune([self.uploads], self.keep_results_bytes)

    def sweep(self) -> Swept:
        """At start-up, before anything runs: remove what a stop left behind and no record
        owns (temporary files, a style folder being filled, folders and models of no style
        or job), the last run's uploads (no page holds them any more), and results past the
        bound."""
        styles = {s.id for s in self.styles()}
        jobs = {j.id for j in self.jobs()}
        owned = {
            "styles": styles,
            "jobs": jobs,
            "models": {f"{i}.safetensors" for i in jobs},
            "previews": {f"style-{i}.png" for i in styles}
            | {f"job-{i}.png" for i in jobs}
            | {f"job-{i}-losses.png" for i in jobs},
        }
        removed = []
        for sub, names in owned.items():
            for path in sorted((self.root / sub).iterdir()):
                if path.name not in names:
                    _remove(path)
                    removed.append(path)
        for path in sorted(self.root.rglob(".*")):  # atomic writes' temporary files
            if path.exists():
                _remove(path)
                removed.append(path)
        uploads = sorted(self.uploads.iterdir()) if self.uploads.is_dir() else []
        for path in uploads:
            _remove(path)
        return Swept(removed, uploads, self.prune_results())

    def open_upload(self, path: Path) -> Image.Image:
        """An uploaded photo, decoded; one over the upload limit, not an image or a
        decompression bomb is a :class:`UserError`."""
        if path.stat().st_size > self.max_upload_bytes:
            raise UserError(f"{path.name}: over the upload limit")
        try:
            return images.open_image(path)
        except UserError as err:  # named, never with the server's (temporary) path
            raise UserError(f"{path.name}: {reason(err, path)}") from None

    # ------------------------------------------------------------------ styles

    def style_folder(self, style_id: str) -> Path:
        """Where a style's pictures live."""
        return self.root / "styles" / style_id

    def add_images(self, style_id: str, files: Sequence[Path]) -> list[str]:
        """Copy uploaded pictures into a style under generated names; returns one line per
        refused file (too large, not an image, decompression bomb) saying why."""
        return self._copy_images(self.style_folder(style_id), files)

    def _copy_images(self, folder: Path, files: Sequence[Path]) -> list[str]:
        """Copy the usable pictures among ``files`` into ``folder`` as ``img_NNNN``, each
        written atomically; -> one line per refused file, naming it once."""
        folder.mkdir(parents=True, exist_ok=True)
        refused = []
        n = len(list(folder.iterdir()))
        for src in files:
            label = Path(src).name
            try:
                size = Path(src).stat().st_size
                if size > self.max_upload_bytes:
                    mb = self.max_upload_bytes / 2**20
                    raise UserError(f"{size / 2**20:.1f} MB is over the {mb:.0f} MB upload limit")
                decoded = images.open_image(src)  # decodes fully: refuses non-images and bombs
                with Image.open(src) as img:
                    fmt = img.format or ""
            except (ImageError, UserError, OSError) as err:
                refused.append(f"{label}: {reason(err, Path(src))}")
                continue
            n += 1
            if fmt in _SUFFIXES:
                target = folder / f"img_{n:04d}{_SUFFIXES[fmt]}"
                with atomic_write(target) as tmp:
                    shutil.copyfile(src, tmp)
            else:  # other formats are stored as PNG
                images.save_image(decoded, folder / f"img_{n:04d}.png")
        return refused

    def create_style(
        self, name: str, files: Sequence[Path], name_refused: bool = True
    ) -> tuple[StyleRecord, str]:
        """A new style from uploaded files; returns it and its audit (usable, skipped, why;
        without ``name_refused`` the skipped files are counted by reason, not named).

        The pictures are copied into a hidden folder that becomes the style's only once its
        row is written: a stop midway leaves nothing but that folder, which :meth:`sweep`
        removes."""
        name = checked_name(name)
        if not files:
            raise UserError("upload at least one picture")
        style_id = uuid.uuid4().hex[:12]
        folder = self.style_folder(style_id)
        building = folder.with_name(f".{style_id}{_PARTIAL}")
        try:
            refused = self._copy_images(building, files)
            if not name_refused:
                refused = _by_reason(refused)
            if not any(building.iterdir()):
                raise UserError("none of the uploads is a usable picture: " + "; ".join(refused))
            building.rename(folder)
            with self._connect() as con:
                con.execute(
                    "INSERT INTO styles (id, name, created) VALUES (?, ?, ?)",
                    (style_id, name, now_iso()),
                )
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return self.style(style_id), self.audit(style_id, refused)

    def audit(self, style_id: str, refused: Sequence[str] = ()) -> str:
        """The collection audit of a style (usable images, skipped and why, duplicates)."""
        report = collection.scan(self.style_folder(style_id)).report()
        lines = [report.replace(str(self.style_folder(style_id)), self.style(style_id).name)]
        lines += [f"  refused upload {line}" for line in refused]
        return "\n".join(lines)

    def _one(self, table: Literal["styles", "jobs"], key: str) -> sqlite3.Row:
        """The row of ``table`` with id ``key``; an unknown id is a :class:`UserError`."""
        with self._connect() as con:
            row = con.execute(f"SELECT * FROM {table} WHERE id = ?", (key,)).fetchone()
        if row is None:
            raise UserError(f"no {table.removesuffix('s')} {key!r}")
        return row

    def style(self, style_id: str) -> StyleRecord:
        """One style; an unknown id is a :class:`UserError`."""
        return self._style(self._one("styles", style_id))

    def _style(self, row: sqlite3.Row) -> StyleRecord:
        folder = self.style_folder(row["id"])
        return StyleRecord(row["id"], row["name"], row["created"], folder, self._count(folder))

    def _count(self, folder: Path) -> int:
        """The usable pictures of a style folder: scanned (each decoded) once, then again
        only when the folder changes (a page lists the styles often)."""
        try:
            stamp = folder.stat().st_mtime_ns
        except OSError:
            return 0
        cached = self._counts.get(folder)
        if cached is None or cached[0] != stamp:
            cached = self._counts[folder] = (stamp, len(collection.scan(folder).images))
        return cached[1]

    def style_names(self) -> dict[str, str]:
        """``{id: name}`` of every style (no folder is looked at: cheap enough for every
        look of a page's timer)."""
        with self._connect() as con:
            return {r["id"]: r["name"] for r in con.execute("SELECT id, name FROM styles")}

    def styles(self) -> list[StyleRecord]:
        """All styles, oldest first."""
        with self._connect() as con:
            rows = con.execute("SELECT * FROM styles ORDER BY created, rowid").fetchall()
        return [self._style(r) for r in rows]

    def rename_style(self, style_id: str, name: str) -> None:
        """Give a style another name."""
        name = checked_name(name)
        self.style(style_id)
        with self._connect() as con:
            con.execute("UPDATE styles SET name = ? WHERE id = ?", (name, style_id))

    def delete_style(self, style_id: str) -> None:
        """Remove a style, its pictures, its jobs and their models (not while a job runs)."""
        if any(j.status in ACTIVE for j in self.jobs(style_id)):
            raise UserError("this style has a queued or running job; cancel it first")
        for job in self.jobs(style_id):
            shutil.rmtree(job.run_dir, ignore_errors=True)
            if job.model:
                Path(job.model).unlink(missing_ok=True)
            self.preview_of("job", job.id).unlink(missing_ok=True)
            self.preview_of("job", f"{job.id}-losses").unlink(missing_ok=True)
        shutil.rmtree(self.style_folder(style_id), ignore_errors=True)
        with self._connect() as con:
            con.execute("DELETE FROM jobs WHERE style_id = ?", (style_id,))
            con.execute("DELETE FROM styles WHERE id = ?", (style_id,))

    # ------------------------------------------------------------------ jobs

    def _job(self, row: sqlite3.Row) -> JobRecord:
        return JobRecord(
            id=row["id"], style_id=row["style_id"], kind=row["kind"], preset=row["preset"],
            steps=row["steps"], status=row["status"], created=row["created"],
            started=row["started"], finished=row["finished"], message=row["message"],
            model=row["model"], run_dir=self._run_dir(row["id"]),
        )  # fmt: skip

    def _run_dir(self, job_id: str) -> Path:
        return self.root / "jobs" / job_id

    def create_job(
        self, style_id: str, kind: JobKind, preset: str, steps: int | None,
        prepare: Callable[[Path], None] | None = None,
    ) -> JobRecord:  # fmt: skip
        """Queue a job for a style. ``prepare(run_dir)`` writes what the job needs into its
        (new) run folder before the job is queued, so the worker never sees it half made."""
        style = self.style(style_id)
        if style.images < 1:
            raise UserError(f"style {style.name!r} has no usable pictures")
        job_id = uuid.uuid4().hex[:12]
        if prepare is not None:
            self._run_dir(job_id).mkdir(parents=True)
            try:
                prepare(self._run_dir(job_id))
            except BaseException:
                shutil.rmtree(self._run_dir(job_id), ignore_errors=True)
                raise
        with self._connect() as con:
            con.execute(
                "INSERT INTO jobs (id, style_id, kind, preset, steps, status, created) "
                "VALUES (?, ?, ?, ?, ?, 'queued', ?)",
                (job_id, style_id, kind, preset, steps, now_iso()),
            )
        return self.job(job_id)

    def job(self, job_id: str) -> JobRecord:
        """One job; an unknown id is a :class:`UserError`."""
        return self._job(self._one("jobs", job_id))

    def jobs(self, style_id: str | None = None) -> list[JobRecord]:
        """Jobs (of one style), newest first."""
        with self._connect() as con:
            if style_id is None:
                rows = con.execute(
                    "SELECT * FROM jobs ORDER BY created DESC, rowid DESC"
                ).fetchall()
            else:
                rows = con.execute(
                    "SELECT * FROM jobs WHERE style_id = ? ORDER BY created DESC, rowid DESC",
                    (style_id,),
                ).fetchall()
        return [self._job(r) for r in rows]

    def next_queued(self) -> JobRecord | None:
        """The oldest queued job."""
        with self._connect() as con:
            row = con.execute(
                "SELECT * FROM jobs WHERE status = 'queued' ORDER BY created, rowid LIMIT 1"
            ).fetchone()
        return None if row is None else self._job(row)

    def update_job(self, job_id: str, **fields: Any) -> JobRecord:
        """Set some of a job's columns (status, started, finished, message, model)."""
        allowed = {"status", "started", "finished", "message", "model"}
        if not fields or not set(fields) <= allowed:
            raise ValueError(f"cannot update {sorted(set(fields) - allowed)}")
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._connect() as con:
            con.execute(f"UPDATE jobs SET {cols} WHERE id = ?", (*fields.values(), job_id))
        return self.job(job_id)

    def recover(self) -> list[JobRecord]:
        """At start-up: jobs left ``running`` by a dead process become ``interrupted``."""
        stale = [j for j in self.jobs() if j.status == "running"]
        for job in stale:
            self.update_job(
                job.id, status="interrupted", message="the server stopped during training"
            )
        return stale

    def stylizer(self, model: str) -> Path:
        """``model`` when it is a finished stylizer of this store (a page never names an
        arbitrary file); anything else is a :class:`UserError`."""
        if not model:
            raise UserError("pick a trained style model (train one in the Train tab)")
        if model not in {str(p) for _, p in self.models("stylizer")}:
            raise UserError("that is not one of this app's trained style models")
        return Path(model)

    def models(self, kind: ModelKind) -> list[tuple[str, Path]]:
        """(label, path) of every finished model of a kind, newest first."""
        names = self.style_names()
        out = []
        for job in self.jobs():
            if (
                job.kind in ((kind, "refine") if kind == "stylizer" else (kind,))
                and job.status == "done"
                and job.model
                and Path(job.model).is_file()
            ):
                out.append((f"{names.get(job.style_id, '?')} ({job.id})", Path(str(job.model))))
        return out
