"""Taste (issue #15): the search space of the look knobs, the preference search against a
simulated user, the taste record (and its older format), ``styleforge tune`` and ``apply``
following (or ignoring) the stored taste."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from styleforge.cli import main
from styleforge.errors import UserError
from styleforge.infer.apply import blend, stylize_array, tone_curve
from styleforge.infer.header import TASTE_KEY, TASTE_SESSION_KEY
from styleforge.infer.model_file import ModelInfo, read_model
from styleforge.infer.settings import Settings
from styleforge.taste import AXES, BASE, TasteSession, fit_preference, round_outcomes
from styleforge.taste.rounds import parse_all_picks, parse_picks
from styleforge.taste.space import checked, from_vector, look_from_dict, to_vector
from tests.conftest import write_image, write_tiny_stylizer

# ----------------------------------------------------------------------------- the library


def test_looks_map_to_the_unit_cube_and_under_the_settings_set_now() -> None:
    np.testing.assert_allclose(to_vector(BASE), [0.5, 0.5, 0.0, 0.5])
    assert from_vector(to_vector(BASE)) == BASE
    c = Settings(strength=1.7, paint_size=300, colors=0.25, tone=-0.4)
    assert from_vector(to_vector(c)) == c
    assert from_vector(np.full(len(AXES), 2.0)) == Settings(2.0, 1024, 1.0, 1.0)
    opts = Settings(tile=0, max_size=99).over(c)
    got = (opts.strength, opts.paint_size, opts.colors, opts.tone)
    assert got == (1.7, 300, 0.25, -0.4)
    assert (opts.tile, opts.max_size) == (0, 99)
    assert Settings.from_record(opts.to_record()) == c  # the look alone, as a taste stores it
    with pytest.raises(UserError, match="strength"):
        Settings(strength=2.5)
    with pytest.raises(UserError, match="paint_size must be from 256"):
        checked(Settings(strength=1.0, paint_size=64, colors=0.0, tone=0.0))
    with pytest.raises(UserError, match="tone"):
        look_from_dict({"strength": 1.0, "paint_size": 300, "colors": 0.0})


def test_colour_amount_and_tone_in_apply() -> None:
    rng = np.random.default_rng(0)
    photo, styled = rng.random((2, 1, 3, 8, 8), dtype=np.float32)
    np.testing.assert_array_equal(blend(photo, styled, 1.0, 0.0), styled)
    np.testing.assert_array_equal(blend(photo, styled, 1.0, True), blend(photo, styled, 1.0, 1.0))
    half = blend(photo, styled, 1.0, 0.5)
    ends = (blend(photo, styled, 1.0, 0.0), blend(photo, styled, 1.0, 1.0))
    # away from clamping (every channel of all three inside) the mix is linear
    inside = np.all([((v > 0.01) & (v < 0.99)).all(axis=1) for v in (half, *ends)], axis=0)
    assert inside.mean() > 0.3
    mid = (ends[0] + ends[1]) / 2
    np.testing.assert_allclose(half.transpose(0, 2, 3, 1)[inside],
                               mid.transpose(0, 2, 3, 1)[inside], atol=1e-4)  # fmt: skip
    x = np.linspace(0, 1, 101, dtype=np.float32)
    assert tone_curve(x, 0.0) is x
    for t in (-1.0, 0.5, 1.0):
        y = tone_curve(x, t)
        assert y.min() >= 0 and y.max() <= 1 and np.all(np.diff(y) >= 0)  # monotone, in range
    assert tone_curve(x, 1.0)[20] < x[20] < tone_curve(x, -1.0)[20]  # punchier / softer
    same = stylize_array(lambda a: a, photo, Settings(tone=0.0))
    np.testing.assert_allclose(same, photo, atol=1e-7)
    with pytest.raises(UserError, match="colour amount"):
        Settings(colors=1.5)


def test_round_outcomes_and_the_fit_rank_liked_over_disliked() -> None:
    pairs = round_outcomes(4, [0], [3])
    assert set(pairs) == {(0, 1), (0, 2), (0, 3), (1, 3), (2, 3)}
    points = np.random.default_rng(0).random((4, len(AXES)))
    model = fit_preference(points, pairs)
    assert model.utility[0] > model.utility[1] > model.utility[3]
    mean, std = model.predict(points)
    np.testing.assert_allclose(mean, model.utility, atol=1e-6)
    far = model.predict(np.full((1, len(AXES)), 5.0))
    assert far[1][0] > std.max()  # far from the data: as uncertain as the prior


def _simulated(target: np.ndarray, rounds: int, picks: str, seed: int = 0) -> TasteSession:
    """``picks`` 'best': like the 2 closest to ``target``, dislike the farthest; 'random'."""
    session = TasteSession(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        shown = session.propose(8)
        dist = [float(np.linalg.norm(to_vector(c) - target)) for c in shown]
        order = np.argsort(dist) if picks == "best" else rng.permutation(8)
        session.record([int(order[0]), int(order[1])], [int(order[-1])])
    return session


def test_three_rounds_move_the_recommendation_toward_a_simulated_user() -> None:
    """A user whose taste is more paint, bigger strokes, some photo colour and more contrast."""
    target = to_vector(Settings(strength=1.6, paint_size=300, colors=0.6, tone=0.5))
    start = float(np.linalg.norm(to_vector(BASE) - target))
    steps = []
    for seed in range(3):
        tuned = to_vector(_simulated(target, 3, "best", seed).recommendation())
        steps.append(float(np.linalg.norm(tuned - target)))
    assert max(steps) < 0.5 * start, (steps, start)
    # random picks do not pretend to know this user; no picks keep the default
    noise = []
    for seed in range(3):
        tuned = to_vector(_simulated(target, 3, "random", seed).recommendation())
        noise.append(float(np.linalg.norm(tuned - target)))
    assert np.mean(noise) > 1.5 * np.mean(steps), (noise, steps)
    assert TasteSession().recommendation() == BASE


def test_proposals_are_seeded_and_start_from_the_default() -> None:
    a, b = TasteSession(seed=3), TasteSession(seed=3)
    first = a.propose(8)
    assert first == b.propose(8) and first[0] == BASE and len(set(first)) == 8
    assert TasteSession(seed=4).propose(8) != first
    a.record([2], [5])
    second = a.propose(8)
    assert second[0] == a.recommendation()  # the incumbent leads the next grid
    with pytest.raises(UserError, match="out of range"):
        a.record([8])
    with pytest.raises(UserError, match="empty round"):
        a.record([], [])


def test_taste_record_round_trips_and_damage_is_one_clear_error() -> None:
    session = _simulated(np.full(len(AXES), 0.7), 2, "best")
    data = json.loads(json.dumps(session.to_dict()))
    assert data["format"] == "styleforge-taste-v3" and len(data["rounds"]) == 2
    assert "recommended" not in data  # the chosen look is the model file's taste entry
    again = TasteSession.from_dict(data)
    assert again.rounds == session.rounds and again.recommendation() == session.recommendation()
    assert again.propose(8) == session.propose(8)
    broken = [
        {**data, "format": "styleforge-taste-v0"},
        {**data, "rounds": "many"},
        {**data, "rounds": [{**data["rounds"][0], "liked": [99]}]},
        {**data, "rounds": [{"shown": [], "liked": [0]}]},
        {**data, "base": {"strength": "lots"}},
        {**data, "format": "styleforge-taste-v2"},  # v2 held the recommended look too
        {**data, "format": "styleforge-taste-v2", "recommended": {**BASE.to_record(), "tone": 7}},
        [1, 2],
    ]
    for bad in broken:
        with pytest.raises(UserError, match="damaged taste record") as err:
            TasteSession.from_dict(bad)
        assert "\n" not in str(err.value)


def test_picks_parse_and_refuse_bad_input() -> None:
    assert parse_picks("2 5 -7", 8) == ([1, 4], [6])
    assert parse_picks(" 1,3 ,-2 ", 8) == ([0, 2], [1])
    assert parse_all_picks("1;2 -3", 8) == [([0], []), ([1], [2])]
    for text, message in [("9", "out of range"), ("0", "out of range"), ("", "empty round"),
                          ("-", "not a pick"), ("a", "not a pick"), ("2 -2", "both"),
                          ("3 3", "twice")]:  # fmt: skip
        with pytest.raises(UserError, match=message):
            parse_picks(text, 8)
    with pytest.raises(UserError, match=r"round 2.*empty"):
        parse_all_picks("1;;2", 8)


# ----------------------------------------------------------------------------- the CLI


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A tiny from-scratch model file whose output is far from the photo."""
    return write_tiny_stylizer(tmp_path / "m.safetensors")


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    return [write_image(tmp_path / f"p{i}.png", (48, 40), seed=i) for i in range(2)]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(argv)
    return code, capsys.readouterr().err.strip().splitlines()


