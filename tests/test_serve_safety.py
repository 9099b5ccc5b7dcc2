"""The web app, safe to share: folders only under the roots the operator allowed, user-given
names shown as plain text and bounded, no server paths in messages, nothing stranded by a stop
(atomic writes, a sweep on start, bounded results), and SIGTERM stopping a training job with a
checkpoint to resume from."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import torch

from styleforge.app import actions
from styleforge.app.actions import App, plain
from styleforge.app.store import MAX_NAME, Store
from styleforge.app.worker import Worker
from styleforge.errors import UserError
from tests.conftest import app_model, write_image, write_tiny_stylizer


def _app(root: Path, allowed: list[Path] | None = None) -> App:
    store = Store(root / "data")
    return App(store, Worker(store, "cpu"), allowed or [])


def _pictures(folder: Path, n: int = 3) -> list[Path]:
    return [write_image(folder / f"pic_{i}.png", (72, 64), seed=i) for i in range(n)]


def test_the_folder_field_reads_only_under_the_allowed_roots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    _pictures(allowed / "prints")
    (allowed / "prints" / "secret_notes.txt").write_text("not a picture")
    _pictures(outside)
    (allowed / "prints" / "link_out").symlink_to(outside)  # a link that leads out is skipped

    with pytest.raises(UserError, match="reads no folders of its own"):
        _app(tmp_path).create_style("s", None, str(allowed / "prints"))
    app = _app(tmp_path, [allowed])
    message = app.create_style("prints", None, str(allowed / "prints"))
    assert app.store.styles()[0].images == 3  # not the 3 behind the link
    assert "secret_notes" not in message and "pic_" not in message  # counts and reasons only
    assert "1 file(s): " in message
    for escape in (str(outside), str(allowed / "prints" / ".." / ".." / "outside"), "/etc"):
        with pytest.raises(UserError, match="outside the folders this server may read"):
            app.create_style("s", None, escape)
    with pytest.raises(UserError, match="no such folder among"):
        app.create_style("s", None, str(allowed / "missing"))
    monkeypatch.setattr(actions, "MAX_FOLDER_FILES", 2)
    with pytest.raises(UserError, match="more than 2 files"):
        app.create_style("s", None, str(allowed / "prints"))
    assert len(app.store.styles()) == 1


def test_names_are_plain_text_and_bounded(tmp_path: Path) -> None:
    app = _app(tmp_path)
    pics = _pictures(tmp_path / "up")
    evil = "<img src=x onerror=alert(1)> [link](http://x) ![i](http://y/i.png)"
    message = app.create_style(evil, pics)
    heading, audit = message.split("```", 1)  # the audit is a code block: shown as text
    assert "<img" not in heading and "](http" not in heading and "\\[link\\]" in heading
    assert audit.count("```") == 1  # a name cannot close the block
    assert app.create_style("a```<b>x", pics).count("```") == 2
    [style_id] = [s.id for s in app.store.styles() if s.name == evil]  # stored as typed
    with pytest.raises(UserError, match=f"at most {MAX_NAME} characters; this one 10000"):
        app.rename_style(style_id, "x" * 10_000)
    with pytest.raises(UserError, match=f"at most {MAX_NAME}"):
        app.create_style("y" * (MAX_NAME + 1), pics)
    assert "\\*\\*b\\*\\*" in app.rename_style(style_id, "**b**")
    assert plain("a_b") == "a\\_b"


def test_a_refused_restyle_names_the_file_once_and_leaves_nothing(tmp_path: Path) -> None:
    app = _app(tmp_path)
    model = app_model(app.store, write_tiny_stylizer(tmp_path / "m.safetensors"))
    upload = tmp_path / "gradio-tmp" / "notes.png"
    upload.parent.mkdir()
    upload.write_text("not an image")
    good = write_image(tmp_path / "gradio-tmp" / "good.png", (40, 32), seed=9)
    with pytest.raises(UserError) as err:
        app.restyle([good, upload], str(model))
    text = str(err.value)
    assert text.count("notes.png") == 1 and str(tmp_path) not in text, text
    assert not (app.store.root / "results").exists() or not any(
        (app.store.root / "results").iterdir()
    )
    with pytest.raises(UserError, match="not one of this app's"):
        app.restyle([good], str(tmp_path / "elsewhere.safetensors"))
    [(_, after)] = app.restyle([good], str(model))
    assert Path(after).stat().st_size > 0


def test_start_sweeps_what_a_stop_left_and_results_stay_bounded(tmp_path: Path) -> None:
    app = _app(tmp_path)
    app.create_style("kept", _pictures(tmp_path / "up"))
    store = app.store
    style = store.styles()[0]
    leftovers = [
        store.root / "styles" / ".0123abcd.partial",  # a style being filled when it stopped
        store.root / "styles" / "deadbeef0000",  # pictures with no row
        store.root / "jobs" / "feedface0000",
        style.folder / ".img_0002.k3j4.png",  # an atomic write's temporary file
    ]
    for path in leftovers[:3]:
        path.mkdir(parents=True)
        (path / "img_0001.png").write_bytes(b"x")
    leftovers[3].write_bytes(b"half")
    orphan_model = store.root / "models" / "cafe00000000.safetensors"
    orphan_model.write_bytes(b"x")
    upload = store.uploads / "3f2a9c" / "photo.png"  # Gradio's, of the last run
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"x")
    store.keep_results_bytes = 10
    old = store.results_dir()
    (old / "r.png").write_bytes(b"x" * 100)
    swept = store.sweep()
    assert set(swept.leftovers) == set(leftovers) | {orphan_model}
    assert swept.uploads == [upload.parent] and swept.pruned == [old]
    assert swept.describe() == (
        "styleforge: removed 5 leftover(s) of an earlier stop, 1 upload folder(s) of the last "
        "run, 1 result folder(s) over --keep-results"
    )  # the pruned results are not called leftovers
    assert all(not p.exists() for p in leftovers) and style.folder.is_dir()
    assert not upload.exists() and store.uploads.is_dir()
    assert store.styles()[0].images == 3
    assert store.sweep().describe() is None

    store.keep_results_bytes = 2500
    made = []
    for i in range(4):
        folder = store.results_dir()
        (folder / "r.png").write_bytes(b"x" * 1000)
        os.utime(folder, (time.time() - 100 + i, time.time() - 100 + i))
        made.append(folder)
    store.results_dir()
    assert [f.exists() for f in made] == [False, False, True, True]  # the oldest went first


def _served_result(tmp_path: Path) -> tuple[App, Any, str]:
    """An app with one finished tiny stylizer job and one restyle result: (app, job, result)."""
    app = _app(tmp_path)
    model = Path(app_model(app.store, write_tiny_stylizer(tmp_path / "m.safetensors")))
    [job] = [j for j in app.store.jobs() if j.model == str(model)]
    [(_, result)] = app.restyle([write_image(tmp_path / "photo.png", (48, 40), seed=3)], str(model))
    return app, job, result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_until(store: Store, ready: Any, limit: float = 300) -> None:
    """Run ``styleforge serve`` on ``store`` in a fresh process until ``ready()``, then stop it
    with SIGTERM; it must exit cleanly."""
    cmd = [sys.executable, "-m", "styleforge", "serve", "--data-dir", str(store.root),
           "--port", str(_free_port()), "--device", "cpu"]  # fmt: skip
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + limit
        while not ready():
            assert server.poll() is None, server.stderr.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the server never got there"
            time.sleep(0.5)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=90) == 0
    finally:
        if server.poll() is None:
            server.kill()


@pytest.mark.slow
def test_sigterm_stops_the_server_and_the_job_resumes_to_the_same_weights(
    tmp_path: Path,
) -> None:
    """kill -TERM during a training job, restart, Resume: the weights of the same job run
    without a stop. Each run is in a fresh server process, as a user's would be."""
    from safetensors.torch import load_file

    store = Store(tmp_path / "data")
    app = App(store, Worker(store, "cpu"))
    app.create_style("s", _pictures(tmp_path / "up", 4))
    steps = 8
    job = store.create_job(store.styles()[0].id, "stylizer", "quick", steps)
    log = job.run_dir / "log.csv"
    _serve_until(store, lambda: log.is_file() and len(log.read_text().splitlines()) > 2)
    stopped = store.job(job.id)
    assert stopped.status == "interrupted" and "resumable" in stopped.message, stopped
    assert stopped.resumable  # the checkpoint is there: Resume goes on from it
    app.worker.resume(job.id)  # Resume, after the restart
    _serve_until(store, lambda: store.job(job.id).status == "done")
    whole = store.create_job(job.style_id, "stylizer", "quick", steps)
    _serve_until(store, lambda: store.job(whole.id).status == "done")
    resumed, uninterrupted = store.job(job.id), store.job(whole.id)
    a, b = load_file(str(resumed.model)), load_file(str(uninterrupted.model))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_the_file_route_serves_what_the_page_shows_and_nothing_else(tmp_path: Path) -> None:
    import urllib.error
    import urllib.request

    from styleforge.app.ui import build_ui, file_access

    app, job, result = _served_result(tmp_path)
    store, model = app.store, Path(str(job.model))
    picture = next((store.root / "styles").glob("*/img_0001.*"))
    page = build_ui(app)
    port = _free_port()
    page.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                        quiet=True, **file_access(store))  # fmt: skip

    def status(path: Path) -> int:
        url = f"http://127.0.0.1:{port}/gradio_api/file={path}"
        try:
            with urllib.request.urlopen(url, timeout=30) as got:
                return int(got.status)
        except urllib.error.HTTPError as err:
            return err.code

    try:
        assert status(Path(result)) == 200
        for secret in (store.db, model, picture, job.run_dir / "config.json", Path("/etc/passwd")):
            assert status(secret) in (403, 404), secret
    finally:
        page.close()


