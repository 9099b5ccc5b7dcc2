"""The web page: ``build_ui`` lays the tabs out on an :class:`~styleforge.app.actions.App`;
``serve`` runs it.

The tabs (:mod:`styleforge.app.tabs`) are My styles, Train, Restyle, Dream and Tune, one module
each. Gradio is imported only here, when the page is built, so the app's actions and their
tests never load it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from styleforge.app.actions import App
from styleforge.app.store import Store
from styleforge.app.worker import Worker

__all__ = ["App", "build_ui", "serve"]


def build_ui(app: App) -> Any:
    """The Gradio Blocks page: tabs My styles, Train, Restyle, Dream, Tune."""
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home
    import gradio as gr

    from styleforge.app.tabs.common import Refresh
    from styleforge.app.tabs.dream import DreamTab
    from styleforge.app.tabs.restyle import RestyleTab
    from styleforge.app.tabs.styles import StylesTab
    from styleforge.app.tabs.train import TrainTab
    from styleforge.app.tabs.tune import TuneTab

    with gr.Blocks(title="styleforge") as page:
        gr.Markdown("# styleforge\nLearn a style from pictures you like; restyle photos; dream.")
        styles, train, restyle = StylesTab(app), TrainTab(app), RestyleTab(app)
        dream, tune = DreamTab(app), TuneTab(app)

        def lists() -> tuple[Any, ...]:
            def styles_dd() -> Any:
                return gr.Dropdown(choices=app.style_choices(), value=None)

            def models_dd(kind: Any) -> Any:
                return gr.Dropdown(choices=app.model_choices(kind))

            return (app.styles_table(), styles_dd(), styles_dd(),
                    gr.Dropdown(choices=app.job_choices()), models_dd("stylizer"),
                    models_dd("sampler"), models_dd("stylizer"))  # fmt: skip

        refresh = Refresh(lists, (styles.table, styles.pick, train.style, train.job,
                                  restyle.model, dream.model, tune.model))  # fmt: skip
        styles.wire(refresh)
        train.wire(restyle.model, dream.model)
        restyle.wire()
        dream.wire()
        tune.wire(refresh)
        page.load(refresh.read, None, list(refresh.outputs))
    return page


def serve(
    data_dir: Path, host: str = "127.0.0.1", port: int = 7860, max_upload_mb: int = 20,
    device: str = "auto", auth: tuple[str, str] | None = None,
) -> None:  # fmt: skip
    """Start the app (blocks until Ctrl-C); a running job keeps its checkpoint on exit.
    ``auth``: the (user, password) Gradio's login asks for (see :mod:`styleforge.app.auth`)."""
    from styleforge.app.auth import LoginGuard

    store = Store(data_dir, max_upload_bytes=max_upload_mb * 2**20)
    worker = Worker(store, device).start()
    login = LoginGuard(*auth) if auth is not None else None
    page = build_ui(App(store, worker))
    try:
        page.queue(default_concurrency_limit=4).launch(
            server_name=host, server_port=port, max_file_size=f"{max_upload_mb}mb",
            show_error=False, allowed_paths=[str(data_dir)], auth=login,
        )  # fmt: skip
    finally:
        worker.close()
