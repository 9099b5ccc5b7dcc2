"""What the web page's fields and looks cost and refuse: the Train tab's Steps field, the
Restyle and Dream sliders (refused beside the field, not by Gradio's fading pop-up), the
watched job's logs read incrementally and its plot redrawn only on new rows, the Restyle
history trusted only for this app's results, and refusals that carry no server path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from styleforge.app.actions import COLORS, MAX_STEPS, STRENGTH, TRUNCATION, App
from styleforge.app.store import Store
from styleforge.app.tabs.common import NumberField
from styleforge.app.watch import JobWatch, LogTail
from styleforge.app.worker import Worker
from styleforge.errors import UserError

from .conftest import app_model, write_image, write_tiny_stylizer


def _app(tmp_path: Path) -> App:
    store = Store(tmp_path / "data")
    return App(store, Worker(store, "cpu"))


def test_the_steps_field_takes_whole_numbers_only(tmp_path: Path) -> None:
    app = _app(tmp_path)
    assert app.preset_steps("stylizer", "quick") == 150
    assert app.preset_steps("sampler", "quick") == 800
    assert app.parse_steps("", "stylizer", "quick") is None  # the preset's
    assert app.parse_steps(None, "stylizer", "quick") is None
    assert app.parse_steps(" 12 ", "stylizer", "quick") == 12
    assert app.parse_steps(7, "sampler", "quick") == 7
    for bad in ("0", "abc", "2.5", "-5", "1e3", "٣", str(MAX_STEPS + 1)):
        with pytest.raises(UserError, match="not a whole number from 1 to"):
            app.parse_steps(bad, "stylizer", "quick")
    with pytest.raises(UserError, match="preset's 800"):
        app.parse_steps("0", "sampler", "quick")
    with pytest.raises(UserError, match="unknown preset"):
        app.parse_steps("5", "stylizer", "nope")
    app.create_style("s", [write_image(tmp_path / "p.png", (72, 64), seed=1)])
    with pytest.raises(UserError, match="not a whole number"):
        app.start_training(app.store.styles()[0].id, "stylizer", "quick", "2.5")
    assert app.store.jobs() == []  # nothing queued


def test_number_fields_take_numbers_in_their_range_only() -> None:
    assert STRENGTH.parse(0) == 0.0 and STRENGTH.parse(2) == 2.0
    assert STRENGTH.parse(1.25) == 1.25 and STRENGTH.parse(" 0.5 ") == 0.5
    assert COLORS.parse("1e-1") == pytest.approx(0.1) and TRUNCATION.parse(".7") == 0.7
    for bad in (2.01, -0.05, 1e9, "3", "abc", "nan", "inf", "1_0", "٣", True, [1], {"v": 1}):
        with pytest.raises(UserError, match=r"^strength: .* is not a number from 0 to 2$"):
            STRENGTH.parse(bad)
    for empty in (None, "", "  "):
        with pytest.raises(UserError, match="truncation: the field is empty; give a number"):
            TRUNCATION.parse(empty)
    with pytest.raises(UserError, match=r"photo colours kept: 1\.23457e\+15 is not"):
        COLORS.parse("1234567890123456")
    with pytest.raises(UserError, match=re.escape(r"photo colours kept: \*\*1\*\* or 2 o… is not")):
        COLORS.parse("**1** or 2 or 3")  # shown as typed (cut), never as formatting


def test_the_actions_refuse_numbers_out_of_range_before_doing_anything(tmp_path: Path) -> None:
    app = _app(tmp_path)
    photo = write_image(tmp_path / "p.png", (64, 56), seed=2)
    model = app_model(app.store, write_tiny_stylizer(tmp_path / "m.safetensors"))
    with pytest.raises(UserError, match=r"strength: 2\.5 is not a number from 0 to 2"):
        app.restyle([str(photo)], model, strength=2.5)
    with pytest.raises(UserError, match="photo colours kept: -1 is not"):
        app.restyle_clip(None, model, colors=-1)  # the number first, before the clip
    for act in (lambda: app.dream("", "0-3", 1.5),
                lambda: app.dream_more("", "1", "", float("nan"))):  # fmt: skip
        with pytest.raises(UserError, match=r"truncation: (1\.5|nan) is not a number from 0 to 1"):
            act()
    assert not (app.store.root / "results").exists()  # nothing was made
    assert len(app.restyle([str(photo)], model, strength=2, colors=0)) == 1  # the ends are in


def test_every_number_field_of_the_page_is_checked_beside_it(tmp_path: Path) -> None:
    import gradio as gr

    from styleforge.app.ui import build_ui

    demo = build_ui(_app(tmp_path))
    blocks = list(demo.blocks.values())
    numbers = [b for b in blocks if isinstance(b, gr.Slider | gr.Number)]
    notes = {b.elem_id for b in blocks if isinstance(b, gr.Markdown)}
    assert {b.elem_id for b in numbers} == {"restyle-strength", "restyle-colors",
                                             "dream-truncation"}  # fmt: skip
    for field in numbers:
        assert f"{field.elem_id}-note" in notes
        checks = [dep for dep in demo.fns.values() if (field._id, "input") in dep.targets]
        # The user's changes set or clear the note, with the value as sent (Gradio's own
        # check, a pop-up that fades, would refuse it first).
        assert len(checks) == 1 and checks[0].preprocess is False


def test_a_refused_number_stays_refused_until_the_user_changes_it() -> None:
    import gradio as gr

    with gr.Blocks():
        field = NumberField(STRENGTH, 1.0, "s")
    note, kept = field.check(5)
    assert note == kept == "⚠️ strength: 5 is not a number from 0 to 2. Set it again to go on."
    assert field.check(None)[0].startswith("⚠️ strength: the field is empty; give a number")
    assert field.check(1.5) == ("", "")  # a usable value clears both
    # The page pulls a typed 5 back to 2 when the box loses focus: still refused.
    assert field.refusal(2.0, kept) == note
    assert field.refusal(7, "") == note.replace("5", "7")  # sent out of range (an API client)
    assert field.refusal(1.0, "") == ""
    assert field.cleared() == ("", "")


def _log(path: Path, rows: list[str], mode: str = "a") -> None:
    with path.open(mode) as fh:
        fh.write("".join(rows))


def test_a_log_is_read_incrementally_and_again_after_a_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    tail = LogTail(path)
    assert tail.read() == 0 and tail.rows == []  # not there yet
    _log(path, ["step,loss\n", "0,1.5\n", "1,1.2\n", "2,1."], "w")  # a torn last line
    assert tail.read() == 2 and [r["step"] for r in tail.rows] == ["0", "1"]
    _log(path, ["1\n", "3,0.9\n"])
    assert tail.read() == 2 and tail.rows[-2:] == [{"step": "2", "loss": "1.1"},
                                                   {"step": "3", "loss": "0.9"}]  # fmt: skip
    assert tail.read() == 0
    replaced = tmp_path / "new.csv"  # a resume rewrites the log (a new file, renamed)
    _log(replaced, ["step,loss\n", "0,1.5\n"], "w")
    replaced.replace(path)
    assert tail.read() == 1 and tail.rows == [{"step": "0", "loss": "1.5"}]
    assert tail.rewrites == 1


def test_the_loss_plot_is_redrawn_only_when_rows_arrive(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    now = [0.0]
    watch = JobWatch(run, tmp_path / "losses.png", clock=lambda: now[0])
    assert watch.status() == (None, None) and watch.draws == 0
    _log(run / "log.csv", ["step,loss,lr_scale\n", "0,2.0,1\n", "1,1.0,1\n"], "w")
    step, plot = watch.status()
    assert step == 1 and plot is not None and watch.draws == 1
    assert Image.open(plot).size[0] > 0
    assert set(watch.curves()) == {"loss"}  # lr_scale is a setting
    for _ in range(3):  # looks without new rows draw nothing
        now[0] += 2
        assert watch.status() == (1, plot)
    assert watch.draws == 1
    _log(run / "log.csv", ["2,0.5,1\n"])
    now[0] += 2
    assert watch.status()[0] == 2 and watch.draws == 1  # not again within REDRAW_SECONDS
    now[0] += 10
    assert watch.status()[0] == 2 and watch.draws == 2
    _log(run / "log.csv", ["3,0.4,1\n"])
    assert watch.status(final=True)[0] == 3 and watch.draws == 3  # the end: drawn at once


def test_the_job_status_shows_the_plot_as_a_served_file(tmp_path: Path) -> None:
    app = _app(tmp_path)
    app.create_style("s", [write_image(tmp_path / "p.png", (72, 64), seed=1)])
    job = app.store.create_job(app.store.styles()[0].id, "stylizer", "quick", 4)
    job.run_dir.mkdir(parents=True)
    _log(job.run_dir / "log.csv", ["step,loss\n", "0,2.0\n", "1,1.0\n"], "w")
    text, preview, plot = app.job_status(job.id)
    assert "step 2 of 4" in text and preview is None and plot is not None
    assert Path(plot).parent == app.store.root / "previews"  # a folder the page may show
    assert app.job_choices() == [(f"s · stylizer · queued ({job.id})", job.id)]


def test_the_restyle_history_keeps_only_this_apps_results(tmp_path: Path) -> None:
    app = _app(tmp_path)
    model = app_model(app.store, write_tiny_stylizer(tmp_path / "m.safetensors"))
    pairs = app.restyle([write_image(tmp_path / "photo.png", (48, 40), seed=3)], model)
    secret = app.store.db
    forged = [
        [str(secret), str(secret)],  # a page cannot make the server show any file
        ["/etc/passwd", "/etc/passwd"],
        [pairs[0][0], str(app.store.root / "results" / ".." / "styleforge.db")],
        "not a pair",
        [pairs[0][0]],
    ]
    kept = app.restyle_history([*forged, list(pairs[0])])
    assert kept == [pairs[0]]
    assert app.restyle_history(None) == [] and app.restyle_history({"a": 1}) == []
    assert len(app.restyle_history([list(pairs[0])] * 100)) == 24


def test_refusals_name_the_file_without_the_servers_path_or_flags(tmp_path: Path) -> None:
    app = _app(tmp_path)
    model = app_model(app.store, write_tiny_stylizer(tmp_path / "m.safetensors"))
    uploads = tmp_path / "gradio" / "3f9a"
    uploads.mkdir(parents=True)
    bomb = uploads / "bomb.png"
    Image.new("L", (12_000, 9_000)).save(bomb)
    notes = uploads / "notes.png"
    notes.write_text("not a picture")
    for files in ([bomb], [notes]):
        for action in (lambda f: app.tune_round(model, f), lambda f: app.restyle(f, model)):
            with pytest.raises(UserError) as err:
                action(files)
            text = str(err.value)
            assert str(uploads) not in text and files[0].name in text, text
            assert "--max-pixels" not in text, text
    with pytest.raises(UserError) as err:
        app.create_style("s", [bomb])
    assert "megapixels" in str(err.value) and "--max-pixels" not in str(err.value)


def test_restyle_tab_states_the_clip_limit_beside_the_upload(tmp_path: Path) -> None:
    from styleforge.app.actions import CLIP_MAX_SIZE, MAX_CLIP_SECONDS
    from styleforge.app.ui import build_ui

    demo = build_ui(_app(tmp_path))
    clip = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "clip")
    assert f"{MAX_CLIP_SECONDS:.0f} s" in clip.label and f"{CLIP_MAX_SIZE} px" in clip.label


def test_train_tab_offers_the_stability_term(tmp_path: Path) -> None:
    from styleforge.app.ui import build_ui
    from styleforge.app.worker import STABILITY_WEIGHT, stylizer_config

    app = _app(tmp_path)
    demo = build_ui(app)
    box = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "train-stability")
    assert box.value is False and "video" in box.info
    files = [write_image(tmp_path / "up" / f"p{i}.png", size=(150, 140), seed=i) for i in range(3)]
    app.create_style("prints", files)
    style_id = app.style_choices()[0][1]
    steady = app.store.job(app.start_training(style_id, "stylizer", "quick", "5", steady=True))
    plain = app.store.job(app.start_training(style_id, "stylizer", "quick", 5))
    assert stylizer_config(steady).stability_weight == STABILITY_WEIGHT
    assert stylizer_config(steady).steps == 5
    assert stylizer_config(plain).stability_weight == 0.0
    with pytest.raises(UserError, match="pick a style"):
        app.start_training("", "stylizer", "quick", None, steady=True)
    # A sampler has no stability term: the box changes nothing there.
    dreams = app.store.job(app.start_training(style_id, "sampler", "quick", 5, steady=True))
    assert not (dreams.run_dir / "train_options.json").exists()
