"""The Dream tab: new images from a trained sampler; like or dislike some, then more like these."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from styleforge.app.actions import TRUNCATION, App
from styleforge.app.dream import DEFAULT_SEEDS, dream_seeds
from styleforge.app.tabs.common import NumberField, picker_gallery, selected_index, warn
from styleforge.errors import UserError

__all__ = ["DreamTab"]


class DreamTab:
    """The tab's components; ``model`` lists the trained samplers."""

    def __init__(self, app: App) -> None:
        self.app = app
        with gr.Tab("Dream"):
            with gr.Row():
                self.model = gr.Dropdown(label="Sampler", choices=app.model_choices("sampler"),
                                         elem_id="dream-model")  # fmt: skip
                self.seeds = gr.Textbox(value=DEFAULT_SEEDS, label="Seeds")
                self.truncation = NumberField(TRUNCATION, 1.0, "dream-truncation", step=0.01,
                                              label="Truncation",
                                              info="1 all the variety, 0 the average")  # fmt: skip
            self.dream = gr.Button("Dream", variant="primary", elem_id="dream")
            self.message = gr.Markdown(elem_id="dream-msg")
            self.grid = gr.Image(label="Grid", type="filepath", elem_id="dream-grid")
            self.gallery = picker_gallery("Click an image, then Like or Dislike", 8,
                                          "dream-gallery")  # fmt: skip
            with gr.Row():
                self.like = gr.Button("Like", elem_id="dream-like")
                self.dislike = gr.Button("Dislike", elem_id="dream-dislike")
                self.liked = gr.Textbox(label="Liked seeds", elem_id="dream-liked")
                self.disliked = gr.Textbox(label="Disliked seeds", elem_id="dream-disliked")
                self.more = gr.Button("More like these", variant="primary", elem_id="dream-more")
            self.files = gr.File(label="Download", file_count="multiple")
            self.shown = gr.State([])  # the seeds the gallery shows (none after More like these)
            self.picked = gr.State(None)  # the gallery cell last clicked

    def wire(self) -> None:
        """Dream and More like these fill the grid and gallery (a Truncation the field cannot
        take is refused beside it, and nothing is drawn); Like and Dislike move the clicked
        image's seed between the two lists."""
        app = self.app
        field = self.truncation
        field.wire()

        def dream(model: str, seeds: str, truncation: Any, refused: str) -> tuple[Any, ...]:
            if note := field.refusal(truncation, refused):
                return (gr.skip(),) * 6 + (note,)
            try:
                grid, paths = app.dream(model, seeds, truncation)
                shown = dream_seeds(seeds)
            except UserError as err:
                return warn(err), None, None, None, [], None, ""
            captions = [(p, f"seed {n}") for p, n in zip(paths, shown, strict=True)]
            return f"{len(paths)} new image(s).", grid, paths, captions, shown, None, ""

        def more(model: str, liked: str, disliked: str, truncation: Any,
                 refused: str) -> tuple[Any, ...]:  # fmt: skip
            if note := field.refusal(truncation, refused):
                return (gr.skip(),) * 6 + (note,)
            try:
                grid, paths = app.dream_more(model, liked, disliked, truncation)
            except UserError as err:
                return warn(err), None, None, None, [], None, ""
            captions = [(p, f"variant {i + 1}") for i, p in enumerate(paths)]
            text = f"{len(paths)} new image(s) around seed(s) {liked}."
            return text, grid, paths, captions, [], None, ""

        results = [self.message, self.grid, self.files, self.gallery, self.shown, self.picked,
                   field.note]  # fmt: skip
        self.dream.click(dream, [self.model, self.seeds, field.slider, field.refused], results)
        self.more.click(more, [self.model, self.liked, self.disliked, field.slider,
                               field.refused], results)  # fmt: skip
        self.gallery.select(selected_index, None, self.picked)
        marks = [self.liked, self.disliked, self.shown, self.picked]
        self.like.click(self._mark(True), marks, [self.liked, self.disliked, self.message])
        self.dislike.click(self._mark(False), marks, [self.liked, self.disliked, self.message])

    def _mark(self, like: bool) -> Callable[..., tuple[str, str, str]]:
        """The Like (or Dislike) button's action on the clicked image's seed."""

        def press(
            liked: str, disliked: str, shown: list[int], i: int | None
        ) -> tuple[str, str, str]:
            seed = shown[i] if i is not None and i < len(shown) else None
            try:
                return (*self.app.toggle_seed(liked, disliked, seed, like), "")
            except UserError as err:
                return liked, disliked, warn(err)

        return press
