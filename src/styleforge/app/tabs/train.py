"""The Train tab: queue a training job, watch it (status, preview, loss curves), cancel,
resume."""

from __future__ import annotations

import io
from typing import Any

import gradio as gr
from PIL import Image

from styleforge.app.actions import App
from styleforge.app.store import JobKind
from styleforge.app.tabs.common import POLL_SECONDS, safe, warn
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
                                     info="stylizer: restyle photos; sampler: new images from "
                                     "noise")  # fmt: skip
                self.preset = gr.Dropdown(list(PRESETS), value="quick", label="Preset")
                self.steps = gr.Number(label="Steps (empty: the preset's)", precision=0,
                                       elem_id="train-steps")  # fmt: skip
            self.start = gr.Button("Start training", variant="primary", elem_id="start-training")
            self.job = gr.Dropdown(label="Job", choices=app.job_choices(), elem_id="job")
            self.status = gr.Markdown(elem_id="job-status")
            with gr.Row():
                self.preview = gr.Image(label="Latest preview", type="filepath", elem_id="preview")
                self.curves = gr.Image(label="Losses", type="pil")
            with gr.Row():
                self.cancel = gr.Button("Cancel", elem_id="cancel")
                self.resume = gr.Button("Resume", elem_id="resume")
            self.timer = gr.Timer(POLL_SECONDS)

    def wire(self, stylizers: Any, samplers: Any) -> None:
        """Start queues a job and watches it; the timer shows the watched job and keeps the
        model dropdowns ``stylizers`` and ``samplers`` (other tabs') up to date."""
        app = self.app

        def start(
            style_id: str, kind: JobKind, preset: str, steps: float | None
        ) -> tuple[Any, Any]:
            try:
                job_id = app.start_training(style_id, kind, preset, steps)
            except UserError as err:
                return warn(err), gr.Dropdown()
            return f"Job `{job_id}` queued.", gr.Dropdown(choices=app.job_choices(), value=job_id)

        def show(job_id: str | None) -> tuple[Any, ...]:
            text, preview, png = app.job_status(job_id)
            curves = None if png is None else Image.open(io.BytesIO(png))
            return (text, preview, curves, gr.Dropdown(choices=app.job_choices(), value=job_id),
                    gr.Dropdown(choices=app.model_choices("stylizer")),
                    gr.Dropdown(choices=app.model_choices("sampler")))  # fmt: skip

        self.start.click(start, [self.style, self.kind, self.preset, self.steps],
                         [self.status, self.job])  # fmt: skip
        watched = [self.status, self.preview, self.curves, self.job, stylizers, samplers]
        self.timer.tick(show, [self.job], watched)
        self.job.change(show, [self.job], watched)
        self.cancel.click(safe(app.cancel), [self.job], self.status)
        self.resume.click(safe(app.resume), [self.job], self.status)
