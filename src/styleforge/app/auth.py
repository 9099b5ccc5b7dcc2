"""Who may use the web app: a login for any address other than this machine's own.

Credentials are ``USER:PASSWORD``, given as ``--auth USER:PASSWORD``, ``--auth @FILE`` (the first
line of FILE) or in the ``STYLEFORGE_AUTH`` environment variable, so they need not be typed
into the shell's history. The app's own login page (:mod:`styleforge.app.gate`, in front of
Gradio) asks for them and :class:`LoginGuard` checks them: in constant time, and each wrong
guess in a row from a client waits longer before it is answered, so a password cannot be
guessed at full speed.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from styleforge.errors import UserError

__all__ = ["AUTH_ENV", "LoginGuard", "is_loopback", "resolve_auth"]

#: Environment variable holding ``USER:PASSWORD``.
AUTH_ENV = "STYLEFORGE_AUTH"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def resolve_auth(host: str, auth: str | None, no_auth: bool) -> tuple[str, str] | None:
    """The (user, password) to require, or ``None`` for no login.

    A non-loopback ``host`` without credentials is refused unless ``no_auth`` says so on
    purpose. Raises UserError for malformed or unreadable credentials.
    """
    if auth is not None and no_auth:
        raise UserError("--auth and --no-auth contradict each other; give one")
    source = "--auth"
    if auth is None and not no_auth and os.environ.get(AUTH_ENV):
        auth, source = os.environ[AUTH_ENV], AUTH_ENV
    if auth is not None and auth.startswith("@"):
        path = Path(auth[1:])
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise UserError(f"{path}: cannot read the login file ({exc.strerror or exc})") from exc
        auth, source = (lines[0].strip() if lines else ""), str(path)
    if auth is not None:
        user, sep, password = auth.partition(":")
        if not sep or not user or not password:
            raise UserError(f"{source}: give the login as USER:PASSWORD (both non-empty)")
        return user, password
    if not no_auth and not is_loopback(host):
        raise UserError(
            f"--host {host} lets other machines reach the app: give a login with --auth "
            f"USER:PASSWORD (or --auth @FILE, or {AUTH_ENV}=USER:PASSWORD), or pass --no-auth "
            "to serve without one on purpose"
        )
    return None


class LoginGuard:
    """The login check: (user, password[, client]) -> whether to let in.

    Both are compared in constant time. Each wrong attempt in a row from one client is answered
    only after a delay that doubles from ``first_delay`` up to ``max_delay`` seconds (1, 2, 4
    ... 30 by default) and logged with the client's address; a right one is answered at once
    and resets that client's count. Thirty guesses then take about ten minutes instead of a
    twentieth of a second; nobody is locked out.
    """

    def __init__(
        self, user: str, password: str, *, first_delay: float = 1.0, max_delay: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    ) -> None:  # fmt: skip
        self._user = user.encode()
        self._password = password.encode()
        self.first_delay, self.max_delay = first_delay, max_delay
        self._sleep = sleep
        self._log = log
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, user: str, password: str, client: str = "") -> bool:
        ok = hmac.compare_digest(str(user).encode(), self._user)
        ok &= hmac.compare_digest(str(password).encode(), self._password)
        with self._lock:
            if ok:
                self._failures.pop(client, None)
                return True
            if len(self._failures) > _MAX_CLIENTS and client not in self._failures:
                self._failures.clear()  # bounded memory under a spray of addresses
            failures = self._failures[client] = self._failures.get(client, 0) + 1
            delay = min(self.max_delay, self.first_delay * 2 ** min(failures - 1, 30))
        self._log(f"styleforge: wrong login from {client or 'a client'} ({failures} in a row)")
        self._sleep(delay)
        return False


#: Clients whose wrong logins are counted at once (beyond: the counts start again).
_MAX_CLIENTS = 10_000