def test_sessions_expire_and_end() -> None:
    from styleforge.app.gate import Sessions

    now = [0.0]
    sessions = Sessions(hours=1, clock=lambda: now[0])
    token = sessions.new()
    assert sessions.valid(token) and not sessions.valid("forged") and not sessions.valid(None)
    now[0] = 3599.0
    assert sessions.valid(token)
    now[0] = 3601.0
    assert not sessions.valid(token)
    other = sessions.new()
    sessions.end(other)
    assert not sessions.valid(other)


@contextmanager
def _served(app: App, guard: Any = None, proxies: tuple[str, ...] = ("127.0.0.1", "::1")) -> Any:
    """``app`` served as ``serve`` does (the front door, the uploads folder) on a free local
    port by uvicorn in a thread: yields the port."""
    import threading

    import uvicorn

    from styleforge.app.ui import server_config, web_app

    web, page = web_app(app, guard, proxies)
    port = _free_port()
    server = uvicorn.Server(server_config(web, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(300):
            if server.started:
                break
            time.sleep(0.1)
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
        page.close()


class _Answer(NamedTuple):
    status: int
    headers: Any
    body: str


def _http(
    port: int, method: str, path: str, body: bytes | None = None,
    headers: dict[str, str] | None = None, source: str = "127.0.0.1",
) -> _Answer:  # fmt: skip
    """One request from local address ``source`` (any of 127.0.0.0/8: another client)."""
    import http.client

    con = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(source, 0))
    try:
        con.request(method, path, body=body, headers=headers or {})
        got = con.getresponse()
        return _Answer(got.status, got.headers, got.read().decode(errors="replace"))
    finally:
        con.close()


def _login_form(password: str) -> tuple[bytes, dict[str, str]]:
    import urllib.parse

    body = urllib.parse.urlencode({"username": "ann", "password": password}).encode()
    return body, {"Content-Type": "application/x-www-form-urlencoded"}


def _cookie_of(answer: _Answer) -> str:
    from styleforge.app.gate import COOKIE

    [line] = [v for k, v in answer.headers.items() if k.lower() == "set-cookie"]
    assert line.startswith(COOKIE + "="), line
    return line.split(";", 1)[0]


@pytest.mark.slow
def test_nothing_of_the_app_is_served_before_login(tmp_path: Path) -> None:
    import http.cookiejar
    import urllib.error
    import urllib.parse
    import urllib.request

    from styleforge.app.auth import LoginGuard
    from styleforge.app.gate import COOKIE

    app, job, result = _served_result(tmp_path)
    store = app.store
    logged: list[str] = []
    guard = LoginGuard("ann", "s3cret", first_delay=0.01, log=logged.append)
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    anonymous = urllib.request.build_opener()

    with _served(app, guard) as port:
        base = f"http://127.0.0.1:{port}"

        def get(path: str, opener: Any = anonymous) -> tuple[int, str]:
            try:
                with opener.open(base + path, timeout=30) as got:
                    return int(got.status), got.read().decode(errors="replace")
            except urllib.error.HTTPError as err:
                return err.code, err.read().decode(errors="replace")

        def post(path: str, fields: dict[str, str]) -> tuple[int, str]:
            data = urllib.parse.urlencode(fields).encode()
            try:
                with browser.open(base + path, data=data, timeout=30) as got:
                    return int(got.status), got.read().decode(errors="replace")
            except urllib.error.HTTPError as err:
                return err.code, err.read().decode(errors="replace")

        status, page = get("/")
        assert status == 200 and "Log in" in page
        for secret in (job.id, str(store.root), "dependencies", "fn_index", "styleforge.db"):
            assert secret not in page, secret
        for path in ("/config", "/gradio_api/info", f"/gradio_api/file={result}",
                     "/gradio_api/queue/status", "/theme.css", "/alive"):  # fmt: skip
            assert get(path)[0] == 401, path
        wrong = post("/login", {"username": "ann", "password": "wrong"})
        assert wrong[0] == 401 and "Wrong user or password" in wrong[1]
        assert logged and "127.0.0.1" in logged[0]
        time.sleep(0.05)  # the next try is looked at after first_delay
        status, page = post("/login", {"username": "ann", "password": "s3cret"})
        assert status == 200 and job.id in page and any(c.name == COOKIE for c in jar)
        assert '"logout"' in page  # the page's Log out button
        assert get(f"/gradio_api/file={result}", browser)[0] == 200
        assert get("/alive", browser)[0] == 200
        get("/logout", browser)  # a link cannot log out
        assert get(f"/gradio_api/file={result}", browser)[0] == 200
        assert post("/logout", {})[0] == 200  # the button's POST, redirected to the login
        assert get(f"/gradio_api/file={result}", browser)[0] == 401


@pytest.mark.slow
def test_a_flood_of_wrong_logins_holds_no_thread_and_guesses_stay_bounded(
    tmp_path: Path,
) -> None:
    """120 wrong logins at once from a stranger: each is answered at once (one looked at,
    the others refused unchecked with Retry-After), the right login from another address
    and a logged-in page are answered while they arrive, and the overall budget holds for
    a spray of addresses."""
    from concurrent.futures import ThreadPoolExecutor

    from styleforge.app.auth import LoginGuard

    app = _app(tmp_path)
    guard = LoginGuard("ann", "s3cret", log=lambda line: None)  # the real delays
    with _served(app, guard) as port:
        right = _http(port, "POST", "/login", *_login_form("s3cret"))
        assert right.status == 303
        cookie = {"Cookie": _cookie_of(right)}
        with ThreadPoolExecutor(max_workers=60) as pool:
            flood = [pool.submit(_http, port, "POST", "/login", *_login_form(f"guess{i}"),
                                 source="127.0.0.2") for i in range(120)]  # fmt: skip
            again = _http(port, "POST", "/login", *_login_form("s3cret"))
            page = _http(port, "GET", "/config", headers=cookie)
            answers = [f.result() for f in flood]
        assert again.status == 303 and page.status == 200
        statuses = sorted(a.status for a in answers)
        assert statuses == [401] + [429] * 119  # one guess looked at; no thread held
        assert all(int(a.headers["Retry-After"]) >= 1 for a in answers)
        assert "Too many wrong logins" in answers[-1].body or "Too many" in answers[0].body

        sprayed = [_http(port, "POST", "/login", *_login_form("x"), source=f"127.0.1.{i}")
                   for i in range(1, 31)]  # fmt: skip
        looked_at = sum(a.status == 401 for a in sprayed)
        assert looked_at == guard.burst - 1  # the overall budget (one went above)
        assert all(a.status == 429 for a in sprayed[looked_at:])


def test_wrong_logins_are_refused_unchecked_until_their_wait_is_over() -> None:
    """Per client 1, 2, 4 ... 30 s between looked-at guesses (an IPv6 client by its /64);
    overall a burst, then a steady rate; the right login resets its client and is never
    slowed by someone else's guesses at another address."""
    from styleforge.app.auth import LoginGuard, client_key

    now = [0.0]
    guard = LoginGuard("ann", "s3cret", clock=lambda: now[0], burst=1000, per_minute=6,
                       log=lambda line: None)  # fmt: skip
    waits = []
    for i in range(7):
        verdict = guard.attempt("ann", f"guess{i}", "10.0.0.9")
        assert verdict.checked and not verdict.ok
        waits.append(verdict.retry_after)
        early = guard.attempt("ann", "s3cret", "10.0.0.9")  # even the right one waits
        assert not early.checked and early.retry_after == pytest.approx(verdict.retry_after)
        now[0] += verdict.retry_after
    assert waits == [1, 2, 4, 8, 16, 30, 30]
    assert guard.attempt("ann", "s3cret", "10.0.0.8").ok  # another address: at once
    assert guard.attempt("ann", "s3cret", "10.0.0.9").ok  # after its wait: in, reset
    assert guard.attempt("ann", "x", "10.0.0.9").retry_after == 1
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff") != client_key("2001:db9::1")
    assert client_key("::ffff:10.0.0.9") == "10.0.0.9"

    overall = LoginGuard("ann", "s3cret", clock=lambda: now[0], burst=3, per_minute=6,
                         log=lambda line: None)  # fmt: skip
    assert [overall.attempt("ann", "x", f"10.1.0.{i}").checked for i in range(5)] == [
        True, True, True, False, False,
    ]  # fmt: skip
    refused = overall.attempt("ann", "s3cret", "10.2.0.1")
    assert not refused.checked and refused.retry_after == pytest.approx(10.0)
    now[0] += 10.0
    assert overall.attempt("ann", "x", "10.1.0.9").checked  # one more every 10 s
    assert not overall.attempt("ann", "x", "10.1.0.10").checked
    now[0] += 10.0
    assert overall.attempt("ann", "s3cret", "10.2.0.1").ok


@pytest.mark.slow
def test_requests_from_other_sites_are_refused(tmp_path: Path) -> None:
    """A foreign Origin (or Referer) is refused on every state-changing request and on the
    login; the page's own origin and clients that send none go through; no answer allows
    another origin; the cookie is Secure over HTTPS through a trusted proxy only."""
    from styleforge.app.auth import LoginGuard

    app, _, result = _served_result(tmp_path)
    guard = LoginGuard("ann", "s3cret", first_delay=0.01, log=lambda line: None)
    evil = {"Origin": "https://evil.example"}
    with _served(app, guard) as port:
        own = {"Origin": f"http://127.0.0.1:{port}"}
        body, form = _login_form("s3cret")
        refused = _http(port, "POST", "/login", body, {**form, **evil})
        assert refused.status == 403 and "set-cookie" not in {k.lower() for k in refused.headers}
        assert _http(port, "POST", "/login", body, {**form, "Origin": "null"}).status == 403
        referer = {"Referer": "http://evil.example/page"}
        assert _http(port, "POST", "/login", body, {**form, **referer}).status == 403
        plain_login = _http(port, "POST", "/login", body, form)  # no Origin: a script
        assert plain_login.status == 303 and "Secure" not in plain_login.headers["set-cookie"]
        cookie = {"Cookie": _cookie_of(_http(port, "POST", "/login", body, {**form, **own}))}

        boundary = "b0undary"
        upload = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
                  f"filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
                  f"--{boundary}--\r\n").encode()  # fmt: skip
        multipart = {"Content-Type": f"multipart/form-data; boundary={boundary}", **cookie}
        for origin, status in ((evil, 403), (own, 200), ({}, 200)):
            got = _http(port, "POST", "/gradio_api/upload", upload, {**multipart, **origin})
            assert got.status == status, (origin, got)
        join = json.dumps({"data": [], "fn_index": 0, "session_hash": "x"}).encode()
        queued = _http(port, "POST", "/gradio_api/queue/join", join,
                       {"Content-Type": "application/json", **cookie, **evil})  # fmt: skip
        assert queued.status == 403
        for path in ("/config", f"/gradio_api/file={result}"):
            got = _http(port, "GET", path, headers={**cookie, **evil})
            assert "access-control-allow-origin" not in {k.lower() for k in got.headers}
        preflight = _http(port, "OPTIONS", "/gradio_api/upload", headers={
            **evil, "Access-Control-Request-Method": "POST"})  # fmt: skip
        assert "access-control-allow-origin" not in {k.lower() for k in preflight.headers}

        assert _http(port, "GET", "/logout", headers=cookie).status != 303
        assert _http(port, "GET", "/config", headers=cookie).status == 200  # still logged in
        assert _http(port, "POST", "/logout", b"", {**cookie, **evil}).status == 403
        assert _http(port, "POST", "/logout", b"", {**cookie, **own}).status == 303
        assert _http(port, "GET", "/config", headers=cookie).status == 401

        https = {**form, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "sf.example",
                 "Origin": "https://sf.example"}  # fmt: skip
        behind = _http(port, "POST", "/login", body, https)  # from the trusted loopback
        assert behind.status == 303 and "secure" in behind.headers["set-cookie"].lower()
        stranger = _http(port, "POST", "/login", body, https, source="127.0.0.3")
        assert stranger.status == 403  # its headers do not count: a foreign origin
        direct = _http(port, "POST", "/login", body, {**form, "X-Forwarded-Proto": "https"},
                       source="127.0.0.3")  # fmt: skip
        assert direct.status == 303 and "secure" not in direct.headers["set-cookie"].lower()


