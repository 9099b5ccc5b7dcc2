"""The web app's taste (issue #15), called directly: a Tune round trip into the model file and
the database (kept across a restart), Restyle following it, and the Dream tab's likes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from styleforge.app.actions import App
from styleforge.app.store import Store
from styleforge.app.worker import Worker
from styleforge.errors import UserError
from styleforge.infer.header import read_taste
from styleforge.infer.model_file import ModelInfo, write_model
from styleforge.infer.sampler import SamplerInfo
from styleforge.nets import StylizerConfig, StylizerNet
from styleforge.nets.sampler import SamplerConfig, SamplerGenerator
from styleforge.taste import BASE
from styleforge.taste.record import read_session

from .conftest import write_image, write_tiny_stylizer


def _finished(store: Store, kind: str, write) -> str:  # type: ignore[no-untyped-def]
    """A style with a done job of ``kind`` whose model ``write(path)`` writes (no training)."""
    pics = [write_image(store.root.parent / "up" / f"{kind}{i}.png", (64, 64), seed=i)
            for i in range(2)]  # fmt: skip
    style, _ = store.create_style(kind, pics)
    job = store.create_job(style.id, kind, "quick", 1)  # type: ignore[arg-type]
    path = store.root / "models" / f"{job.id}.safetensors"
    write(path)
    store.update_job(job.id, status="done", model=str(path))
    return str(path)


def _stylizer(path: Path) -> None:
    write_tiny_stylizer(path)


@pytest.fixture
def app(tmp_path: Path) -> App:
    store = Store(tmp_path / "data")
    return App(store, Worker(store, "cpu"))  # the worker thread is not needed here


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    return [write_image(tmp_path / f"p{i}.png", (56, 48), seed=20 + i) for i in range(2)]


def test_tune_rounds_store_the_taste_in_the_model_and_survive_a_restart(
    app: App, photos: list[Path], tmp_path: Path
) -> None:
    model = _finished(app.store, "stylizer", _stylizer)
    first = app.tune_round(model, photos)
    assert first.round == 1 and len(first.variants) == 8
    assert first.variants[0][1].startswith("1: strength 1.00")  # the default leads round 1
    grid = Image.open(first.variants[0][0])
    assert grid.height == 48 + 8 and grid.width == 2 * 56 + 12  # two photos, side by side
    assert app.tune_round(model, photos).variants[3][1] == first.variants[3][1]  # same grid
    with pytest.raises(UserError, match="out of range"):
        app.tune_next(model, "9", photos)
    with pytest.raises(UserError, match="empty round"):
        app.tune_next(model, "", photos)

    picks = app.toggle_pick("", 3, like=True)
    picks = app.toggle_pick(picks, 6, like=True)
    picks = app.toggle_pick(picks, 1, like=False)
    assert picks == "3 6 -1"
    assert app.toggle_pick(picks, 6, like=False) == "3 -1 -6"  # switched to a dislike
    second = app.tune_next(model, picks, photos)
    assert second.round == 2 and "after 1 round(s), saved in the model" in second.text
    # As `styleforge tune` does: the taste is in the model file after every round.
    assert read_taste(Path(model)) is not None
    third = app.tune_next(model, "2", None)  # the sample photos by default
    assert third.round == 3 and Image.open(third.variants[0][0]).height > 100
    taste = read_taste(Path(model))
    assert taste is not None and taste != BASE
    assert app.taste_of(model) == taste
    session = read_session(Path(model))
    assert session is not None and len(session.rounds) == 2

    # A restart (a new app on the same data folder) goes on from the rounds in the model.
    again = App(Store(app.store.root), Worker(app.store, "cpu"))
    view = again.tune_round(model, photos)
    assert view.round == 3 and taste.describe() in view.text

    # Restyle follows the taste; unticking "Use my taste" gives the plain result; a slider
    # moved away from the taste's value is what the user sets now, and wins.
    def restyled(use: bool, strength: float | None = None) -> np.ndarray:
        [(_, after)] = again.restyle([photos[0]], model, strength, use_taste=use)
        return np.asarray(Image.open(after), np.int16)

    assert np.abs(restyled(True) - restyled(False)).mean() > 1
    assert again.restyle_controls(model) == (taste.strength, taste.colors)
    assert np.abs(restyled(True, taste.strength) - restyled(True)).max() == 0
    assert np.abs(restyled(True, 0.2 if taste.strength > 0.6 else 1.0) - restyled(True)).mean() > 1

    assert "Taste reset" in again.tune_reset(model)
    assert read_taste(Path(model)) is None
    assert again.tune_round(model, photos).round == 1
    assert "No taste to reset" in again.tune_reset(model)
    with pytest.raises(UserError, match="not one of this app"):
        again.tune_round(str(tmp_path / "elsewhere.safetensors"), photos)


def test_refine_my_model_adds_a_new_model_of_the_same_style(app: App, photos: list[Path]) -> None:
    from styleforge.infer.model_file import read_model
    from styleforge.nets import DiscriminatorConfig
    from styleforge.train.config import StylizerTrainConfig

    recipe = StylizerTrainConfig(steps=2, size=32, batch=2, warmup=0,
                                 net=StylizerConfig(width=4, n_res=1),
                                 disc=DiscriminatorConfig(width=8))  # fmt: skip

    def write(path: Path) -> None:
        torch.manual_seed(0)
        net = StylizerNet(recipe.net)
        write_model(path, net.state_dict(), ModelInfo(net=net.config, training=recipe.to_dict()))

    model = _finished(app.store, "stylizer", write)
    before = len(app.model_choices("stylizer"))
    with pytest.raises(UserError, match="nothing liked"):
        app.tune_refine(model, photos, steps=2)
    app.tune_round(model, photos)
    app.tune_next(model, "2 -5", photos)
    job_id = app.tune_refine(model, photos, steps=2)  # queued: the request does not wait
    assert app.store.job(job_id).status == "queued" and app.refine_status(job_id) is None
    app.store.update_job(job_id, status="running")  # as the worker has it: it cannot stop
    with pytest.raises(UserError, match="is a refine: it runs to its end"):
        app.cancel(job_id)
    app.store.update_job(job_id, status="queued")
    app.worker.start()  # the worker runs the refine as it runs a training job
    try:
        assert app.worker.wait_idle(300)
    finally:
        app.worker.close()
    text = app.refine_status(job_id)
    assert text is not None and "Refined into a new model" in text, text
    choices = app.model_choices("stylizer")
    assert len(choices) == before + 1
    refined = next(path for _, path in choices if path != model)
    _, info = read_model(Path(refined))
    assert info.refined[0]["rounds"] == 1 and info.refined[0]["liked"] == 2  # 1 variant x 2
    assert read_taste(Path(refined)) is not None  # its taste is the rounds'
    assert app.store.job(job_id).kind == "refine"


def test_dream_likes_sample_around_the_liked_seeds(app: App) -> None:
    net = SamplerConfig(resolution=64, latent_dim=8, width=4, max_width=16)

    def write(path: Path) -> None:
        torch.manual_seed(0)
        write_model(path, SamplerGenerator(net).state_dict(), SamplerInfo(net))

    sampler = _finished(app.store, "sampler", write)
    _, paths = app.dream(sampler, "0-7", 1.0)
    liked, disliked = app.toggle_seed("", "", 3, like=True)
    liked, disliked = app.toggle_seed(liked, disliked, 5, like=True)
    liked, disliked = app.toggle_seed(liked, disliked, 6, like=False)
    assert (liked, disliked) == ("3,5", "6")
    assert app.toggle_seed(liked, disliked, 5, like=True) == ("3", "6")  # pressed again: undone
    more_grid, more = app.dream_more(sampler, liked, disliked, 1.0, 0)
    assert len(more) == 16 and Path(more_grid).is_file()
    again = app.dream_more(sampler, liked, disliked, 1.0, 0)[1]
    pixels = [np.asarray(Image.open(p), np.float64) for p in more]
    assert all(np.array_equal(a, np.asarray(Image.open(b), np.float64))
               for a, b in zip(pixels, again, strict=True))  # fmt: skip
    seeds = [np.asarray(Image.open(p), np.float64) for p in paths]
    target = (seeds[3] + seeds[5]) / 2
    others = np.mean([s for i, s in enumerate(seeds) if i not in (3, 5)], axis=0)
    assert np.abs(np.mean(pixels, 0) - target).mean() < np.abs(others - target).mean()
    for liked_text, disliked_text, message in [
        ("", "", "like at least one"),
        ("3", "3", "both liked"),
        ("x", "", "expected"),
    ]:
        with pytest.raises(UserError, match=message):
            app.dream_more(sampler, liked_text, disliked_text, 1.0, 0)
    with pytest.raises(UserError, match="click one"):
        app.toggle_seed("", "", None, like=True)


@pytest.mark.slow
def test_browser_tune_tab_grid_like_click_and_watched_refine_job(tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from .test_app import SCREENSHOTS, served_page

    store = Store(tmp_path / "data")
    model = _finished(store, "stylizer", _stylizer)
    worker = Worker(store, "cpu").start()
    with served_page(App(store, worker)) as page:
        page.get_by_role("tab", name="Tune").click()
        page.locator("#tune-model input").click()
        page.get_by_role("option").first.click()
        page.locator("#tune-show").click()
        expect(page.locator("#tune-status")).to_contain_text("Round 1", timeout=60_000)
        cells = page.locator("#tune-grid img")
        expect(cells).to_have_count(8, timeout=30_000)
        cells.nth(2).click()
        page.locator("#tune-like").click()
        picks = page.locator("#tune-picks textarea, #tune-picks input").first
        expect(picks).to_have_value("3", timeout=10_000)
        page.screenshot(path=str(SCREENSHOTS / "5_tune.png"), full_page=True)
        page.locator("#tune-next").click()
        expect(page.locator("#tune-status")).to_contain_text("Round 2", timeout=60_000)
        # Refine is a job the page watches: this model has no training recipe, so the job
        # fails, and the page says so once the worker is done with it.
        page.locator("#tune-refine").click()
        expect(page.locator("#tune-status")).to_contain_text("Refining into a new model")
        expect(page.locator("#tune-status")).to_contain_text("no training recipe", timeout=60_000)
    worker.close()
    [refine] = [j for j in store.jobs() if j.model != model]
    assert refine.status == "failed" and refine.kind == "refine" and refine.preset == "quick"
    session = read_session(Path(model))
    assert session is not None and session.rounds[0].liked == (2,)


def test_an_older_refine_record_becomes_a_refine_job(tmp_path: Path) -> None:
    store = Store(tmp_path / "data")
    model = _finished(store, "stylizer", _stylizer)
    [source] = [j for j in store.jobs() if j.model == model]
    job = store.create_job(source.style_id, "stylizer", "refined quick", 2)
    job.run_dir.mkdir(parents=True, exist_ok=True)
    (job.run_dir / "refine.json").write_text("{}", encoding="utf-8")  # as older versions did
    again = Store(store.root)
    assert again.job(job.id).kind == "refine" and again.job(source.id).kind == "stylizer"
    assert [m for _, m in again.models("stylizer")] == [Path(model)]  # not done: not listed
