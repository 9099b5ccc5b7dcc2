"""The Train tab: queue a training job, watch it (status, preview, loss curves), cancel,
resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from styleforge.app.actions import App
from styleforge.app.store import JobKind
from styleforge.app.tabs.common import POLL_SECONDS, safe, warn
from styleforge.app.worker import STABILITY_WEIGHT
from styleforge.errors import UserError
from styleforge.train.config import PRESETS

__all__ = ["TrainTab"]


class TrainTab:
    """The tab's components; ``style`` lists the styles, ``job`` the jobs."""

    def __init__(self, app: App) -> None:
        self.app = app
        with gr.Tab("Train"):
            with gr.Row():
                self.style = gr.Dropdown(label="Style", choices=app.style_choices(),
                                         elem_id="train-style")  # fmt: skip
                self.kind = gr.Radio(["stylizer", "sampler"], value="stylizer", label="Model",
                                     elem_id="train-kind",
                                     info="stylizer: restyle photos; sampler: new images from "
                                     "noise")  # fmt: skip
                self.preset = gr.Dropdown(list(PRESETS), value="quick", label="Preset",
                                          info="stylizer quick: about 2.5 min on a 2-core CPU; "
                                          "standard, max: for a GPU")  # fmt: skip
                with gr.Column():
                    self.steps = gr.Textbox(value=str(app.preset_steps("stylizer", "quick")),
                                            label="Steps", info="the preset's, or a whole number",
                                            max_lines=1, elem_id="train-steps")  # fmt: skip
                    self.steps_note = gr.Markdown(elem_id="train-steps-note")
            self.stability = gr.Checkbox(
                value=False, label="Steadier video (stability term)", elem_id="train-stability",
                info=f"stylizer only: weight {STABILITY_WEIGHT:.0e}; the network learns to "
                "change little when the photo changes little (noise, a shift of a pixel or two), "
                "which halves a clip's flicker before the blend, at a little style; each step "
                "runs twice the photos. Worth it for video, not for photos.",
            )  # fmt: skip
            self.start = gr.Button("Start training", variant="primary", elem_id="start-training")
            self.job = gr.Dropdown(label="Job", choices=app.job_choices(), elem_id="job")
            self.status = gr.Markdown(elem_id="job-status")
            with gr.Row():
                self.preview = gr.Image(label="Latest preview", type="filepath", elem_id="preview")
                self.curves = gr.Image(label="Losses", type="filepath", elem_id="losses")
            with gr.Row():
                self.cancel = gr.Button("Cancel", elem_id="cancel")
                self.resume = gr.Button("Resume", elem_id="resume")
            self.seen = gr.State({})  # what this page shows now: unchanged parts are skipped
            self.timer = gr.Timer(POLL_SECONDS)

    def wire(self, stylizers: Any, samplers: Any) -> None:
        """Start queues a job and watches it; the timer shows the watched job and keeps the
        model dropdowns ``stylizers`` and ``samplers`` (other tabs') up to date, sending only
        what changed since this page's last look. The Steps field shows the preset's steps and
        a note under it while what it holds cannot be used."""
        app = self.app

        def start(style_id: str, kind: JobKind, preset: str, steps: str,
                  steady: bool) -> tuple[Any, ...]:  # fmt: skip
            try:
                app.parse_steps(steps, kind, preset)
            except UserError as err:  # beside the field, where no status refresh wipes it
                return gr.skip(), gr.skip(), warn(err)
            try:
                job_id = app.start_training(style_id, kind, preset, steps, steady=steady)
            except UserError as err:
                return warn(err), gr.skip(), ""
            choices = gr.Dropdown(choices=app.job_choices(), value=job_id)
            return f"Job `{job_id}` queued.", choices, ""

        def check(steps: str, kind: JobKind, preset: str) -> str:
            try:
                app.parse_steps(steps, kind, preset)
            except UserError as err:
                return warn(err)
            return ""

        def preset_steps(kind: JobKind, preset: str) -> tuple[str, str]:
            return str(app.preset_steps(kind, preset)), ""

        self.start.click(start, [self.style, self.kind, self.preset, self.steps, self.stability],
                         [self.status, self.job, self.steps_note])  # fmt: skip
        self.steps.change(check, [self.steps, self.kind, self.preset], self.steps_note)
        for picked in (self.kind.change, self.preset.change):
            picked(preset_steps, [self.kind, self.preset], [self.steps, self.steps_note])
        watched = [self.status, self.preview, self.curves, self.job, stylizers, samplers,
                   self.seen]  # fmt: skip
        self.timer.tick(self._show, [self.job, self.seen], watched)
        self.job.change(self._show, [self.job, self.seen], watched)
        self.cancel.click(safe(app.cancel), [self.job], self.status)
        self.resume.click(safe(app.resume), [self.job], self.status)

    def _show(self, job_id: str | None, seen: dict[str, Any]) -> tuple[Any, ...]:
        """One look at the watched job: each output that changed since this page's last look
        (``seen``), gr.skip() for the others, and what the page shows now."""
        app = self.app
        text, preview, plot = app.job_status(job_id)
        now: dict[str, Any] = {
            "text": text,
            "preview": _stamped(preview),
            "plot": _stamped(plot),
            "jobs": (app.job_choices(), job_id),
            "stylizers": app.model_choices("stylizer"),
            "samplers": app.model_choices("sampler"),
        }
        made = {
            "text": lambda: text,
            "preview": lambda: preview,
            "plot": lambda: plot,
            "jobs": lambda: gr.Dropdown(choices=now["jobs"][0], value=job_id),
            "stylizers": lambda: gr.Dropdown(choices=now["stylizers"]),
            "samplers": lambda: gr.Dropdown(choices=now["samplers"]),
        }
        out = [made[key]() if seen.get(key) != now[key] else gr.skip() for key in made]
        return (*out, now)


def _stamped(path: str | None) -> tuple[str, int] | None:
    """A file shown, with its change time (a new picture under the same name is a change)."""
    if path is None:
        return None
    try:
        return path, Path(path).stat().st_mtime_ns
    except OSError:
        return None
