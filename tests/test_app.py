"""The web app: its actions called directly (store, queue, cancel/resume, restart, bad uploads)
and end to end in headless Chromium (create a style, train, restyle, see the result)."""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from styleforge.app.actions import App
from styleforge.app.store import Store
from styleforge.app.worker import Worker
from styleforge.errors import UserError

from .conftest import write_image

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"


@pytest.fixture
def uploads(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "uploads"
    files = [write_image(folder / f"pic{i}.png", size=(150, 140), seed=i) for i in range(4)]
    (folder / "notes.jpg").write_text("not a picture")
    evil = folder / "..evil.png"
    shutil.copy(files[0], evil)  # a duplicate with a hostile name
    return [*files, folder / "notes.jpg", evil]


@pytest.fixture
def app(tmp_path: Path) -> App:
    store = Store(tmp_path / "data", max_upload_bytes=2**20)
    worker = Worker(store, "cpu").start()
    yield App(store, worker)  # type: ignore[misc]
    worker.close()


def test_styles_from_uploads_audit_rename_delete(app: App, uploads: list[Path]) -> None:
    message = app.create_style("My prints", uploads)
    assert "Created style **My prints**" in message
    assert "4 usable images" in message and "1 duplicate" in message
    assert "refused upload notes.jpg" in message
    [style] = app.store.styles()
    names = sorted(p.name for p in style.folder.iterdir())
    assert names == [f"img_{i:04d}.png" for i in range(1, 6)]  # upload names never used
    assert style.folder.parent == app.store.root / "styles"
    # The style's look before any training: a sheet of the prior's preview, made once.
    sheet = app.style_preview(style.id)
    assert sheet is not None and Path(sheet).stat().st_size > 0
    assert app.style_preview(style.id) == sheet and app.style_preview(None) is None
    assert len(list(style.folder.iterdir())) == 5  # the sheet is not among the style images
    app.rename_style(style.id, "Prints")
    assert app.style_choices() == [("Prints (4 images)", style.id)]
    # A restart (a new store on the same folder) lists everything again.
    assert [s.name for s in Store(app.store.root).styles()] == ["Prints"]
    assert "Deleted" in app.delete_style(style.id)
    assert app.store.styles() == [] and not style.folder.exists()
    assert not Path(sheet).exists()


def test_bad_uploads_are_refused_with_a_reason(app: App, tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (800, 800, 3), np.uint8)).save(big)
    text = tmp_path / "a.txt"
    text.write_text("hello")
    with pytest.raises(UserError, match="none of the uploads") as err:
        app.create_style("x", [big, text])
    assert "over the 1 MB upload limit" in str(err.value)
    bomb = tmp_path / "bomb.png"
    Image.new("L", (12_000, 9_000)).save(bomb)  # 108 megapixels in a small file
    assert bomb.stat().st_size < 2**20
    with pytest.raises(UserError, match="none of the uploads") as err:
        app.create_style("x", [bomb])
    assert "megapixels" in str(err.value) or "too large" in str(err.value)
    with pytest.raises(UserError, match="give the style a name"):
        app.create_style("  ", [big])
    with pytest.raises(UserError, match="pick a style"):
        app.start_training("", "stylizer", "quick", 5)


def test_jobs_queue_run_cancel_resume_and_survive_a_restart(app: App, uploads: list[Path]) -> None:
    app.create_style("s", uploads[:4])
    [style] = app.store.styles()
    first = app.start_training(style.id, "stylizer", "quick", 400)
    second = app.start_training(style.id, "sampler", "quick", 4)
    deadline = time.monotonic() + 120
    while app.store.job(first).status != "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert app.store.job(second).status == "queued"  # one job at a time
    while not (app.store.job(first).run_dir / "log.csv").is_file():
        time.sleep(0.2)
    app.cancel(first)
    assert app.worker.wait_idle(300)
    job = app.store.job(first)
    assert job.status == "cancelled" and job.resumable
    assert app.store.job(second).status == "done"
    assert [label for label, _ in app.model_choices("sampler")] == [f"s ({second})"]
    grid, paths = app.dream(app.model_choices("sampler")[0][1], "0-3", 1.0)
    assert Path(grid).is_file() and len(paths) == 4

    # A server that dies while training leaves the job "running": the restart says interrupted.
    app.store.update_job(first, status="running")
    app.worker.close()
    restarted = Worker(app.store, "cpu")
    app.store.recover()
    assert app.store.job(first).status == "interrupted"
    text, _, _ = App(app.store, restarted).job_status(first)
    assert "interrupted" in text and "can be resumed" in text
    with pytest.raises(UserError, match="only queued or running"):
        restarted.cancel(second)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("Debian's chromium is needed for the browser test (make test installs it)")
    return found


