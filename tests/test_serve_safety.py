"""The web app, safe to share: folders only under the roots the operator allowed, user-given
names shown as plain text and bounded, no server paths in messages, nothing stranded by a stop
(atomic writes, a sweep on start, bounded results), and SIGTERM stopping a training job with a
checkpoint to resume from."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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
    removed = set(store.sweep())
    assert set(leftovers) | {orphan_model} <= removed
    assert all(not p.exists() for p in leftovers) and style.folder.is_dir()
    assert store.styles()[0].images == 3

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


@pytest.mark.slow
def test_nothing_of_the_app_is_served_before_login(tmp_path: Path) -> None:
    import http.cookiejar
    import threading
    import urllib.error
    import urllib.parse
    import urllib.request

    import uvicorn

    from styleforge.app.auth import LoginGuard
    from styleforge.app.gate import COOKIE, gated_app
    from styleforge.app.ui import build_ui, file_access

    app, job, result = _served_result(tmp_path)
    store = app.store
    logged: list[str] = []
    guard = LoginGuard("ann", "s3cret", first_delay=0.01, log=logged.append)
    web = gated_app(build_ui(app).queue(), guard, **file_access(store))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(web, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    anonymous = urllib.request.build_opener()

    def get(path: str, opener: Any = anonymous) -> tuple[int, str]:
        try:
            with opener.open(base + path, timeout=30) as got:
                return int(got.status), got.read().decode(errors="replace")
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")

    def login(password: str) -> tuple[int, str]:
        data = urllib.parse.urlencode({"username": "ann", "password": password}).encode()
        try:
            with browser.open(base + "/login", data=data, timeout=30) as got:
                return int(got.status), got.read().decode(errors="replace")
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")

    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.1)
        status, page = get("/")
        assert status == 200 and "Log in" in page
        for secret in (job.id, str(store.root), "dependencies", "fn_index", "styleforge.db"):
            assert secret not in page, secret
        for path in ("/config", "/gradio_api/info", f"/gradio_api/file={result}",
                     "/gradio_api/queue/status", "/theme.css"):  # fmt: skip
            assert get(path)[0] == 401, path
        assert login("wrong")[0] == 401 and logged and "127.0.0.1" in logged[0]
        status, page = login("s3cret")  # redirected to the app's own page
        assert status == 200 and job.id in page and any(c.name == COOKIE for c in jar)
        assert get(f"/gradio_api/file={result}", browser)[0] == 200
        assert (
            get("/logout", browser)[0] == 200
            and get(f"/gradio_api/file={result}", browser)[0] == 401
        )
    finally:
        server.should_exit = True
        thread.join(10)