def _entries(model: Path) -> dict[str, str]:
    with safe_open(str(model), framework="numpy") as fh:
        return dict(fh.metadata() or {})


def _taste(model: Path) -> dict | None:
    """The stored session record (``None``: none); the chosen look has no entry without it."""
    meta = _entries(model)
    text = meta.get(TASTE_SESSION_KEY)
    assert (text is None) == (TASTE_KEY not in meta)
    return None if text is None else json.loads(text)


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path), dtype=np.int16)


def test_tune_stores_the_taste_and_apply_follows_it(
    model: Path, photos: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain.safetensors"
    plain.write_bytes(model.read_bytes())
    before, _ = read_model(model)
    # liking the high-strength, colour-keeping variants of round 1 drives the taste there
    first = TasteSession(seed=0).propose(8)
    liked = sorted(range(8), key=lambda i: -(first[i].tone + first[i].colors))[:2]
    picks = f"{liked[0] + 1},{liked[1] + 1},-1;1 2"
    code, err = _run(["tune", str(model), *map(str, photos), "--picks", picks, "-q",
                      "--device", "cpu"], capsys)  # fmt: skip
    assert code == 0, err
    grid = Image.open(tmp_path / "m.tune" / "round-01.png")
    assert grid.height > 2 * 192  # one row per photo
    assert (tmp_path / "m.tune" / "round-02.png").exists()
    assert (tmp_path / "m.tune" / "taste.png").exists()
    record = _taste(model)
    assert record is not None and len(record["rounds"]) == 2
    assert record["rounds"][0]["disliked"] == [0]
    look = json.loads(_entries(model)[TASTE_KEY])
    assert look["format"] == "styleforge-look-v1"  # a plain record of the four knobs
    taste = look_from_dict({k: v for k, v in look.items() if k != "format"})
    assert taste != BASE
    after, _ = read_model(model)
    assert all(torch.equal(before[k], after[k]) for k in before)  # the weights are untouched
    assert not [p for p in tmp_path.glob(".*")]  # no temporary file left

    code, err = _run(["tune", str(model), "--show"], capsys)
    assert code == 0

    out = {}
    explicit = ["--strength", "1", "--colors", "0", "--tone", "0", "--paint-size", "512"]
    for name, m, extra in [("taste", model, []), ("ignored", model, ["--no-taste"]),
                           ("plain", plain, []), ("explicit", model, explicit)]:  # fmt: skip
        out[name] = tmp_path / f"{name}.png"
        code, err = _run(["apply", str(m), str(photos[0]), "-o", str(out[name]), "-q", *extra],
                         capsys)  # fmt: skip
        assert code == 0, err
        assert any("using its taste" in line for line in err) == (name in ("taste", "explicit"))
    assert np.array_equal(_pixels(out["ignored"]), _pixels(out["plain"]))
    assert np.array_equal(_pixels(out["explicit"]), _pixels(out["plain"]))  # flags win
    assert np.abs(_pixels(out["taste"]) - _pixels(out["plain"])).mean() > 2

    # running tune again continues the stored rounds
    code, err = _run(["tune", str(model), str(photos[0]), "--picks", "3", "-q"], capsys)
    assert code == 0, err
    assert len(_taste(model)["rounds"]) == 3
    code, err = _run(["tune", str(model), "--reset"], capsys)
    assert code == 0 and _taste(model) is None


def test_tune_asks_in_the_terminal_until_enter(
    model: Path, photos: list[Path], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("1 3\nseven\n12\n2 -4\n\n"))
    code, err = _run(["tune", str(model), str(photos[0]), "-n", "4", "-q"], capsys)
    assert code == 0, err
    assert sum("try again" in line for line in err) == 2  # 'seven' and '12', asked again
    record = _taste(model)
    assert [r["liked"] for r in record["rounds"]] == [[0, 2], [1]]
    assert record["rounds"][1]["disliked"] == [3]


def test_bad_picks_and_missing_or_damaged_taste_are_one_line_errors(
    model: Path, photos: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = model.read_bytes()
    for picks, message in [("1;9", "out of range"), ("1;;2", "empty round"), ("x", "not a pick")]:
        code, err = _run(["tune", str(model), str(photos[0]), "--picks", picks], capsys)
        assert code == 2 and len(err) == 1 and message in err[0], err
    assert model.read_bytes() == original and not (tmp_path / "m.tune").exists()
    for flag in ("--show", "--reset"):
        code, err = _run(["tune", str(model), flag], capsys)
        assert code == 2 and len(err) == 1 and "no taste" in err[0], err
    code, err = _run(["tune", str(model)], capsys)
    assert code == 2 and len(err) == 1 and "photo" in err[0]

    tensors, _ = read_model(model)
    meta = ModelInfo.from_metadata(  # the model's own header plus a damaged taste
        safe_open(str(model), framework="numpy").metadata(), model
    ).to_metadata()
    for damage in ("{not json", json.dumps({"format": "styleforge-taste-v1", "seed": 0})):
        save_file(tensors, str(model), metadata={**meta, TASTE_KEY: damage})
        damaged = model.read_bytes()
        out = tmp_path / "o.png"
        code, err = _run(["apply", str(model), str(photos[0]), "-o", str(out), "-q"], capsys)
        assert code == 2 and len(err) == 1 and "damaged taste record" in err[0], err
        assert "--reset" in err[0] and not out.exists()
        code, err = _run(["tune", str(model), str(photos[0]), "--picks", "1"], capsys)
        assert code == 2 and len(err) == 1 and "damaged taste record" in err[0], err
        assert model.read_bytes() == damaged  # nothing lost
        code, err = _run(["apply", str(model), str(photos[0]), "-o", str(out), "-q",
                          "--no-taste"], capsys)  # fmt: skip
        assert code == 0 and out.exists()
        out.unlink()
        code, err = _run(["tune", str(model), "--reset"], capsys)  # the way out
        assert code == 0 and _taste(model) is None
    save_file(tensors, str(model), metadata={**meta, TASTE_KEY: "{not json"})
    code, err = _run(["tune", str(model), str(photos[0]), "--picks", "1", "-n", "2", "-q",
                      "--restart"], capsys)  # fmt: skip
    assert code == 0 and len(_taste(model)["rounds"]) == 1


def test_a_model_with_a_taste_of_the_old_format_still_loads(
    model: Path, photos: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before the look had an entry of its own, the whole session was the ``taste`` entry
    (``styleforge-taste-v2``, the look under ``recommended``): apply follows it, tune reads its
    rounds and the next round writes both entries the new way."""
    session = _simulated(np.full(len(AXES), 0.7), 2, "best")
    old = {**session.to_dict(), "format": "styleforge-taste-v2",
           "recommended": session.recommendation().to_record()}  # fmt: skip
    tensors, _ = read_model(model)
    meta = ModelInfo.from_metadata(_entries(model), model).to_metadata()
    save_file(tensors, str(model), metadata={**meta, TASTE_KEY: json.dumps(old)})
    look = session.recommendation()
    assert look != BASE

    taste, explicit = tmp_path / "taste.png", tmp_path / "explicit.png"
    code, err = _run(["apply", str(model), str(photos[0]), "-o", str(taste), "-q"], capsys)
    assert code == 0 and any(look.describe() in line for line in err), err
    flags = ["--strength", str(look.strength), "--paint-size", str(look.paint_size),
             "--colors", str(look.colors), "--tone", str(look.tone), "--no-taste"]  # fmt: skip
    code, err = _run(["apply", str(model), str(photos[0]), "-o", str(explicit), "-q", *flags],
                     capsys)  # fmt: skip
    assert code == 0, err
    np.testing.assert_array_equal(_pixels(taste), _pixels(explicit))
    assert main(["tune", str(model), "--show"]) == 0
    assert f"taste from 2 round(s): {look.describe()}" in capsys.readouterr().out

    code, err = _run(["tune", str(model), str(photos[0]), "--picks", "2", "-q"], capsys)
    assert code == 0, err
    record = _taste(model)  # written the new way: the rounds went on from the old ones
    assert record is not None and record["format"] == "styleforge-taste-v3"
    assert len(record["rounds"]) == 3 and "recommended" not in record
    assert record["rounds"][:2] == old["rounds"]
