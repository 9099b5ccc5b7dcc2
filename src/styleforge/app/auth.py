"""Who may use the web app: a login for any address other than this machine's own.

Credentials are ``USER:PASSWORD``, given as ``--auth USER:PASSWORD``, ``--auth @FILE`` (the first
line of FILE) or in the ``STYLEFORGE_AUTH`` environment variable, so they need not be typed
into the shell's history. The app's own login page (:mod:`styleforge.app.gate`, in front of
Gradio) asks for them and :class:`LoginGuard` checks them: in constant time, and each wrong
guess in a row from a client makes its next one wait longer before it is looked at (and all
clients together have a small budget), so a password cannot be guessed at full speed. Nothing
ever sleeps: a try that must wait is refused at once with the seconds left.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from styleforge.errors import UserError

__all__ = [
    "AUTH_ENV",
    "LOOPBACK",
    "LoginGuard",
    "Verdict",
    "client_key",
    "is_loopback",
    "resolve_auth",
]

#: Environment variable holding ``USER:PASSWORD``.
AUTH_ENV = "STYLEFORGE_AUTH"

#: The proxies trusted by default (``serve --trusted-proxy``): this machine's own addresses.
LOOPBACK = ("127.0.0.1", "::1")
#: The wrong logins of all clients together: this many at once, then this many a minute.
OVERALL_BURST = 10
OVERALL_PER_MINUTE = 6.0
#: Clients whose wrong logins are counted at once (beyond: those free to try are forgotten).
_MAX_CLIENTS = 10_000


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


@dataclass(frozen=True)
class Verdict:
    """What :meth:`LoginGuard.attempt` decided.

    Args:
        ok: the login was right.
        checked: the password was looked at (``False``: refused unchecked, too many tries).
        retry_after: seconds before this client's next try is looked at (0: at once).
    """

    ok: bool
    checked: bool
    retry_after: float = 0.0


class LoginGuard:
    """The login check, which never waits: (user, password, client) -> a :class:`Verdict`.

    Both are compared in constant time. Each wrong attempt in a row from one client (an IPv6
    client by its /64) makes that client wait ``first_delay`` doubling up to ``max_delay``
    seconds (1, 2, 4 ... 30 by default) before its next try is even looked at; tries before
    then are refused unchecked, and so are all tries once the wrong ones of every client
    together have spent the overall budget (``burst`` at once, then ``per_minute``). A right
    login resets its client's count. No request is ever held: the caller answers at once
    (401 or 429 with ``retry_after``), so a flood of guesses holds no server thread.
    """

    def __init__(
        self, user: str, password: str, *, first_delay: float = 1.0, max_delay: float = 30.0,
        burst: int = OVERALL_BURST, per_minute: float = OVERALL_PER_MINUTE,
        clock: Callable[[], float] = time.monotonic,
        log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    ) -> None:  # fmt: skip
        self._user = user.encode()
        self._password = password.encode()
        self.first_delay, self.max_delay = first_delay, max_delay
        self.burst, self.per_second = float(burst), per_minute / 60.0
        self._clock = clock
        self._log = log
        self._tokens = float(burst)
        self._filled = clock()
        self._clients: dict[str, tuple[int, float]] = {}  # client -> (failures, not before)
        self._lock = threading.Lock()

    def __call__(self, user: str, password: str, client: str = "") -> bool:
        return self.attempt(user, password, client).ok

    def attempt(self, user: str, password: str, client: str = "") -> Verdict:
        """Look at one login try from ``client`` (its address), unless it must wait."""
        key = client_key(client)
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._filled) * self.per_second)
            self._filled = now
            failures, not_before = self._clients.get(key, (0, now))
            if now < not_before:
                return Verdict(False, False, not_before - now)
            if self._tokens < 1.0:
                return Verdict(False, False, (1.0 - self._tokens) / self.per_second)
            ok = hmac.compare_digest(str(user).encode(), self._user)
            ok &= hmac.compare_digest(str(password).encode(), self._password)
            if ok:
                self._clients.pop(key, None)
                return Verdict(True, True)
            self._tokens -= 1.0
            if len(self._clients) >= _MAX_CLIENTS and key not in self._clients:
                self._forget(now)
            failures += 1
            delay = min(self.max_delay, self.first_delay * 2 ** min(failures - 1, 30))
            self._clients[key] = (failures, now + delay)
        self._log(f"styleforge: wrong login from {client or 'a client'} ({failures} in a row)")
        return Verdict(False, True, delay)

    def _forget(self, now: float) -> None:
        """Bounded memory under a spray of addresses: drop the clients free to try again
        (all of them when none is; the overall budget still bounds the guesses)."""
        self._clients = {k: v for k, v in self._clients.items() if v[1] > now}
        if len(self._clients) >= _MAX_CLIENTS:
            self._clients.clear()


def client_key(address: str) -> str:
    """The key a client's wrong logins are counted under: its address, an IPv6 one by its
    /64 (one machine usually holds a whole /64)."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
