"""The web page for several visitors, in headless Chromium behind the login: each page keeps
its own state, number fields refuse what they cannot take (and say so until changed), the
Restyle history survives a reload, Log out logs out, and a page that lost its server says so."""

from __future__ import annotations

import re
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from styleforge.app.actions import App
from styleforge.app.auth import LoginGuard
from styleforge.app.store import Store
from styleforge.app.worker import Worker

from .conftest import app_model, write_image, write_tiny_stylizer
from .test_app import SCREENSHOTS, _chromium, served

pytestmark = pytest.mark.slow


def _log_in(page: Any, port: int) -> None:
    from playwright.sync_api import expect

    page.goto(f"http://127.0.0.1:{port}/")
    page.locator("input[name=username]").fill("ann")
    page.locator("input[name=password]").fill("s3cret")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#create-style")).to_be_visible(timeout=60_000)


def _create_style(page: Any, name: str, pictures: list[Path]) -> None:
    page.locator("#style-name textarea, #style-name input").first.fill(name)
    page.locator("#style-files input[type=file]").set_input_files([str(p) for p in pictures])


def test_pages_keep_their_own_state_and_notice_a_lost_server(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    store = Store(tmp_path / "data")
    model = app_model(store, write_tiny_stylizer(tmp_path / "m.safetensors"))
    app = App(store, Worker(store, "cpu"))  # not started: nothing trains here
    guard = LoginGuard("ann", "s3cret", log=lambda line: None)
    pictures = {
        name: [write_image(tmp_path / name / f"p{i}.png", (96, 88), seed=10 * k + i)
               for i in range(3)]
        for k, name in enumerate(("Alpha", "Beta"))
    }  # fmt: skip
    photo = write_image(tmp_path / "photo.png", (64, 56), seed=3)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack, sync_playwright() as pw:
        port = stack.enter_context(served(app, guard))
        browser = pw.chromium.launch(executable_path=_chromium(), headless=True,
                                     args=["--no-sandbox"])  # fmt: skip
        ann, bob = (browser.new_context().new_page() for _ in range(2))
        for page in (ann, bob):
            _log_in(page, port)

        # Two visitors create a style at the same moment: each is shown its own.
        _create_style(ann, "Alpha", pictures["Alpha"])
        _create_style(bob, "Beta", pictures["Beta"])
        ann.locator("#create-style").click()
        bob.locator("#create-style").click()
        for page, name in ((ann, "Alpha"), (bob, "Beta")):
            expect(page.locator("#styles-msg")).to_contain_text(f"Created style {name}",
                                                                timeout=60_000)  # fmt: skip
        ids = {s.name: s.id for s in store.styles()}
        for page, name in ((ann, "Alpha"), (bob, "Beta")):
            expect(page.locator("#style-preview img")).to_have_attribute(
                "src", re.compile(f"style-{ids[name]}"), timeout=120_000
            )

        # The Train tab's Steps field: the preset's steps; what it cannot take is refused
        # beside it, and the note stays (timer ticks included) until the field changes.
        ann.get_by_role("tab", name="Train").click()
        steps, note = (
            ann.locator("#train-steps textarea, #train-steps input").first,
            ann.locator("#train-steps-note"),
        )
        expect(steps).to_have_value("150")
        ann.locator("#train-kind").get_by_text("sampler", exact=True).click()
        expect(steps).to_have_value("800")
        jobs = len(store.jobs())
        for bad in ("abc", "0", "2.5", "-5"):
            steps.fill(bad)
            expect(note).to_contain_text("not a whole number", timeout=30_000)
            ann.locator("#start-training").click()
            ann.wait_for_timeout(2500)  # a timer tick (the status refresh) comes and goes
            expect(note).to_contain_text("not a whole number")
        assert len(store.jobs()) == jobs  # nothing was queued
        steps.fill("6")
        expect(note).not_to_contain_text("not a whole number", timeout=30_000)
        ann.screenshot(path=str(SCREENSHOTS / "5_train_steps.png"), full_page=True)

        # Restyle: the results join this browser's history, which a reload shows again.
        ann.get_by_role("tab", name="Restyle").click()
        ann.locator("#photos input[type=file]").set_input_files([str(photo)])
        ann.locator("#restyle-model input").click()
        ann.get_by_role("option").first.click()
        # Its sliders: a number typed out of range (or none) is refused beside the field, and
        # stays refused (the box pulled back in range on leaving it) until the user changes
        # it; Restyle then restyles nothing.
        for elem_id, bad, said in (
            ("restyle-strength", "5", "strength: 5 is not"),
            ("restyle-colors", "", "photo colours kept: the field is"),
        ):
            box = ann.locator(f"#{elem_id} input[type=number]")
            note = ann.locator(f"#{elem_id}-note")
            box.fill(bad)
            expect(note).to_contain_text(said, timeout=30_000)
            ann.locator("#restyle").click()
            ann.wait_for_timeout(2500)
            expect(note).to_contain_text(said)
            expect(ann.locator("#restyle-msg")).not_to_contain_text("Restyled")
            box.fill("0.5")
            expect(note).to_be_empty(timeout=30_000)
        assert not (store.root / "results").exists()  # nothing was restyled
        ann.locator("#restyle").click()
        expect(ann.locator("#restyle-msg")).to_contain_text("Restyled 1", timeout=120_000)
        expect(ann.locator("#restyle-history img")).to_have_count(2, timeout=30_000)
        ann.reload()
        ann.get_by_role("tab", name="Restyle").click()
        expect(ann.locator("#restyle-history img")).to_have_count(2, timeout=60_000)
        bob.get_by_role("tab", name="Restyle").click()
        expect(bob.locator("#restyle-history img")).to_have_count(0)
        assert model  # the one trained model the Restyle list offers

        # Dream's Truncation likewise: refused beside it, nothing drawn, no other message.
        ann.get_by_role("tab", name="Dream").click()
        box, note = (ann.locator("#dream-truncation input[type=number]"),
                     ann.locator("#dream-truncation-note"))  # fmt: skip
        box.fill("-1")
        expect(note).to_contain_text("truncation: -1 is not a number from 0 to 1",
                                     timeout=30_000)  # fmt: skip
        ann.locator("#dream").click()
        ann.wait_for_timeout(2500)
        expect(note).to_contain_text("truncation: -1 is not")
        expect(ann.locator("#dream-msg")).to_be_empty()  # not even "pick a sampler"
        ann.screenshot(path=str(SCREENSHOTS / "7_dream_truncation.png"), full_page=True)
        box.fill("0.7")
        expect(note).to_be_empty(timeout=30_000)
        ann.locator("#dream").click()
        expect(ann.locator("#dream-msg")).not_to_be_empty(timeout=30_000)  # it ran (no sampler)

        # Log out: a button (a POST from the page), back to the login form.
        ann.locator("#logout").click()
        expect(ann.locator("input[name=password]")).to_be_visible(timeout=30_000)

        # A page whose server stopped asks to reload and log in again.
        expect(bob.locator("#server-lost")).to_have_count(0)
        stack.close()  # the server stops
        expect(bob.locator("#server-lost")).to_contain_text("Reload the page", timeout=20_000)
        bob.screenshot(path=str(SCREENSHOTS / "6_server_lost.png"), full_page=True)
        browser.close()
