"""The app's front door: where a request comes from, and a login that answers before Gradio.

Gradio's own page embeds the app's configuration (its endpoints, the ids and paths in its
lists) even before its login. So Gradio is mounted in a FastAPI app whose middleware:

- refuses (403) every state-changing request (anything but GET, HEAD, OPTIONS: Gradio's API,
  queue and upload routes, the login, the log-out) whose ``Origin`` (or, without one, its
  ``Referer``) is another site; requests with neither (command-line clients) go through;
- with a login, lets through only requests carrying a live session cookie; everything else
  gets this module's small login form (``GET /``) or 401.

Sessions are random tokens kept in memory that expire after :data:`SESSION_HOURS` (and with
the server). The cookie is ``Secure`` when the page is served over HTTPS, directly or behind a
trusted proxy (``X-Forwarded-Proto``; the proxies' addresses also say who the client is).
No cross-origin answer is ever allowed (no ``Access-Control-Allow-Origin``). The page polls
``/alive``: when the server restarted or the login ended it asks to reload and log in.
"""

from __future__ import annotations

import html
import ipaddress
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request, Response  # at module level: FastAPI reads the annotations

from styleforge.app.auth import LOOPBACK, LoginGuard

__all__ = [
    "COOKIE",
    "LOOPBACK",
    "PAGE_HEAD",
    "SESSION_HOURS",
    "Origin",
    "Sessions",
    "gated_app",
    "origin_of",
    "trusted_networks",
]

#: The session cookie's name and lifetime.
COOKIE = "styleforge_session"
SESSION_HOURS = 12.0
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

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

#: The page's watch on its server: every 5 s it asks ``/alive`` which server instance
#: answers; once none does (stopped, restarted, the login ended) it shows a banner asking to
#: reload the page (and log in again) instead of leaving stale "running" lines up.
PAGE_HEAD = """<script>
(() => {
  let first = null, warned = false;
  const warn = () => {
    if (warned) return;
    warned = true;
    const box = document.createElement("div");
    box.id = "server-lost";
    box.setAttribute("role", "alert");
    box.style.cssText = "position:fixed;top:0;left:0;right:0;z-index:10000;padding:.8em;" +
      "background:#fde68a;color:#000;text-align:center;font:1.05em system-ui,sans-serif";
    box.innerHTML = "The server restarted or your login ended: nothing here is up to date. " +
      "<a href='/'>Reload the page</a> (and log in again).";
    document.body.prepend(box);
  };
  const look = async () => {
    let id = null;
    try {
      const got = await fetch("/alive", {cache: "no-store", credentials: "same-origin"});
      if (got.ok) id = (await got.json()).server;
    } catch (e) { id = null; }
    if (first === null && id !== null) first = id;
    if (id === null || id !== first) warn();
  };
  look();
  setInterval(look, 5000);
})();
</script>"""


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


@dataclass(frozen=True)
class Origin:
    """Where a request comes from, as the app sees it (through a trusted proxy's headers).

    Args:
        client: the client's address.
        scheme: ``http`` or ``https`` as the browser sees the page.
        own: the page's own origin (``scheme://host[:port]``, lower case, default port left
            out).
        sender: the origin the browser says the request comes from (``Origin``, else
            ``Referer``'s), ``None`` when it says none (a command-line client).
    """

    client: str
    scheme: str
    own: str
    sender: str | None

    @property
    def foreign(self) -> bool:
        """The request comes from another site (or an opaque ``null`` origin)."""
        return self.sender is not None and self.sender != self.own


Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def trusted_networks(proxies: Sequence[str]) -> Networks:
    """The networks of the trusted proxies' addresses (``10.0.0.5``, ``10.0.0.0/8``, ``::1``);
    a malformed one is a ValueError."""
    return tuple(ipaddress.ip_network(p.strip().strip("[]"), strict=False) for p in proxies)