def test_where_a_request_comes_from() -> None:
    from styleforge.app.gate import origin_of, trusted_networks

    proxies = trusted_networks(["10.0.0.0/8", "::1"])
    headers = {"host": "app:7860", "x-forwarded-for": "203.0.113.5, 10.0.0.2",
               "x-forwarded-proto": "https", "x-forwarded-host": "sf.example",
               "origin": "https://SF.example:443"}  # fmt: skip
    via = origin_of(headers, "10.0.0.1", "http", proxies)
    assert via.client == "203.0.113.5" and via.scheme == "https" and not via.foreign
    assert via.own == "https://sf.example"
    direct = origin_of(headers, "192.0.2.7", "http", proxies)  # not a proxy: headers ignored
    assert direct.client == "192.0.2.7" and direct.own == "http://app:7860" and direct.foreign
    assert origin_of({"host": "a:1"}, "192.0.2.7", "http").sender is None  # a script
    assert origin_of({"host": "a:1", "referer": "http://a:1/x?y"}, "h", "http").foreign is False
    with pytest.raises(ValueError):
        trusted_networks(["not-an-address"])


def test_a_finished_job_records_when_it_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from styleforge.app import worker as worker_module

    app = _app(tmp_path)
    app.create_style("s", _pictures(tmp_path / "up"))
    job = app.store.create_job(app.store.styles()[0].id, "stylizer", "quick", 2)
    clock = ["2030-01-01T10:00:00+00:00"]
    monkeypatch.setattr(worker_module, "now_iso", lambda: clock[0])

    def work(job: Any, stop: Any) -> dict[str, str]:
        clock[0] = "2030-01-01T10:07:00+00:00"  # the training takes 7 minutes
        return {"status": "done", "message": "finished"}

    monkeypatch.setattr(app.worker, "_work", work)
    app.worker._run(app.store.job(job.id))
    done = app.store.job(job.id)
    assert (done.started, done.finished) == ("2030-01-01T10:00:00+00:00", clock[0])


