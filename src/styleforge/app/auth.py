"""Who may use the web app: a login for any address other than this machine's own.

Credentials are ``USER:PASSWORD``, given as ``--auth USER:PASSWORD``, ``--auth @FILE`` (the first
line of FILE) or in the ``STYLEFORGE_AUTH`` environment variable, so they need not be typed
into the shell's history. Gradio's own login checks them.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from styleforge.errors import UserError

__all__ = ["AUTH_ENV", "is_loopback", "resolve_auth"]

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