def _trusted(address: str, networks: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    return any(ip in net for net in networks if net.version == ip.version)


def _normal(scheme: str, netloc: str) -> str:
    """``scheme://netloc`` in lower case, without the scheme's default port."""
    scheme, netloc = scheme.lower(), netloc.lower()
    default = {"http": ":80", "https": ":443"}.get(scheme)
    if default and netloc.endswith(default):
        netloc = netloc[: -len(default)]
    return f"{scheme}://{netloc}"


def origin_of(headers: Any, peer: str, scheme: str, networks: Networks = ()) -> Origin:
    """Where a request with ``headers`` from address ``peer`` over ``scheme`` comes from.
    ``X-Forwarded-For``, ``-Proto`` and ``-Host`` count only from a trusted proxy (one in
    ``networks``); the client is then the last address the proxies did not add."""
    client, host = peer, headers.get("host", "")
    if _trusted(peer, networks):
        chain = [a.strip() for a in headers.get("x-forwarded-for", "").split(",") if a.strip()]
        while chain and _trusted(chain[-1], networks):
            client = chain.pop()
        client = chain[-1] if chain else client
        proto = headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        scheme = proto if proto in ("http", "https") else scheme
        host = headers.get("x-forwarded-host", "").split(",")[0].strip() or host
    sender = headers.get("origin")
    if sender is None and headers.get("referer"):
        parts = urlsplit(headers["referer"])
        sender = _normal(parts.scheme, parts.netloc) if parts.scheme else "null"
    elif sender is not None and sender != "null":
        parts = urlsplit(sender)
        sender = _normal(parts.scheme, parts.netloc)
    return Origin(client, scheme, _normal(scheme, host), sender)


def gated_app(
    blocks: Any, guard: LoginGuard | None, *, sessions: Sessions | None = None,
    trusted_proxies: Sequence[str] = LOOPBACK,
    after_upload: Callable[[], object] | None = None, **gradio: Any,
) -> Any:  # fmt: skip
    """A FastAPI app serving ``blocks`` at ``/`` (``gradio``: :func:`gradio.mount_gradio_app`'s
    keyword arguments), refusing requests from other sites, behind the login page when
    ``guard`` is given. ``after_upload`` runs (in a worker thread) after each upload."""
    import gradio as gr
    from fastapi import FastAPI
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
    from starlette.middleware.cors import CORSMiddleware

    outer = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    # Gradio adds no CORS answers of its own when the parent app has this middleware; with no
    # origin allowed, no other site may read an answer or send credentials.
    outer.add_middleware(CORSMiddleware, allow_origins=[])
    live = sessions or Sessions()
    networks = trusted_networks(trusted_proxies)
    server = secrets.token_hex(8)  # this server instance, for /alive

    def page(note: str = "", status: int = 200, wait: float = 0.0) -> HTMLResponse:
        headers = {"Retry-After": str(max(1, round(wait + 0.499)))} if wait > 0 else None
        return HTMLResponse(_LOGIN_PAGE.format(note=html.escape(note)), status_code=status,
                            headers=headers)  # fmt: skip

    @outer.middleware("http")
    async def gate(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Any:
        peer = request.client.host if request.client else ""
        where = origin_of(request.headers, peer, request.url.scheme, networks)
        request.state.origin = where
        if request.method not in _SAFE_METHODS and where.foreign:
            return JSONResponse({"detail": "refused: a request from another site"}, 403)
        path = request.url.path
        if guard is not None and not (
            path == "/login"
            or (path == "/logout" and request.method == "POST")
            or live.valid(request.cookies.get(COOKIE))
        ):
            if request.method == "GET" and path == "/":
                return page()
            return JSONResponse({"detail": "log in first"}, status_code=401)
        answer = await call_next(request)
        if after_upload is not None and request.method == "POST" and path.endswith("/upload"):
            await run_in_threadpool(after_upload)
        return answer

    @outer.get("/alive")
    async def alive() -> Any:
        return JSONResponse({"server": server}, headers={"Cache-Control": "no-store"})

    if guard is None:
        return gr.mount_gradio_app(outer, blocks, path="/", head=PAGE_HEAD, **gradio)

    @outer.post("/login")
    async def login(request: Request) -> Any:
        form = await request.form()
        where: Origin = request.state.origin
        user, password = str(form.get("username", "")), str(form.get("password", ""))
        verdict = guard.attempt(user, password, where.client)  # never waits
        if not verdict.checked:
            return page(f"Too many wrong logins: try again in {verdict.retry_after:.0f} s.",
                        status=429, wait=verdict.retry_after)  # fmt: skip
        if not verdict.ok:
            return page(f"Wrong user or password. The next try is looked at after "
                        f"{verdict.retry_after:.0f} s.", status=401,
                        wait=verdict.retry_after)  # fmt: skip
        done = RedirectResponse("/", status_code=303)
        done.set_cookie(COOKIE, live.new(), max_age=int(live.seconds), httponly=True,
                        samesite="strict", path="/",
                        secure=where.scheme == "https")  # fmt: skip
        return done

    @outer.get("/login")
    async def login_page() -> Any:
        return page()

    @outer.post("/logout")  # only from the app's page (a POST, its own origin)
    async def logout(request: Request) -> Any:
        live.end(request.cookies.get(COOKIE))
        gone = RedirectResponse("/", status_code=303)
        gone.delete_cookie(COOKIE, path="/")
        return gone

    def user_of(request: Request) -> str | None:  # Gradio's own check, a second lock
        return "user" if live.valid(request.cookies.get(COOKIE)) else None

    return gr.mount_gradio_app(outer, blocks, path="/", auth_dependency=user_of, head=PAGE_HEAD,
                               **gradio)  # fmt: skip
