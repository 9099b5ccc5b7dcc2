"""The app's front door: a login that answers before Gradio does.

Gradio's own page embeds the app's configuration (its endpoints, the ids and paths in its
lists) even before its login. So with a login, the page is served from a FastAPI app whose
middleware lets through only requests carrying a live session cookie; everything else gets
this module's small login form (``GET``) or 401. Sessions are random tokens kept in memory
that expire after :data:`SESSION_HOURS` (and with the server). Without a login (this machine
only) Gradio is mounted as it is.
"""

from __future__ import annotations

import html
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response  # at module level: FastAPI reads the annotations

from styleforge.app.auth import LoginGuard

__all__ = ["COOKIE", "SESSION_HOURS", "Sessions", "gated_app"]

#: The session cookie's name and lifetime.
COOKIE = "styleforge_session"
SESSION_HOURS = 12.0

_LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>styleforge: log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:22em;margin:6em auto;padding:0 1em}}
input,button{{display:block;width:100%;margin:.4em 0;padding:.5em;font-size:1em}}
.note{{color:#a00}}</style></head>
<body><h1>styleforge</h1><p class="note">{note}</p>
<form method="post" action="/login">
<input name="username" autocomplete="username" placeholder="user" required autofocus>
<input name="password" type="password" autocomplete="current-password" placeholder="password"
 required><button type="submit">Log in</button></form></body></html>
"""


class Sessions:
    """Live session tokens, each valid for ``hours`` after its login."""

    def __init__(self, hours: float = SESSION_HOURS, clock: Callable[[], float] = time.monotonic):
        self.seconds = hours * 3600.0
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def new(self) -> str:
        """A new session's token."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            self._expiry = {t: e for t, e in self._expiry.items() if e > now}  # drop the dead
            self._expiry[token] = now + self.seconds
        return token

    def valid(self, token: str | None) -> bool:
        """Whether ``token`` is a live session."""
        if not token:
            return False
        with self._lock:
            expiry = self._expiry.get(token)
            return expiry is not None and expiry > self._clock()

    def end(self, token: str | None) -> None:
        """Log a session out."""
        with self._lock:
            self._expiry.pop(token or "", None)


def gated_app(
    blocks: Any, guard: LoginGuard | None, *, sessions: Sessions | None = None, **gradio: Any
) -> Any:
    """A FastAPI app serving ``blocks`` at ``/`` (``gradio``: :func:`gradio.mount_gradio_app`'s
    keyword arguments), behind the login page when ``guard`` is given."""
    import gradio as gr
    from fastapi import FastAPI
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

    outer = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    if guard is None:
        return gr.mount_gradio_app(outer, blocks, path="/", **gradio)
    live = sessions or Sessions()

    def page(note: str = "", status: int = 200) -> HTMLResponse:
        return HTMLResponse(_LOGIN_PAGE.format(note=html.escape(note)), status_code=status)

    @outer.middleware("http")
    async def gate(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Any:
        if request.url.path in ("/login", "/logout") or live.valid(request.cookies.get(COOKIE)):
            return await call_next(request)
        if request.method == "GET" and request.url.path == "/":
            return page()
        return JSONResponse({"detail": "log in first"}, status_code=401)

    @outer.post("/login")
    async def login(request: Request) -> Any:
        form = await request.form()
        client = request.client.host if request.client else ""
        user, password = str(form.get("username", "")), str(form.get("password", ""))
        if not await run_in_threadpool(guard, user, password, client):  # waits when wrong
            return page("Wrong user or password.", status=401)
        done = RedirectResponse("/", status_code=303)
        done.set_cookie(COOKIE, live.new(), max_age=int(live.seconds), httponly=True,
                        samesite="strict", path="/")  # fmt: skip
        return done

    @outer.get("/login")
    async def login_page() -> Any:
        return page()

    @outer.get("/logout")
    async def logout(request: Request) -> Any:
        live.end(request.cookies.get(COOKIE))
        gone = RedirectResponse("/", status_code=303)
        gone.delete_cookie(COOKIE, path="/")
        return gone

    def user_of(request: Request) -> str | None:  # Gradio's own check, a second lock
        return "user" if live.valid(request.cookies.get(COOKIE)) else None

    return gr.mount_gradio_app(outer, blocks, path="/", auth_dependency=user_of, **gradio)
