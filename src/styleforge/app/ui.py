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
from typing import TYPE_CHECKING, Any

from styleforge.app.actions import App
from styleforge.app.auth import LOOPBACK
from styleforge.app.store import Store
from styleforge.app.worker import Worker

if TYPE_CHECKING:
    from styleforge.app.auth import LoginGuard

__all__ = ["App", "build_ui", "serve", "server_config", "web_app"]


def build_ui(app: App, logout: bool = False) -> Any:
    """The Gradio Blocks page: tabs My styles, Train, Restyle, Dream, Tune (and a Log out
    button with ``logout``)."""
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
        with gr.Row(equal_height=True):
            gr.Markdown("# styleforge\nLearn a style from pictures you like; restyle photos; "
                        "dream.")  # fmt: skip
            if logout:  # a POST from the page itself: no link elsewhere can log anyone out
                gr.Button("Log out", size="sm", scale=0, min_width=100, elem_id="logout").click(
                    None, js=_LOG_OUT
                )
        styles, train, restyle = StylesTab(app), TrainTab(app), RestyleTab(app)
        dream, tune = DreamTab(app), TuneTab(app)

        def lists(on_load: bool = False) -> tuple[Any, ...]:
            """The lists as they are now; on a page's load also its own picks (the newest
            job and models), never those of the server's start or of another visitor."""

            def picked(choices: list[tuple[str, str]]) -> Any:
                if not on_load:
                    return gr.Dropdown(choices=choices)
                return gr.Dropdown(choices=choices, value=choices[0][1] if choices else None)

            def styles_dd() -> Any:
                return gr.Dropdown(choices=app.style_choices(), value=None)

            return (app.styles_table(), styles_dd(), styles_dd(), picked(app.job_choices()),
                    picked(app.model_choices("stylizer")), picked(app.model_choices("sampler")),
                    picked(app.model_choices("stylizer")))  # fmt: skip

        refresh = Refresh(lists, (styles.table, styles.pick, train.style, train.job,
                                  restyle.model, dream.model, tune.model))  # fmt: skip
        styles.wire(refresh)
        train.wire(restyle.model, dream.model)
        restyle.wire(page)
        dream.wire()
        tune.wire(refresh)
        page.load(lambda: lists(on_load=True), None, list(refresh.outputs))
    return page


#: The Log out button's action, in the browser.
_LOG_OUT = """() => fetch("/logout", {method: "POST", credentials: "same-origin"})
  .finally(() => window.location.assign("/"))"""


def serve(
    data_dir: Path, host: str = "127.0.0.1", port: int = 7860, max_upload_mb: int = 20,
    device: str = "auto", auth: tuple[str, str] | None = None,
    allowed_folders: Sequence[Path] = (), keep_results_mb: int = 500,
    trusted_proxies: Sequence[str] = LOOPBACK,
) -> None:  # fmt: skip
    """Start the app; blocks until Ctrl-C or SIGTERM, then stops gracefully: a running
    training job saves its checkpoint and shows as interrupted, with Resume, after the next
    start. ``auth``: the (user, password) the app's own login page asks for before anything
    of Gradio's is served (:mod:`styleforge.app.gate`); ``allowed_folders``: where the style
    form may read a folder; ``trusted_proxies``: the addresses whose ``X-Forwarded-*``
    headers count. On start, what an earlier stop left behind is swept (:meth:`Store.sweep`)."""
    previous = signal.signal(signal.SIGTERM, _interrupt)  # before anything starts: a stop at
    try:  # any moment ends as Ctrl-C does, through the clean-up below
        store = Store(data_dir, max_upload_bytes=max_upload_mb * 2**20,
                      keep_results_bytes=keep_results_mb * 2**20)  # fmt: skip
        _serve(store, host, port, device, auth, allowed_folders, trusted_proxies)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def _serve(
    store: Store, host: str, port: int, device: str, auth: tuple[str, str] | None,
    allowed_folders: Sequence[Path], trusted_proxies: Sequence[str],
) -> None:  # fmt: skip
    import uvicorn

    from styleforge.app.auth import LoginGuard

    swept = store.sweep().describe()
    if swept:
        print(swept, file=sys.stderr)
    worker = Worker(store, device).start()
    guard = LoginGuard(*auth) if auth is not None else None
    web, page = web_app(App(store, worker, allowed_folders), guard, trusted_proxies)
    print(f"styleforge: serving on http://{host}:{port}/ (Ctrl-C stops)", file=sys.stderr)
    server = uvicorn.Server(server_config(web, host, port))
    try:
        run_server(server)  # SIGTERM and Ctrl-C end it gracefully
    finally:
        worker.close()
        page.close()


def web_app(
    app: App, guard: LoginGuard | None = None, trusted_proxies: Sequence[str] = LOOPBACK
) -> tuple[Any, Any]:
    """The web server's app as ``serve`` runs it: the page behind the front door
    (:func:`~styleforge.app.gate.gated_app`), Gradio's uploads in the store's bounded
    :attr:`~Store.uploads` folder. -> (the ASGI app, the Gradio page to close after)."""
    import os

    from styleforge.app.gate import gated_app

    store = app.store
    os.environ["GRADIO_TEMP_DIR"] = str(store.uploads.resolve())  # read as Gradio builds
    page = build_ui(app, logout=guard is not None).queue(default_concurrency_limit=4)
    mb = max(1, -(-store.max_upload_bytes // 2**20))
    web = gated_app(page, guard, trusted_proxies=trusted_proxies,
                    after_upload=store.prune_uploads, max_file_size=f"{mb}mb",
                    show_error=False, run_history=False,  # no copy of every run in browsers
                    **file_access(store))  # fmt: skip
    return web, page


def server_config(web: Any, host: str, port: int) -> Any:
    """uvicorn's configuration for ``web``: the front door reads the proxies' headers itself
    (only from the trusted ones), so uvicorn's own reading is off."""
    import uvicorn

    return uvicorn.Config(web, host=host, port=port, log_level="warning",
                          timeout_graceful_shutdown=5, proxy_headers=False)  # fmt: skip


def run_server(server: Any) -> None:
    """Serve until SIGTERM or Ctrl-C (uvicorn's own handlers; it raises the signal again
    once it has shut down, which :func:`_interrupt` turns into KeyboardInterrupt)."""
    server.run()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def file_access(store: Store) -> dict[str, Any]:
    """Gradio's file route: only what the page shows (:meth:`Store.shown_folders`); the
    database, the pictures, the models and the run folders are blocked outright."""
    root = store.root
    return {
        "allowed_paths": [str(p) for p in store.shown_folders()],
        "blocked_paths": [str(root / n) for n in ("styleforge.db", "styles", "jobs", "models")],
    }
