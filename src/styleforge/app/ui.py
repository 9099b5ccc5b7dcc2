"""The web page: ``build_ui`` lays the tabs out on an :class:`~styleforge.app.actions.App`;
``serve`` runs it.

The tabs (:mod:`styleforge.app.tabs`) are My styles, Train, Restyle, Dream and Tune, one module
each. Gradio is imported only here, when the page is built, so the app's actions and their
tests never load it.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
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
    allowed_folders: Sequence[Path] = (), keep_results_mb: int = 500,
) -> None:  # fmt: skip
    """Start the app; blocks until Ctrl-C or SIGTERM, then stops gracefully: a running
    training job saves its checkpoint and shows as interrupted, with Resume, after the next
    start. ``auth``: the (user, password) the app's own login page asks for before anything
    of Gradio's is served (:mod:`styleforge.app.gate`); ``allowed_folders``: where the style
    form may read a folder. On start, what an earlier stop left behind is swept
    (:meth:`Store.sweep`)."""
    previous = signal.signal(signal.SIGTERM, _interrupt)  # before anything starts: a stop at
    try:  # any moment ends as Ctrl-C does, through the clean-up below
        _serve(data_dir, host, port, max_upload_mb, device, auth, allowed_folders, keep_results_mb)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def _serve(
    data_dir: Path, host: str, port: int, max_upload_mb: int, device: str,
    auth: tuple[str, str] | None, allowed_folders: Sequence[Path], keep_results_mb: int,
) -> None:  # fmt: skip
    import uvicorn

    from styleforge.app.auth import LoginGuard
    from styleforge.app.gate import gated_app

    store = Store(data_dir, max_upload_bytes=max_upload_mb * 2**20,
                  keep_results_bytes=keep_results_mb * 2**20)  # fmt: skip
    swept = store.sweep()
    if swept:
        print(f"styleforge: removed {len(swept)} leftover(s) of an earlier stop", file=sys.stderr)
    worker = Worker(store, device).start()
    page = build_ui(App(store, worker, allowed_folders)).queue(default_concurrency_limit=4)
    guard = LoginGuard(*auth) if auth is not None else None
    access = file_access(store)
    web = gated_app(page, guard, max_file_size=f"{max_upload_mb}mb", show_error=False,
                    allowed_paths=access["allowed_paths"],
                    blocked_paths=access["blocked_paths"])  # fmt: skip
    print(f"styleforge: serving on http://{host}:{port}/ (Ctrl-C stops)", file=sys.stderr)
    server = uvicorn.Server(uvicorn.Config(web, host=host, port=port, log_level="warning",
                                           timeout_graceful_shutdown=5))  # fmt: skip
    try:
        run_server(server)  # SIGTERM and Ctrl-C end it gracefully
    finally:
        worker.close()
        page.close()


def run_server(server: Any) -> None:
    """Serve until SIGTERM or Ctrl-C (uvicorn's own handlers; it raises the signal again
    once it has shut down, which :func:`_interrupt` turns into KeyboardInterrupt)."""
    server.run()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def file_access(store: Store) -> dict[str, list[str]]:
    """Gradio's file route: only what the page shows (:meth:`Store.shown_folders`); the
    database, the pictures, the models and the run folders are blocked outright."""
    root = store.root
    return {
        "allowed_paths": [str(p) for p in store.shown_folders()],
        "blocked_paths": [str(root / n) for n in ("styleforge.db", "styles", "jobs", "models")],
    }
