"""The Tune tab: pick the variants you like, round after round; apply the taste, or refine
the model on it (a job the page watches until its new model is ready)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from styleforge.app.actions import App
from styleforge.app.tabs.common import (
    POLL_SECONDS,
    Refresh,
    picker_gallery,
    safe,
    selected_index,
    warn,
)
from styleforge.app.tune import TuneView
from styleforge.errors import UserError

__all__ = ["TuneTab"]


class TuneTab:
    """The tab's components; ``model`` lists the trained stylizers."""

    def __init__(self, app: App) -> None:
        self.app = app
        with gr.Tab("Tune"):
            gr.Markdown("Pick the variants you like, your favourite first, round after round: "
                        "after each round your taste (your favourite) is saved in the model and "
                        "Restyle follows it.")  # fmt: skip
            with gr.Row():
                self.model = gr.Dropdown(label="Style model", elem_id="tune-model",
                                         choices=app.model_choices("stylizer"))  # fmt: skip
                self.photos = gr.File(label="Photos to judge on (none: sample photos)",
                                      file_count="multiple", file_types=["image"],
                                      elem_id="tune-photos")  # fmt: skip
            self.show = gr.Button("Show this round", elem_id="tune-show")
            self.status = gr.Markdown(elem_id="tune-status")
            self.grid = picker_gallery("Variants: click one, then Like or Dislike", 4, "tune-grid")
            with gr.Row():
                self.like = gr.Button("Like", elem_id="tune-like")
                self.dislike = gr.Button("Dislike", elem_id="tune-dislike")
                self.picks = gr.Textbox(label="Picks (numbers liked, favourite first; -N disliked)",
                                        elem_id="tune-picks")  # fmt: skip
            with gr.Row():
                self.next = gr.Button("Next round", variant="primary", elem_id="tune-next")
                self.refine = gr.Button("Refine my model (a few minutes)", elem_id="tune-refine")
                self.reset = gr.Button("Reset", variant="stop", elem_id="tune-reset")
            self.picked = gr.State(None)  # the grid cell last clicked
            self.refining = gr.State(None)  # the id of the refine job the page waits for
            self.timer = gr.Timer(POLL_SECONDS, active=False)  # runs while one is

    def wire(self, refresh: Refresh) -> None:
        """Rounds fill the grid; Like and Dislike edit the picks; Refine queues a job, and the
        timer watches it until its model is listed."""
        app = self.app
        view = [self.status, self.grid, self.picks, self.picked]
        self.show.click(self._view(app.tune_round), [self.model, self.photos], view)
        self.model.change(self._view(app.tune_round), [self.model, self.photos], view)
        self.next.click(self._view(app.tune_next), [self.model, self.picks, self.photos], view)
        self.grid.select(selected_index, None, self.picked)
        self.like.click(self._pick(True), [self.picks, self.picked], [self.picks, self.status])
        self.dislike.click(self._pick(False), [self.picks, self.picked], [self.picks, self.status])
        self.reset.click(safe(app.tune_reset), [self.model], self.status).then(
            lambda: (gr.Gallery(value=None), "", None), None, [self.grid, self.picks, self.picked]
        )
        self._wire_refine(refresh)

    def _wire_refine(self, refresh: Refresh) -> None:
        """Refine queues a job and starts the timer; each tick looks at the job, and once it
        has ended shows its outcome, lists its model and stops the timer."""
        app = self.app

        def start(model: str, files: Any) -> tuple[Any, ...]:
            try:
                job_id = app.tune_refine(model, files)
            except UserError as err:
                return warn(err), None, gr.Timer(active=False)
            text = (f"Refining into a new model: job `{job_id}` (a few minutes; the Train tab "
                    "shows it). It is listed here and in Restyle when it is done.")  # fmt: skip
            return text, job_id, gr.Timer(active=True)

        def watch(job_id: str | None) -> tuple[Any, ...]:
            text = None if job_id is None else app.refine_status(job_id)
            if text is None and job_id is not None:  # still queued or running
                return gr.skip(), gr.skip(), job_id, gr.skip()
            return (text or gr.skip(), gr.Dropdown(choices=app.model_choices("stylizer")), None,
                    gr.Timer(active=False))  # fmt: skip

        started = self.refine.click(start, [self.model, self.photos],
                                    [self.status, self.refining, self.timer])  # fmt: skip
        refresh.after(started)
        self.timer.tick(watch, [self.refining], [self.status, self.model, self.refining,
                                                 self.timer])  # fmt: skip

    @staticmethod
    def _view(run: Callable[..., TuneView]) -> Callable[..., tuple[Any, ...]]:
        """A round action (show this round, next round) for the grid and its picks."""

        def action(*args: Any) -> tuple[Any, ...]:
            try:
                view = run(*args)
            except UserError as err:
                return warn(err), gr.Gallery(), gr.Textbox(), None
            return view.text, list(view.variants), "", None

        return action

    def _pick(self, like: bool) -> Callable[[str, int | None], tuple[str, str]]:
        """The Like (or Dislike) button's action on the clicked variant."""

        def press(picks: str, i: int | None) -> tuple[str, str]:
            try:
                return self.app.toggle_pick(picks, None if i is None else i + 1, like), ""
            except UserError as err:
                return picks, warn(err)

        return press
