"""A login flood against ``styleforge serve --auth``: does a logged-in user still get answers?

Starts ``styleforge serve`` in its own process on a free local port (loopback only; clients
use other 127.0.0.0/8 source addresses to be other machines), then prints:

1. the page (``/`` and ``/config``) and the right login answered alone (baseline);
2. the same while 120 wrong logins arrive at once from one stranger's address, and while 120
   arrive from 120 addresses (a spray);
3. how many guesses the server actually looked at (answered 401, not 429) in a sustained
   attack from one address and from many, as guesses a minute.

Usage: ``.venv/bin/python bench/serve_load.py [--seconds 60]``
"""

from __future__ import annotations

import argparse
import http.client
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

USER, PASSWORD = "ann", "correct-horse"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None,
            source: str = "127.0.0.1") -> tuple[int, dict[str, str], float]:  # fmt: skip
    """(status, headers, seconds) of one request from local address ``source``."""
    start = time.perf_counter()
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=300, source_address=(source, 0))
    try:
        con.request(method, path, body=body, headers=headers or {})
        got = con.getresponse()
        got.read()
        return got.status, dict(got.headers.items()), time.perf_counter() - start
    finally:
        con.close()


def login(port: int, password: str, source: str = "127.0.0.1") -> tuple[int, dict[str, str], float]:
    body = urllib.parse.urlencode({"username": USER, "password": password}).encode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    return request(port, "POST", "/login", body, form, source)


def user_requests(port: int, cookie: dict[str, str]) -> dict[str, float]:
    """Seconds for the page, its configuration and the right login (from 127.0.0.1)."""
    page = request(port, "GET", "/", headers=cookie)
    config = request(port, "GET", "/config", headers=cookie)
    right = login(port, PASSWORD)
    assert page[0] == 200 and config[0] == 200, (page[0], config[0])
    return {"page": page[2], "config": config[2], "right login": right[2],
            "right login status": right[0]}  # fmt: skip


def flood(port: int, cookie: dict[str, str], sources: list[str]) -> dict[str, float]:
    """Wrong logins from ``sources`` all at once; the user's requests while they arrive."""
    with ThreadPoolExecutor(max_workers=len(sources)) as pool:
        start = time.perf_counter()
        wrong = [pool.submit(login, port, f"guess{i}", s) for i, s in enumerate(sources)]
        time.sleep(0.05)  # the flood is on its way
        seen = user_requests(port, cookie)
        answers = [w.result() for w in wrong]
        seen["all wrong answered"] = time.perf_counter() - start
    seen["looked at"] = sum(a[0] == 401 for a in answers)
    seen["refused unchecked"] = sum(a[0] == 429 for a in answers)
    return seen


def siege(port: int, sources: list[str], seconds: float) -> float:
    """A sustained attack: each source guesses again as soon as it is answered; -> guesses
    looked at (401) a minute."""
    looked = [0]
    end = time.monotonic() + seconds
    lock = threading.Lock()

    def attacker(source: str) -> None:
        i = 0
        while time.monotonic() < end:
            status = login(port, f"g{source}-{i}", source)[0]
            i += 1
            if status == 401:
                with lock:
                    looked[0] += 1
            elif status == 429:
                time.sleep(0.05)  # a hurried attacker retries at once (almost)

    threads = [threading.Thread(target=attacker, args=(s,)) for s in sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return looked[0] * 60.0 / seconds


def show(title: str, seen: dict[str, float]) -> None:
    parts = []
    for key, value in seen.items():
        if key in ("looked at", "refused unchecked", "right login status"):
            parts.append(f"{key} {int(value)}")
        else:
            parts.append(f"{key} {value * 1000:.0f} ms")
    print(f"{title:<34}" + ", ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="each siege (default 60)")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "styleforge", "serve", "--data-dir", str(Path(tmp) / "d"),
               "--port", str(port), "--device", "cpu", "--auth", f"{USER}:{PASSWORD}"]  # fmt: skip
        server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(600):
                try:
                    request(port, "GET", "/login")
                    break
                except OSError:
                    time.sleep(0.2)
            status, headers, _ = login(port, PASSWORD)
            assert status == 303, status
            cookie = {"Cookie": headers["set-cookie"].split(";", 1)[0]}
            user_requests(port, cookie)  # warm up
            print(f"styleforge serve --auth, port {port}; the user at 127.0.0.1")
            show("alone", user_requests(port, cookie))
            show("120 wrong from 127.0.0.2", flood(port, cookie, ["127.0.0.2"] * 120))
            spray = [f"127.0.{1 + i // 200}.{1 + i % 200}" for i in range(120)]
            show("120 wrong from 120 addresses", flood(port, cookie, spray))
            time.sleep(0.1)
            one = siege(port, ["127.0.9.1"] * 8, args.seconds)
            print(f"siege, 1 address (8 connections), {args.seconds:.0f} s: "
                  f"{one:.1f} guesses looked at a minute")  # fmt: skip
            many = siege(port, [f"127.0.10.{i}" for i in range(1, 101)], args.seconds)
            print(f"siege, 100 addresses, {args.seconds:.0f} s: "
                  f"{many:.1f} guesses looked at a minute")  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=60)


if __name__ == "__main__":
    main()
