"""The Restyle tab: restyle uploaded photos, or a short clip, with a trained model (and its
taste)."""

from __future__ import annotations

import hashlib
from typing import Any

import gradio as gr

from styleforge.app.actions import CLIP_MAX_SIZE, COLORS, MAX_CLIP_SECONDS, STRENGTH, App
from styleforge.app.tabs.common import NumberField, warn
from styleforge.errors import UserError

__all__ = ["RestyleTab"]


class RestyleTab:
    """The tab's components; ``model`` lists the trained stylizers."""

    def __init__(self, app: App) -> None:
        self.app = app
        # The history is kept in this browser (a reload keeps it; another visitor never sees
        # it), outside the tab: a tab not shown yet would not read it before the page's load.
        # The key only scrambles it in the browser, which holds it too; stable across restarts.
        key = hashlib.sha256(str(app.store.root.resolve()).encode()).hexdigest()[:32]
        self.history = gr.BrowserState([], storage_key="styleforge-restyle-history",
                                       secret=key)  # fmt: skip
        with gr.Tab("Restyle"):
            self.photos = gr.File(label="Photos", file_count="multiple", file_types=["image"],
                                  elem_id="photos")  # fmt: skip
            with gr.Row():
                self.model = gr.Dropdown(label="Style model", elem_id="restyle-model",
                                         choices=app.model_choices("stylizer"))  # fmt: skip
                self.strength = NumberField(STRENGTH, 1.0, "restyle-strength", step=0.05,
                                            label="Strength", info="0 the photo, 1 the "
                                            "style, 2 more paint")  # fmt: skip
                self.colors = NumberField(COLORS, 0.0, "restyle-colors", step=0.05,
                                          label="Photo colours kept")  # fmt: skip
                self.use_taste = gr.Checkbox(value=True, label="Use my taste",
                                             info="the Tune tab's: it sets the sliders when you "
                                             "pick the model, and its stroke size and tone",
                                             elem_id="use-taste")  # fmt: skip
            self.go = gr.Button("Restyle", variant="primary", elem_id="restyle")
            self.message = gr.Markdown(elem_id="restyle-msg")
            self.gallery = gr.Gallery(label="Before / after", columns=2,
                                      elem_id="restyle-gallery")  # fmt: skip
            self.downloads = gr.File(label="Download", file_count="multiple")
            self.earlier = gr.Gallery(label="Your earlier results (this browser, newest first)",
                                      columns=4, elem_id="restyle-history")  # fmt: skip
            limit = f"up to {MAX_CLIP_SECONDS:.0f} s, frames at {CLIP_MAX_SIZE} px"
            with gr.Accordion(f"A short clip ({limit})", open=False):
                with gr.Row():
                    self.clip = gr.File(label=f"Clip (.mp4, .mov, .webm, .gif; {limit})",
                                        file_types=[".mp4", ".mov", ".webm", ".mkv", ".gif"],
                                        elem_id="clip")  # fmt: skip
                    self.clip_out = gr.Video(label="Restyled clip", elem_id="clip-out")
                self.go_clip = gr.Button("Restyle the clip", elem_id="restyle-clip")

    def wire(self, page: Any) -> None:
        """Restyle shows each photo before and after, offers the results to download and adds
        them to this browser's history, which ``page`` shows again on each load. A slider set
        to what it cannot take is refused beside it, and nothing is restyled."""
        app = self.app
        fields = (self.strength, self.colors)
        for field in fields:
            field.wire()
        notes = [f.note for f in fields]
        refused = [f.refused for f in fields]

        def refusals(strength: Any, colors: Any, *kept: str) -> list[str] | None:
            """The notes beside the sliders when one of them cannot be used, else None."""
            shown = [f.refusal(v, r) for f, v, r in zip(fields, (strength, colors), kept,
                                                          strict=True)]  # fmt: skip
            return shown if any(shown) else None

        def restyle(files: Any, model: str, strength: Any, colors: Any, use_taste: bool,
                    history: Any, *kept: str) -> tuple[Any, ...]:  # fmt: skip
            if (shown := refusals(strength, colors, *kept)) is not None:
                return (gr.skip(),) * 5 + (*shown,)
            try:
                pairs = app.restyle(files, model, strength, colors, use_taste)
                taste = app.taste_of(model) if use_taste else None
            except UserError as err:
                return warn(err), None, None, gr.skip(), gr.skip(), "", ""
            note = f" with your taste ({taste.describe()})" if taste is not None else ""
            kept_pairs = app.restyle_history([list(p) for p in pairs] + list(history or []))
            return (f"Restyled {len(pairs)} photo(s){note}.", _captioned(pairs),
                    [a for _, a in pairs], _captioned(kept_pairs),
                    [list(p) for p in kept_pairs], "", "")  # fmt: skip

        def earlier(history: Any) -> tuple[Any, Any]:
            kept_pairs = app.restyle_history(history)
            return _captioned(kept_pairs), [list(p) for p in kept_pairs]

        page.load(earlier, [self.history], [self.earlier, self.history])

        def controls(model: str, use_taste: bool) -> tuple[Any, ...]:
            try:
                strength, colors = app.restyle_controls(model, use_taste)
            except UserError:
                return (gr.skip(),) * 6
            return strength, colors, *self.strength.cleared(), *self.colors.cleared()

        def restyle_clip(clip: Any, model: str, strength: Any, colors: Any, use_taste: bool,
                         *kept: str) -> tuple[Any, ...]:  # fmt: skip
            if (shown := refusals(strength, colors, *kept)) is not None:
                return (gr.skip(),) * 2 + (*shown,)
            try:
                out = app.restyle_clip(clip, model, strength, colors, use_taste)
            except UserError as err:
                return warn(err), None, "", ""
            text = "Restyled the clip (frames blended along the motion against flicker)."
            return text, out, "", ""

        sliders = [self.strength.slider, self.colors.slider]
        self.go_clip.click(restyle_clip, [self.clip, self.model, *sliders, self.use_taste,
                                          *refused],
                           [self.message, self.clip_out, *notes])  # fmt: skip
        for trigger in (self.model.change, self.use_taste.change):
            trigger(controls, [self.model, self.use_taste],
                    [*sliders, self.strength.note, self.strength.refused, self.colors.note,
                     self.colors.refused])  # fmt: skip
        self.go.click(restyle, [self.photos, self.model, *sliders, self.use_taste,
                                self.history, *refused],
                      [self.message, self.gallery, self.downloads, self.earlier,
                       self.history, *notes])  # fmt: skip


def _captioned(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(before, after) pairs as a gallery's captioned pictures."""
    return [(p, label) for pair in pairs
            for p, label in zip(pair, ("before", "after"), strict=True)]  # fmt: skip
