"""The My styles tab: create a style from pictures, see its look before training, rename,
delete."""

from __future__ import annotations

from typing import Any

import gradio as gr

from styleforge.app.actions import App
from styleforge.app.tabs.common import Refresh, safe, warn
from styleforge.errors import UserError

__all__ = ["StylesTab"]


class StylesTab:
    """The tab's components; ``table`` and ``pick`` list the styles."""

    def __init__(self, app: App) -> None:
        self.app = app
        with gr.Tab("My styles"):
            self.name = gr.Textbox(label="Style name", elem_id="style-name")
            self.uploads = gr.File(label="Pictures", file_count="multiple",
                                   file_types=["image"], elem_id="style-files")  # fmt: skip
            self.folder = gr.Textbox(label="…or a folder on this machine", elem_id="style-folder")
            self.create = gr.Button("Create style", elem_id="create-style")
            self.message = gr.Markdown(elem_id="styles-msg")
            self.look = gr.Image(label="Your style on sample photos (before any training)",
                                 type="filepath", elem_id="style-preview")  # fmt: skip
            self.table = gr.Dataframe(headers=["name", "images", "created", "id"],
                                      interactive=False, value=app.styles_table,
                                      elem_id="styles-table")  # fmt: skip
            with gr.Row():
                self.pick = gr.Dropdown(label="Style", choices=app.style_choices(),
                                        elem_id="pick")  # fmt: skip
                self.new_name = gr.Textbox(label="New name")
                self.rename = gr.Button("Rename")
                self.delete = gr.Button("Delete", variant="stop")
            self.created = gr.State(None)  # the style this page created last (its own)

    def wire(self, refresh: Refresh) -> None:
        """Create, rename and delete refresh every list; a new style shows its look."""
        app = self.app

        def create(name: str, files: Any, folder: str) -> tuple[str, str | None]:
            try:
                return app.new_style(name, files, folder)
            except UserError as err:
                return warn(err), None

        created = self.create.click(create, [self.name, self.uploads, self.folder],
                                    [self.message, self.created])  # fmt: skip
        refresh.after(created).then(app.style_preview, [self.created], self.look)
        self.pick.change(app.style_preview, [self.pick], self.look)
        refresh.after(self.rename.click(safe(app.rename_style), [self.pick, self.new_name],
                                        self.message))  # fmt: skip
        refresh.after(self.delete.click(safe(app.delete_style), [self.pick], self.message))