@contextmanager
def served(app: App, guard: Any = None) -> Iterator[int]:
    """The app served as ``serve`` serves it (its front door, its uploads folder) by uvicorn
    in a thread on a free local port: yields the port; stopped afterwards."""
    import threading

    import uvicorn

    from styleforge.app.ui import server_config, web_app

    web, page_app = web_app(app, guard)
    port = _free_port()
    server = uvicorn.Server(server_config(web, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert time.monotonic() < deadline, "the server never started"
            time.sleep(0.1)
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
        page_app.close()


@contextmanager
def served_page(app: App) -> Iterator[Any]:
    """The app's page served on a free local port, opened in headless Chromium: yields the
    Playwright page; the browser and the server are closed afterwards."""
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with served(app) as port, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), headless=True,
                                     args=["--no-sandbox"])  # fmt: skip
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(f"http://127.0.0.1:{port}/")
        yield page
        browser.close()


def test_browser_create_train_restyle(tmp_path: Path, uploads: list[Path]) -> None:
    from playwright.sync_api import expect

    store = Store(tmp_path / "data")
    worker = Worker(store, "cpu").start()
    photo = write_image(tmp_path / "photo.jpg", size=(96, 80), seed=9)
    try:
        with served_page(App(store, worker)) as page:
            # My styles: create a style from uploaded pictures.
            page.locator("#style-name textarea, #style-name input").first.fill("Browser style")
            page.locator("#style-files input[type=file]").set_input_files(
                [str(p) for p in uploads[:4]]
            )
            page.locator("#create-style").click()
            expect(page.locator("#styles-msg")).to_contain_text("Created style", timeout=60_000)
            expect(page.locator("#style-preview img")).to_be_visible(timeout=60_000)
            page.screenshot(path=str(SCREENSHOTS / "1_my_styles.png"), full_page=True)

            # Train: a tiny stylizer job, watched until done.
            page.get_by_role("tab", name="Train").click()
            page.locator("#train-style input").click()
            page.get_by_role("option", name="Browser style (4 images)").click()
            page.locator("#train-steps textarea, #train-steps input").first.fill("6")
            page.locator("#start-training").click()
            expect(page.locator("#job-status")).to_contain_text("done", timeout=240_000)
            expect(page.locator("#preview img")).to_be_visible(timeout=30_000)
            page.screenshot(path=str(SCREENSHOTS / "2_train.png"), full_page=True)

            # Restyle: upload a photo, pick the new model, see the result.
            page.get_by_role("tab", name="Restyle").click()
            page.locator("#photos input[type=file]").set_input_files([str(photo)])
            page.locator("#restyle-model input").click()
            page.get_by_role("option").first.click()
            page.locator("#restyle").click()
            expect(page.locator("#restyle-msg")).to_contain_text("Restyled 1", timeout=120_000)
            expect(page.locator("#restyle-gallery img").first).to_be_visible(timeout=30_000)
            assert page.locator("#restyle-gallery img").count() >= 2
            page.screenshot(path=str(SCREENSHOTS / "3_restyle.png"), full_page=True)

            page.get_by_role("tab", name="Dream").click()
            page.screenshot(path=str(SCREENSHOTS / "4_dream.png"), full_page=True)
    finally:
        worker.close()
    [job] = store.jobs()
    assert job.status == "done" and job.model is not None and Path(job.model).is_file()
    results = list((store.root / "results").rglob("restyled_*.png"))
    assert len(results) == 1
    assert os.path.getsize(SCREENSHOTS / "3_restyle.png") > 10_000
