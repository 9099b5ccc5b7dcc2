"""The web app: ``App`` holds the page's actions as plain methods; ``build_ui`` lays them out.

Each action takes and returns plain values (names, paths, numbers, text), so tests call them
directly; the Gradio layer only wires components to them. A user mistake comes back as a
message shown in the page (never a traceback).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from styleforge import images
from styleforge.app import tune
from styleforge.app.store import JobKind, Store
from styleforge.app.worker import Worker, progress
from styleforge.errors import UserError

__all__ = ["App", "build_ui"]

PRESETS = ("quick", "standard", "max")


def _paths(files: Any) -> list[Path]:
    """Gradio file values (paths, or objects with ``.name``) -> paths."""
    if files is None:
        return []
    items = files if isinstance(files, list | tuple) else [files]
    return [Path(f) if isinstance(f, str | Path) else Path(str(f.name)) for f in items]


class App:
    """Every action of the page, on a store and its worker."""

    def __init__(self, store: Store, worker: Worker) -> None:
        self.store = store
        self.worker = worker
        self.last_created: str | None = None

    # ------------------------------------------------------------------ My styles

    def style_choices(self) -> list[tuple[str, str]]:
        """(label, id) of every style, for dropdowns."""
        return [(f"{s.name} ({s.images} images)", s.id) for s in self.store.styles()]

    def styles_table(self) -> list[list[Any]]:
        """Rows: name, images, created, id."""
        return [[s.name, s.images, s.created, s.id] for s in self.store.styles()]

    def create_style(self, name: str, files: Any, folder: str = "") -> str:
        """Create a style from uploads (or a folder on this machine); returns the audit."""
        paths = _paths(files)
        if folder.strip():
            root = Path(folder.strip()).expanduser()
            if not root.is_dir():
                raise UserError(f"{root}: no such folder")
            paths += sorted(p for p in root.rglob("*") if p.is_file())
        style, audit = self.store.create_style(name, paths)
        self.last_created = style.id
        return f"Created style **{style.name}**.\n\n```\n{audit}\n```"

    def style_preview(self, style_id: str | None) -> str | None:
        """Path of a sheet showing the style before any training: a strip of its pictures over
        the sample photos restyled straight from the painter prior (made once, then kept)."""
        if not style_id:
            return None
        folder = self.store.style_folder(style_id)
        sheet = self._preview_path(style_id)
        if sheet.exists():
            return str(sheet)
        from styleforge import collection, images, prior
        from styleforge.infer.model_file import ModelInfo
        from styleforge.infer.stylizer import Stylizer
        from styleforge.nets import PainterConfig
        from styleforge.train.data import sample_photos

        pictures = [images.open_image(p) for p in collection.scan(folder).images]
        if not pictures:
            return None
        stylizer = Stylizer(prior.painter_for(pictures), ModelInfo(net=PainterConfig()),
                            torch_cpu())  # fmt: skip
        photos = [images.resize_to(p, 256) for p in list(sample_photos().values())[:4]]
        rows = [images.make_sheet([p, stylizer(p)], ["photo", "your style, no training yet"],
                                  height=192) for p in photos]  # fmt: skip
        width = max(r.shape[-1] for r in rows)
        strip = images.collection_strip([images.pil_to_tensor(p) for p in pictures], width)
        return str(images.save_image(images.stack_rows([strip, *rows]), sheet))

    def _preview_path(self, style_id: str) -> Path:
        folder = self.store.style_folder(style_id)  # beside the folder: never a style image
        return folder.parent / f"{folder.name}.preview.png"

    def rename_style(self, style_id: str, name: str) -> str:
        """Rename a style."""
        if not style_id:
            raise UserError("pick a style")
        self.store.rename_style(style_id, name)
        return f"Renamed to **{name.strip()}**."

    def delete_style(self, style_id: str) -> str:
        """Delete a style with its pictures, jobs and models."""
        if not style_id:
            raise UserError("pick a style")
        name = self.store.style(style_id).name
        self._preview_path(style_id).unlink(missing_ok=True)
        self.store.delete_style(style_id)
        return f"Deleted **{name}**."

    # ------------------------------------------------------------------ Train

    def start_training(self, style_id: str, kind: JobKind, preset: str, steps: float | None) -> str:
        """Queue a job; returns its id."""
        if not style_id:
            raise UserError("pick a style to train")
        if kind not in ("stylizer", "sampler"):
            raise UserError(f"unknown model kind {kind!r}")
        if preset not in PRESETS:
            raise UserError(f"unknown preset {preset!r}")
        n = int(steps) if steps else None
        if n is not None and n < 1:
            raise UserError("steps must be at least 1")
        job = self.store.create_job(style_id, kind, preset, n)
        self.worker.submit(job)
        return job.id

    def job_choices(self) -> list[tuple[str, str]]:
        """(label, id) of every job, newest first."""
        names = {s.id: s.name for s in self.store.styles()}
        return [
            (f"{names.get(j.style_id, '?')} · {j.kind} · {j.status} ({j.id})", j.id)
            for j in self.store.jobs()
        ]

    def job_status(self, job_id: str | None) -> tuple[str, str | None, bytes | None]:
        """Markdown status line, latest preview path and loss-curve PNG of a job."""
        if not job_id:
            jobs = self.store.jobs()
            if not jobs:
                return "No training jobs yet.", None, None
            job_id = jobs[0].id
        job = self.store.job(job_id)
        p = progress(job)
        frac = min(1.0, p["step"] / max(1, p["total"]))
        bar = "█" * round(24 * frac) + "░" * (24 - round(24 * frac))
        text = (
            f"**{job.kind}** job `{job.id}`: **{job.status}**, step {p['step']} of "
            f"{p['total']} ({100 * frac:.0f} %). {job.message}\n\n`{bar}`"
        )
        if job.resumable:
            text += " It can be resumed from its checkpoint."
        curves = None
        if (job.run_dir / "log.csv").is_file():
            from styleforge import report

            found = report.read_run_log(job.run_dir)
            found.pop("lr_scale", None)  # a setting, not a loss
            if found:
                curves = report.plot_curves(found)
        preview = str(p["preview"]) if p["preview"] else None
        return text, preview, curves

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

    def model_choices(self, kind: JobKind) -> list[tuple[str, str]]:
        """(label, path) of finished models of a kind."""
        return [(label, str(path)) for label, path in self.store.models(kind)]

    def _results_dir(self) -> Path:
        out = self.store.root / "results" / uuid.uuid4().hex[:12]
        out.mkdir(parents=True)
        return out

    def restyle(
        self, files: Any, model: str, strength: float, preserve_colors: bool,
        use_taste: bool = True,
    ) -> list[tuple[str, str]]:  # fmt: skip
        """Restyle uploaded photos; returns (before, after) path pairs. With ``use_taste`` and
        a model that has a taste (the Tune tab's), its controls replace strength and colours."""
        from styleforge.infer.apply import stylize_pil
        from styleforge.infer.stylizer import Stylizer

        photos = _paths(files)
        if not photos:
            raise UserError("upload at least one photo")
        if not model:
            raise UserError("pick a trained style (train one in the Train tab)")
        taste = self.taste_of(model) if use_taste else None
        stylizer = Stylizer.load(model, self.worker.device)
        out = self._results_dir()
        pairs = []
        for i, photo in enumerate(photos, 1):
            if photo.stat().st_size > self.store.max_upload_bytes:
                raise UserError(f"{photo.name}: over the upload limit")
            img = images.open_image(photo)  # refuses non-images and decompression bombs
            before = out / f"photo_{i:03d}.png"
            img.save(before)
            after = out / f"restyled_{i:03d}.png"
            if taste is not None:
                stylize_pil(stylizer.backend(), img, taste.to_options()).save(after)
            else:
                stylizer(img, float(strength), preserve_colors=bool(preserve_colors)).save(after)
            pairs.append((str(before), str(after)))
        return pairs

    def dream(self, sampler: str, seeds: str, truncation: float) -> tuple[str, list[str]]:
        """Generate images for seeds; returns the grid path and the image paths."""
        import math

        from styleforge.infer.sampler import Sampler
        from styleforge.sampler_commands import parse_seeds

        if not sampler:
            raise UserError("pick a trained sampler (train one in the Train tab)")
        picked = parse_seeds(seeds or "0-15")
        if len(picked) > 256:
            raise UserError("at most 256 seeds at once here")
        batch = Sampler.load(sampler, self.worker.device).sample(picked, float(truncation))
        out = self._results_dir()
        paths = [
            str(images.save_image(img[None], out / f"seed_{s:04d}.png"))
            for s, img in zip(picked, batch, strict=True)
        ]
        cols = math.ceil(math.sqrt(len(picked)))
        grid = images.save_image(images.grid(batch, cols), out / "grid.png")
        return str(grid), paths

    def dream_more(
        self, sampler: str, liked: str, disliked: str, truncation: float, seed: float = 0
    ) -> tuple[str, list[str]]:
        """More like these: 16 images around the liked seeds, away from the disliked ones."""
        return tune.dream_more(self.store, sampler, liked, disliked, float(truncation),
                               int(seed or 0), self.worker.device)  # fmt: skip

    # ------------------------------------------------------------------ Tune (taste)

    def tune_round(self, model: str, files: Any = None) -> tune.TuneView:
        """The model's current round of 8 variants (photos: uploads, else sample photos)."""
        return tune.tune_round(self.store, model, _paths(files))

    def tune_next(self, model: str, picks: str, files: Any = None) -> tune.TuneView:
        """Record this round's picks (``"2 5 -7"``) and show the next round."""
        return tune.tune_next(self.store, model, picks, _paths(files))

    def tune_apply(self, model: str) -> str:
        """Apply my taste: the recommendation into the model file and the database."""
        return tune.tune_apply(self.store, model)

    def tune_reset(self, model: str) -> str:
        """Forget the rounds; remove the model's taste."""
        return tune.tune_reset(self.store, model)

    def tune_refine(self, model: str, files: Any = None, steps: int = 150) -> str:
        """Refine my model: a new model fine-tuned toward the liked variants (minutes)."""
        return tune.tune_refine(self.store, model, _paths(files), steps)

    @staticmethod
    def toggle_pick(picks: str, number: int | None, like: bool) -> str:
        """The picks text with variant ``number`` (1-based) liked or disliked (again: undone)."""
        return tune.toggle_pick(picks, number, like)

    @staticmethod
    def toggle_seed(liked: str, disliked: str, seed: int | None, like: bool) -> tuple[str, str]:
        """The Dream tab's liked / disliked seed lists with ``seed`` moved to one of them."""
        return tune.toggle_seed(liked, disliked, seed, like)

    @staticmethod
    def taste_of(model: str) -> Any:
        """The model's taste (:class:`~styleforge.taste.Controls`), ``None`` without one."""
        return tune.taste_of(model)


def torch_cpu() -> Any:
    """The CPU device (the web app's previews are small; the GPU is for training jobs)."""
    import torch

    return torch.device("cpu")


def _safe(fn: Any, n_outputs: int) -> Any:
    """Wrap an action: a UserError becomes a visible message in the first output."""

    def wrapped(*args: Any) -> Any:
        try:
            return fn(*args)
        except UserError as err:
            message = f"⚠️ {err}"
            return message if n_outputs == 1 else (message, *([None] * (n_outputs - 1)))

    return wrapped


def build_ui(app: App) -> Any:
    """The Gradio Blocks page: tabs My styles, Train, Restyle, Dream, Tune."""
    import os

    from styleforge.sampler_commands import parse_seeds

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home
    import gradio as gr

    def style_dd() -> Any:
        return gr.Dropdown(choices=app.style_choices(), value=None)

    with gr.Blocks(title="styleforge") as page:
        gr.Markdown("# styleforge\nLearn a style from pictures you like; restyle photos; dream.")
        with gr.Tab("My styles"):
            name = gr.Textbox(label="Style name", elem_id="style-name")
            uploads = gr.File(label="Pictures", file_count="multiple", file_types=["image"],
                              elem_id="style-files")  # fmt: skip
            folder = gr.Textbox(label="…or a folder on this machine", elem_id="style-folder")
            create = gr.Button("Create style", elem_id="create-style")
            styles_msg = gr.Markdown(elem_id="styles-msg")
            style_look = gr.Image(label="Your style on sample photos (before any training)",
                                  type="filepath", elem_id="style-preview")  # fmt: skip
            table = gr.Dataframe(headers=["name", "images", "created", "id"], interactive=False,
                                 value=app.styles_table, elem_id="styles-table")  # fmt: skip
            with gr.Row():
                pick = gr.Dropdown(label="Style", choices=app.style_choices(), elem_id="pick")
                new_name = gr.Textbox(label="New name")
                rename = gr.Button("Rename")
                delete = gr.Button("Delete", variant="stop")

        with gr.Tab("Train"):
            with gr.Row():
                t_style = gr.Dropdown(label="Style", choices=app.style_choices(),
                                      elem_id="train-style")  # fmt: skip
                kind = gr.Radio(
                    ["stylizer", "sampler"],
                    value="stylizer",
                    label="Model",
                    info="stylizer: restyle photos; sampler: new images from noise",
                )
                preset = gr.Dropdown(list(PRESETS), value="quick", label="Preset")
                steps = gr.Number(label="Steps (empty: the preset's)", precision=0,
                                  elem_id="train-steps")  # fmt: skip
            start = gr.Button("Start training", variant="primary", elem_id="start-training")
            job = gr.Dropdown(label="Job", choices=app.job_choices(), elem_id="job")
            status = gr.Markdown(elem_id="job-status")
            with gr.Row():
                preview = gr.Image(label="Latest preview", type="filepath", elem_id="preview")
                curves = gr.Image(label="Losses", type="pil")
            with gr.Row():
                cancel = gr.Button("Cancel", elem_id="cancel")
                resume = gr.Button("Resume", elem_id="resume")
            timer = gr.Timer(2.0)

        with gr.Tab("Restyle"):
            photos = gr.File(label="Photos", file_count="multiple", file_types=["image"],
                             elem_id="photos")  # fmt: skip
            with gr.Row():
                r_model = gr.Dropdown(label="Style model", choices=app.model_choices("stylizer"),
                                      elem_id="restyle-model")  # fmt: skip
                strength = gr.Slider(0, 1, value=1.0, label="Strength")
                keep = gr.Checkbox(label="Preserve colours")
                use_taste = gr.Checkbox(value=True, label="Use my taste",
                                        info="the Tune tab's; replaces strength and colours",
                                        elem_id="use-taste")  # fmt: skip
            go = gr.Button("Restyle", variant="primary", elem_id="restyle")
            r_msg = gr.Markdown(elem_id="restyle-msg")
            gallery = gr.Gallery(label="Before / after", columns=2, elem_id="restyle-gallery")
            downloads = gr.File(label="Download", file_count="multiple")

        with gr.Tab("Dream"):
            with gr.Row():
                d_model = gr.Dropdown(label="Sampler", choices=app.model_choices("sampler"),
                                      elem_id="dream-model")  # fmt: skip
                seeds = gr.Textbox(value="0-15", label="Seeds")
                trunc = gr.Slider(0, 1, value=1.0, label="Truncation")
            dream = gr.Button("Dream", variant="primary", elem_id="dream")
            d_msg = gr.Markdown()
            grid = gr.Image(label="Grid", type="filepath", elem_id="dream-grid")
            d_gallery = gr.Gallery(label="Click an image, then Like or Dislike", columns=8,
                                   allow_preview=False, object_fit="contain",
                                   elem_id="dream-gallery")  # fmt: skip
            with gr.Row():
                d_like = gr.Button("Like", elem_id="dream-like")
                d_dislike = gr.Button("Dislike", elem_id="dream-dislike")
                d_liked = gr.Textbox(label="Liked seeds", elem_id="dream-liked")
                d_disliked = gr.Textbox(label="Disliked seeds", elem_id="dream-disliked")
                d_more = gr.Button("More like these", variant="primary", elem_id="dream-more")
            d_files = gr.File(label="Download", file_count="multiple")
            d_seeds = gr.State([])  # the seeds the gallery shows (none after More like these)
            d_pick = gr.State(None)

        with gr.Tab("Tune"):
            gr.Markdown("Pick the variants you like, round after round; *Apply my taste* makes "
                        "Restyle follow it.")  # fmt: skip
            with gr.Row():
                u_model = gr.Dropdown(label="Style model", choices=app.model_choices("stylizer"),
                                      elem_id="tune-model")  # fmt: skip
                u_photos = gr.File(label="Photos to judge on (none: sample photos)",
                                   file_count="multiple", file_types=["image"],
                                   elem_id="tune-photos")  # fmt: skip
            u_show = gr.Button("Show this round", elem_id="tune-show")
            u_status = gr.Markdown(elem_id="tune-status")
            u_grid = gr.Gallery(label="Variants: click one, then Like or Dislike", columns=4,
                                allow_preview=False, object_fit="contain",
                                elem_id="tune-grid")  # fmt: skip
            with gr.Row():
                u_like = gr.Button("Like", elem_id="tune-like")
                u_dislike = gr.Button("Dislike", elem_id="tune-dislike")
                u_picks = gr.Textbox(label="Picks (numbers liked, -N disliked)",
                                     elem_id="tune-picks")  # fmt: skip
            with gr.Row():
                u_next = gr.Button("Next round", variant="primary", elem_id="tune-next")
                u_apply = gr.Button("Apply my taste", elem_id="tune-apply")
                u_refine = gr.Button("Refine my model (a few minutes)", elem_id="tune-refine")
                u_reset = gr.Button("Reset", variant="stop", elem_id="tune-reset")
            u_pick = gr.State(None)

        def refresh() -> tuple[Any, ...]:
            return (app.styles_table(), style_dd(), style_dd(),
                    gr.Dropdown(choices=app.job_choices()),
                    gr.Dropdown(choices=app.model_choices("stylizer")),
                    gr.Dropdown(choices=app.model_choices("sampler")),
                    gr.Dropdown(choices=app.model_choices("stylizer")))  # fmt: skip

        lists = [table, pick, t_style, job, r_model, d_model, u_model]

        def newest_preview() -> str | None:
            return app.style_preview(app.last_created)

        create.click(_safe(app.create_style, 1), [name, uploads, folder], styles_msg).then(
            refresh, None, lists
        ).then(newest_preview, None, style_look)
        pick.change(app.style_preview, [pick], style_look)
        rename.click(_safe(app.rename_style, 1), [pick, new_name], styles_msg).then(
            refresh, None, lists
        )
        delete.click(_safe(app.delete_style, 1), [pick], styles_msg).then(refresh, None, lists)

        def do_start(style_id: str, k: JobKind, p: str, n: float | None) -> tuple[Any, Any]:
            try:
                job_id = app.start_training(style_id, k, p, n)
            except UserError as err:
                return f"⚠️ {err}", gr.Dropdown()
            return f"Job `{job_id}` queued.", gr.Dropdown(choices=app.job_choices(), value=job_id)

        start.click(do_start, [t_style, kind, preset, steps], [status, job])

        def show(job_id: str | None) -> tuple[Any, ...]:
            text, prev, png = app.job_status(job_id)
            img = None
            if png is not None:
                import io

                from PIL import Image

                img = Image.open(io.BytesIO(png))
            return (text, prev, img, gr.Dropdown(choices=app.job_choices(), value=job_id),
                    gr.Dropdown(choices=app.model_choices("stylizer")),
                    gr.Dropdown(choices=app.model_choices("sampler")))  # fmt: skip

        watched = [status, preview, curves, job, r_model, d_model]
        timer.tick(show, [job], watched)
        job.change(show, [job], watched)
        cancel.click(_safe(app.cancel, 1), [job], status)
        resume.click(_safe(app.resume, 1), [job], status)

        def do_restyle(files: Any, model: str, s: float, k: bool, t: bool) -> tuple[Any, ...]:
            try:
                pairs = app.restyle(files, model, s, k, t)
                taste = app.taste_of(model) if t else None
            except UserError as err:
                return f"⚠️ {err}", None, None
            shown = [(p, label) for pair in pairs for p, label in zip(pair, ("before", "after"),
                                                                      strict=True)]  # fmt: skip
            note = f" with your taste ({taste.describe()})" if taste is not None else ""
            return f"Restyled {len(pairs)} photo(s){note}.", shown, [a for _, a in pairs]

        go.click(do_restyle, [photos, r_model, strength, keep, use_taste],
                 [r_msg, gallery, downloads])  # fmt: skip

        def do_dream(model: str, s: str, t: float) -> tuple[Any, ...]:
            try:
                grid_path, paths = app.dream(model, s, t)
                shown = parse_seeds(s or "0-15")
            except UserError as err:
                return f"⚠️ {err}", None, None, None, [], None
            captions = [(p, f"seed {n}") for p, n in zip(paths, shown, strict=True)]
            return f"{len(paths)} new image(s).", grid_path, paths, captions, shown, None

        dream_out = [d_msg, grid, d_files, d_gallery, d_seeds, d_pick]
        dream.click(do_dream, [d_model, seeds, trunc], dream_out)

        def selected(evt: gr.SelectData) -> int:
            return int(evt.index)

        # Gradio finds the event argument by its annotation; this module's are strings
        selected.__annotations__ = {"evt": gr.SelectData, "return": int}

        d_gallery.select(selected, None, d_pick)

        def do_seed(like: bool) -> Any:
            def press(liked: str, disliked: str, shown: list[int], i: int | None) -> Any:
                seed = shown[i] if i is not None and i < len(shown) else None
                try:
                    return (*app.toggle_seed(liked, disliked, seed, like), "")
                except UserError as err:
                    return liked, disliked, f"⚠️ {err}"

            return press

        seed_io = [d_liked, d_disliked, d_seeds, d_pick]
        d_like.click(do_seed(True), seed_io, [d_liked, d_disliked, d_msg])
        d_dislike.click(do_seed(False), seed_io, [d_liked, d_disliked, d_msg])

        def do_more(model: str, liked: str, disliked: str, t: float) -> tuple[Any, ...]:
            try:
                grid_path, paths = app.dream_more(model, liked, disliked, t)
            except UserError as err:
                return f"⚠️ {err}", None, None, None, [], None
            shown = [(p, f"variant {i + 1}") for i, p in enumerate(paths)]
            text = f"{len(paths)} new image(s) around seed(s) {liked}."
            return text, grid_path, paths, shown, [], None

        d_more.click(do_more, [d_model, d_liked, d_disliked, trunc], dream_out)

        def tune_view(run: Any) -> Any:
            def action(*args: Any) -> tuple[Any, ...]:
                try:
                    view = run(*args)
                except UserError as err:
                    return f"⚠️ {err}", gr.Gallery(), gr.Textbox(), None
                return view.text, list(view.variants), "", None

            return action

        tune_out = [u_status, u_grid, u_picks, u_pick]
        u_show.click(tune_view(app.tune_round), [u_model, u_photos], tune_out)
        u_model.change(tune_view(app.tune_round), [u_model, u_photos], tune_out)
        u_next.click(tune_view(app.tune_next), [u_model, u_picks, u_photos], tune_out)
        u_grid.select(selected, None, u_pick)

        def do_pick(like: bool) -> Any:
            def press(picks: str, i: int | None) -> tuple[str, str]:
                try:
                    return app.toggle_pick(picks, None if i is None else i + 1, like), ""
                except UserError as err:
                    return picks, f"⚠️ {err}"

            return press

        u_like.click(do_pick(True), [u_picks, u_pick], [u_picks, u_status])
        u_dislike.click(do_pick(False), [u_picks, u_pick], [u_picks, u_status])
        u_apply.click(_safe(app.tune_apply, 1), [u_model], u_status)
        u_refine.click(_safe(app.tune_refine, 1), [u_model, u_photos], u_status).then(
            refresh, None, lists
        )
        u_reset.click(_safe(app.tune_reset, 1), [u_model], u_status).then(
            lambda: (gr.Gallery(value=None), "", None), None, [u_grid, u_picks, u_pick]
        )
        page.load(refresh, None, lists)
    return page


def serve(
    data_dir: Path, host: str = "127.0.0.1", port: int = 7860, max_upload_mb: int = 20,
    device: str = "auto", auth: tuple[str, str] | None = None,
) -> None:  # fmt: skip
    """Start the app (blocks until Ctrl-C); a running job keeps its checkpoint on exit.
    ``auth``: the (user, password) Gradio's login asks for (see :mod:`styleforge.app.auth`)."""
    store = Store(data_dir, max_upload_bytes=max_upload_mb * 2**20)
    worker = Worker(store, device).start()
    page = build_ui(App(store, worker))
    try:
        page.queue(default_concurrency_limit=4).launch(
            server_name=host, server_port=port, max_file_size=f"{max_upload_mb}mb",
            show_error=False, allowed_paths=[str(data_dir)], auth=auth,
        )  # fmt: skip
    finally:
        worker.close()


def copy_sample_photos(out: Path) -> list[Path]:
    """The bundled sample photos as files (for trying the app)."""
    from styleforge.train.data import sample_photos

    out.mkdir(parents=True, exist_ok=True)
    return [images.save_image(t, out / f"{n}.png") for n, t in sample_photos().items()]