@pytest.mark.slow
def test_the_upload_folder_stays_bounded(tmp_path: Path) -> None:
    """Uploads land in the store's own folder, and each upload prunes the oldest past the
    bound (as results are)."""
    app = _app(tmp_path)
    app.store.keep_results_bytes = 2500
    boundary = "b0undary"
    with _served(app) as port:
        for i in range(5):
            body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
                    f"filename=\"u{i}.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                    + chr(65 + i) * 1000 + f"\r\n--{boundary}--\r\n").encode()  # fmt: skip
            headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
            got = _http(port, "POST", "/gradio_api/upload", body, headers)
            assert got.status == 200, got
            [saved] = json.loads(got.body)
            assert Path(saved).resolve().is_relative_to(app.store.uploads.resolve())
            time.sleep(0.02)  # distinct modification times: the oldest is well defined
    kept = sorted(p.name for p in app.store.uploads.rglob("*.bin"))
    assert kept == ["u3.bin", "u4.bin"]


def test_jobs_of_the_same_second_keep_the_order_they_were_queued_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from styleforge.app import store as store_module

    monkeypatch.setattr(store_module, "now_iso", lambda: "2030-01-01T10:00:00+00:00")
    app = _app(tmp_path)
    app.create_style("s", _pictures(tmp_path / "up"))
    style = app.store.styles()[0].id
    made = [app.store.create_job(style, "stylizer", "quick", 2).id for _ in range(6)]
    assert app.store.next_queued().id == made[0]  # type: ignore[union-attr]
    assert [j.id for j in app.store.jobs()] == made[::-1]  # newest first
