"""``styleforge apply`` on clips: a clip in, a clip out with its frames, rate and sound; the
flags that only clips take; one clear line for what is wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styleforge.cli import main
from styleforge.collection import is_clip
from tests.conftest import write_image, write_tiny_stylizer
from tests.test_video import FPS, N_FRAMES, make_clip, probe


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_stylizer(tmp_path_factory.mktemp("model") / "m.safetensors")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


def test_apply_restyles_a_clip_keeping_frames_rate_size_and_sound(
    model: Path, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.mp4"
    assert main(["apply", str(model), str(clip), "-o", str(out), "-q"]) == 0
    got = probe(out)
    assert got["frames"] == N_FRAMES and got["fps"] == pytest.approx(FPS)
    assert (got["width"], got["height"]) == (96, 64)
    assert got["audio"] == pytest.approx(N_FRAMES / FPS, abs=0.1)
    assert "audio kept" in capsys.readouterr().err
    # Restyled: far from the input's frames.
    import av

    with av.open(str(out)) as a, av.open(str(clip)) as b:
        first_out = next(a.decode(video=0)).to_ndarray(format="rgb24").astype(float)
        first_in = next(b.decode(video=0)).to_ndarray(format="rgb24").astype(float)
    assert np.abs(first_out - first_in).mean() > 10
    # Into an existing folder: the clip's own name; trimmed, silent, as a GIF.
    folder = tmp_path / "folder"
    folder.mkdir()
    args = ["--start", "0.5", "--end", "1.5", "--no-audio", "--temporal", "0", "-q"]
    assert main(["apply", str(model), str(clip), "-o", str(folder), *args]) == 0
    trimmed = probe(folder / "clip.mp4")
    assert trimmed["frames"] == pytest.approx(FPS, abs=1) and trimmed["audio"] is None
    gif = tmp_path / "out.gif"
    assert main(["apply", str(model), str(clip), "-o", str(gif), "--end", "1", "-q"]) == 0
    assert is_clip(gif) and Image.open(gif).n_frames >= FPS - 1


def test_clip_mistakes_are_one_line(
    model: Path, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = write_image(tmp_path / "p.png", (40, 32), seed=1)
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    cases = [
        ([str(clip), str(photo)], "one clip per command"),
        ([str(photo), "--start", "1"], "--start is for clips"),
        ([str(fake)], "fake.mp4"),
    ]
    for inputs, message in cases:
        code = main(["apply", str(model), *inputs, "-o", str(tmp_path / "o.mp4"), "-q"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and message in err and "Traceback" not in err, err
        assert len(err.splitlines()) == 1, err
    assert not (tmp_path / "o.mp4").exists()
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_a_still_gif_is_a_picture_and_an_animated_one_a_clip(tmp_path: Path) -> None:
    still = tmp_path / "still.gif"
    Image.new("RGB", (16, 16), "red").save(still)
    moving = tmp_path / "moving.gif"
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    frames[0].save(moving, save_all=True, append_images=frames[1:], duration=100)
    assert not is_clip(still) and is_clip(moving) and not is_clip(tmp_path / "none.mp4")


def test_web_app_restyles_a_short_clip_and_refuses_a_long_one(
    model: Path, clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from styleforge.app import actions
    from styleforge.app.actions import App
    from styleforge.app.store import Store
    from styleforge.app.worker import Worker
    from styleforge.errors import UserError
    from tests.conftest import write_image

    store = Store(tmp_path / "data")
    app = App(store, Worker(store, "cpu"))
    app.create_style("s", [write_image(tmp_path / "p.png", (64, 64), seed=1)])
    job = store.create_job(store.styles()[0].id, "stylizer", "quick", 1)
    model = write_tiny_stylizer(store.root / "models" / f"{job.id}.safetensors")
    store.update_job(job.id, status="done", model=str(model))
    out = Path(app.restyle_clip(str(clip), str(model), 1.0, 0.0))
    got = probe(out)
    assert got["frames"] == N_FRAMES and got["audio"] is not None
    assert out.is_relative_to(store.root / "results")
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    with pytest.raises(UserError, match=r"fake\.mp4"):
        app.restyle_clip(str(fake), str(model))
    monkeypatch.setattr(actions, "MAX_CLIP_SECONDS", 1.0)
    with pytest.raises(
        UserError, match=r"clip.mp4 is 2 s: the web app restyles clips of up to 1 s"
    ):
        app.restyle_clip(str(clip), str(model))
    with pytest.raises(UserError, match="upload one clip"):
        app.restyle_clip(None, str(model))


def test_evaluate_video_reports_less_flicker_with_the_temporal_blend(
    model: Path, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    figures = {}
    for temporal in ("0", "0.8"):
        out = tmp_path / f"t{temporal}.mp4"
        assert main(["apply", str(model), str(clip), "-o", str(out), "--temporal", temporal,
                     "-q"]) == 0  # fmt: skip
        capsys.readouterr()
        assert main(["evaluate", str(out), "--video", str(clip), "--json"]) == 0
        figures[temporal] = json.loads(capsys.readouterr().out)
    plain, blended = figures["0"], figures["0.8"]
    assert plain["pairs"] == N_FRAMES - 1
    assert blended["warping_error"] < 0.8 * plain["warping_error"], figures
    assert plain["source_error"] < plain["warping_error"]
    code = main(["evaluate", str(clip), str(clip), "--video", str(clip)])
    assert code == 2 and "one restyled clip" in capsys.readouterr().err
