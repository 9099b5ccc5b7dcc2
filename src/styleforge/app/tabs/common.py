"""What the tabs share: user mistakes as page messages, picking galleries, the lists refresh."""

# No ``from __future__ import annotations`` here: Gradio finds an event handler's event
# argument by its annotation, so ``selected_index``'s must be the class itself.

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from styleforge.app.actions import NumberRange
from styleforge.errors import UserError

__all__ = [
    "POLL_SECONDS",
    "NumberField",
    "Refresh",
    "picker_gallery",
    "safe",
    "selected_index",
    "warn",
]

#: Seconds between two looks at a job the page watches (training, refine).
POLL_SECONDS = 2.0


def warn(err: UserError) -> str:
    """A user mistake as the page shows it."""
    return f"⚠️ {err}"


def safe(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` for a single Markdown output: a UserError becomes the message shown there."""

    def wrapped(*args: Any) -> Any:
        try:
            return fn(*args)
        except UserError as err:
            return warn(err)

    return wrapped


def selected_index(evt: gr.SelectData) -> int:
    """The index of the gallery cell just clicked."""
    return int(evt.index)


def picker_gallery(label: str, columns: int, elem_id: str) -> Any:
    """A gallery of results to click one of (then Like or Dislike), without the big preview."""
    return gr.Gallery(label=label, columns=columns, allow_preview=False, object_fit="contain",
                      elem_id=elem_id)  # fmt: skip


@dataclass(frozen=True)
class Refresh:
    """Re-reading the styles, jobs and models into every table and dropdown listing them.

    ``read``: -> one update per component of ``outputs``, in order.
    """

    read: Callable[[], tuple[Any, ...]]
    outputs: tuple[Any, ...]

    def after(self, event: Any) -> Any:
        """Refresh the lists once ``event`` (a Gradio event) has run; -> the chained event."""
        return event.then(self.read, None, list(self.outputs))


class NumberField:
    """A slider for a :class:`NumberRange` with a note beside it.

    The note says why what the user set cannot be used and stays, whatever else the page
    does, until the user changes the field; the page's own number box pulls a typed value
    back into range when it loses focus, so the refusal is also kept in ``refused`` (per
    page), and the actions refuse to run while it stands (:meth:`refusal`).
    """

    def __init__(self, limits: NumberRange, value: float, elem_id: str, **kwargs: Any) -> None:
        self.limits = limits
        with gr.Column():
            self.slider = gr.Slider(limits.low, limits.high, value=value, elem_id=elem_id,
                                    **kwargs)  # fmt: skip
            self.note = gr.Markdown(elem_id=f"{elem_id}-note")
        self.refused = gr.State("")

    def wire(self) -> None:
        """The user's changes (typing, dragging; not the page's own) set or clear the note.
        The value comes as the page sent it (empty or out of range included): Gradio's own
        check would raise a pop-up that fades instead."""
        self.slider.input(self.check, [self.slider], [self.note, self.refused],
                          preprocess=False)  # fmt: skip

    def check(self, value: Any) -> tuple[str, str]:
        """The note for a value the user just set ('' when usable), twice: shown and kept."""
        try:
            self.limits.parse(value)
        except UserError as err:  # the box may show the nearest end by now: still refused
            note = f"{warn(err)}. Set it again to go on."
            return note, note
        return "", ""

    def refusal(self, value: Any, refused: str) -> str:
        """Why an action cannot use the field ('' when it can): the refusal standing since
        the user last changed it, else the value's own."""
        return refused or self.check(value)[0]

    def cleared(self) -> tuple[str, str]:
        """Note and refusal when the page sets the field itself (a model's settings)."""
        return "", ""
