"""``styleforge serve``: the local web app."""

from __future__ import annotations

import argparse
import ipaddress
from pathlib import Path

from styleforge.cli.common import Subparsers, add_device, positive_int
from styleforge.errors import UserError


def add_parser(sub: Subparsers) -> None:
    """The ``serve`` sub-command and its flags."""
    sv = sub.add_parser(
        "serve",
        help="a local web app: create styles from uploads, train, restyle photos, dream",
        description="Start the styleforge web app (Gradio) on this machine.",
    )
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default: localhost)")
    sv.add_argument("--port", type=positive_int, default=7860, help="default 7860")
    sv.add_argument(
        "--data-dir", type=Path, default=Path("styleforge-data"),
        help="where styles, models and jobs are kept (default ./styleforge-data)",
    )  # fmt: skip
    sv.add_argument(
        "--max-upload-mb", type=positive_int, default=20, help="largest upload (default 20 MB)"
    )
    sv.add_argument(
        "--allow-folder", type=Path, action="append", default=[], metavar="DIR",
        help="let the style form read folders under DIR on this machine (repeatable; none by "
        "default: styles come from uploads)",
    )  # fmt: skip
    sv.add_argument(
        "--keep-results", type=positive_int, default=500, metavar="MB",
        help="results and tune renders kept on disk; the oldest go first (default 500 MB)",
    )  # fmt: skip
    add_device(sv)
    sv.add_argument(
        "--auth", metavar="USER:PASSWORD",
        help="require this login (or @FILE holding it; default: $STYLEFORGE_AUTH); needed for "
        "a --host other than this machine's own",
    )  # fmt: skip
    sv.add_argument(
        "--no-auth", action="store_true",
        help="serve a non-local --host without a login, on purpose",
    )  # fmt: skip
    sv.add_argument(
        "--trusted-proxy", action="append", metavar="ADDR",
        help="a reverse proxy (address or network) whose X-Forwarded-For/-Proto/-Host headers "
        "count: who the client is, and HTTPS for the Secure cookie (repeatable; default: this "
        "machine, 127.0.0.1 and ::1)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """``styleforge serve``: serves until interrupted."""
    from styleforge.app.auth import LOOPBACK, resolve_auth

    login = resolve_auth(args.host, args.auth, args.no_auth)  # before Gradio loads
    proxies = LOOPBACK if args.trusted_proxy is None else tuple(args.trusted_proxy)
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy.strip().strip("[]"), strict=False)
        except ValueError:
            raise UserError(f"--trusted-proxy {proxy}: not an address or network") from None
    from styleforge.app.ui import serve

    for folder in args.allow_folder:
        if not folder.is_dir():
            raise UserError(f"--allow-folder {folder}: no such folder")
    serve(args.data_dir, args.host, args.port, args.max_upload_mb, args.device, login,
          args.allow_folder, args.keep_results, proxies)  # fmt: skip
    return 0
