"""The one restyle service: one precedence rule (set now > stored taste > model default), and the
same pixels through the command line, the web app's Restyle and the Python API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from styleforge.app.actions import App
from styleforge.app.store import Store
from styleforge.app.worker import Worker
from styleforge.cli import main
from styleforge.infer.header import read_taste
from styleforge.infer.model_file import ModelInfo, write_model
from styleforge.infer.restyle import Restyler, Settings
from styleforge.nets import PainterConfig, PainterNet
from styleforge.taste import TasteSession
from styleforge.taste.record import write_taste

from .conftest import app_model, write_image


def test_what_is_set_now_wins_over_the_taste_which_wins_over_the_defaults() -> None:
    taste = Settings(strength=1.4, paint_size=300, colors=0.5, tone=0.25)
    assert Settings().over(None) == Settings()  # the model decides: nothing set
    assert Settings().plain() == (1.0, 0.0, 0.0)  # ... its defaults (and its own paint size)
    stored = Settings(max_size=64, tile=0).over(taste)
    assert (stored.strength, stored.paint_size, stored.colors, stored.tone) == (
        1.4, 300, 0.5, 0.25,
    )  # fmt: skip
    assert (stored.max_size, stored.tile) == (64, 0)  # how the work is done: never the taste's
    now = Settings(strength=0.3, colors=0.0, tone=-0.5, paint_size=0).over(taste)
    assert (now.strength, now.paint_size, now.colors, now.tone) == (0.3, 0, 0.0, -0.5)
    partly = Settings(strength=0.8).over(taste)
    assert (partly.strength, partly.colors, partly.paint_size) == (0.8, 0.5, 300)


@pytest.fixture
def tasteful_model(tmp_path: Path) -> Path:
    """A painter-prior-shaped model with seeded weights and a stored taste."""
    torch.manual_seed(0)
    net = PainterNet(PainterConfig())
    model = tmp_path / "m.safetensors"
    write_model(model, net.state_dict(), ModelInfo(net=PainterConfig(),
                                                   training={"paint_size": 48}))  # fmt: skip
    session = TasteSession(seed=1)
    session.propose(8)
    session.record([2, 5], [0])
    write_taste(model, session)
    assert read_taste(model) is not None
    return model


@pytest.mark.slow
def test_cli_web_app_and_python_api_give_the_same_pixels(
    tasteful_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = write_image(tmp_path / "photo.png", size=(96, 72), seed=3)
    img = Image.open(photo).convert("RGB")
    store = Store(tmp_path / "data")
    app = App(store, Worker(store, "cpu"))
    in_app = app_model(store, tasteful_model)  # the same model, as the app lists it

    def cli(*flags: str) -> np.ndarray:
        out = tmp_path / f"cli{len(list(tmp_path.glob('cli*')))}.png"
        assert main(["apply", str(tasteful_model), str(photo), "-o", str(out), "-q", *flags]) == 0
        return np.asarray(Image.open(out))

    def web(**kw: float | bool | None) -> np.ndarray:
        [(_, after)] = app.restyle([photo], in_app, **kw)  # type: ignore[arg-type]
        return np.asarray(Image.open(after))

    restyler = Restyler.open(tasteful_model, device="cpu")
    api = np.asarray(restyler(img))
    np.testing.assert_array_equal(cli(), api)  # the stored taste, nothing set now
    np.testing.assert_array_equal(web(), api)
    set_now = np.asarray(restyler(img, Settings(strength=0.4, colors=1.0)))
    np.testing.assert_array_equal(cli("--strength", "0.4", "--preserve-colors"), set_now)
    np.testing.assert_array_equal(web(strength=0.4, colors=1.0), set_now)
    plain = np.asarray(Restyler.open(tasteful_model, device="cpu", use_taste=False)(img))
    np.testing.assert_array_equal(cli("--no-taste"), plain)
    np.testing.assert_array_equal(web(use_taste=False), plain)
    assert np.abs(api.astype(int) - plain).mean() > 1  # the taste changes the picture
    assert np.abs(set_now.astype(int) - api).mean() > 1  # and what is set now changes it again
    # The web tab's sliders start at the taste's values: moving them is setting them now.
    taste = read_taste(tasteful_model)
    assert taste is not None
    assert app.restyle_controls(in_app) == (taste.strength, taste.colors)
    assert app.restyle_controls(in_app, use_taste=False) == (1.0, 0.0)
    np.testing.assert_array_equal(web(strength=taste.strength, colors=taste.colors), api)
