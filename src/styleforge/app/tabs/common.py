"""What the tabs share: user mistakes as page messages, picking galleries, the lists refresh."""

# No ``from __future__ import annotations`` here: Gradio finds an event handler's event
# argument by its annotation, so ``selected_index``'s must be the class itself.

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from styleforge.errors import UserError

__all__ = ["POLL_SECONDS", "Refresh", "picker_gallery", "safe", "selected_index", "warn"]

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
