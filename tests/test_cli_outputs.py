"""Which files a command reads and writes (:mod:`styleforge.outputs`): one naming rule for
``apply`` and ``transfer``, and the verbs' dispatch table."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from styleforge.cli import VERBS, build_parser, verb
from styleforge.errors import UserError
from styleforge.outputs import (
    gather_inputs,
    list_inputs,
    plan_outputs,
    refuse_existing,
    sample_outputs,
    walk_outputs,
)
from tests.conftest import write_image


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    write_image(root / "a.jpg", seed=1)
    write_image(root / "sub" / "b.webp", seed=2)
    (root / "sub" / "c.gif").write_bytes((root / "a.jpg").read_bytes())  # not a written format
    (root / "notes.txt").write_text("not a photo")
    return root


def test_one_photo_named_directly_may_go_to_a_file(tmp_path: Path) -> None:
    photo = write_image(tmp_path / "p.jpg")
    assert plan_outputs(list_inputs([photo]), tmp_path / "r.png") == [(photo, tmp_path / "r.png")]
    assert plan_outputs(list_inputs([photo]), tmp_path / "out") == [(photo, tmp_path / "out/p.jpg")]


def test_folders_keep_their_layout_and_unwritable_suffixes_become_png(
    library: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    pairs = plan_outputs(list_inputs([library]), out)
    assert [d.relative_to(out).as_posix() for _, d in pairs] == ["a.jpg", "sub/b.webp", "sub/c.png"]
    assert "notes.txt" in capsys.readouterr().err


def test_checked_inputs_name_the_same_outputs_and_list_what_is_unusable(
    library: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (library / "broken.png").write_bytes(b"no picture")
    inputs = gather_inputs([library], "transfer", max_pixels=10**7)
    assert inputs.left_out == (library / "broken.png",)  # notes.txt is no photo: not left out
    assert inputs.files == [library / "a.jpg", library / "sub" / "b.webp"]  # c.gif: a copy
    assert "broken.png" in capsys.readouterr().err
    pairs = plan_outputs(inputs, tmp_path / "out")
    assert [d.name for _, d in pairs] == ["a.jpg", "b.webp"]


@pytest.mark.parametrize(
    ("names", "output", "message"),
    [
        (["p.png", "q.png"], "o.png", "2 photos need an output folder"),
        (["lib"], "o.png", "photos from a folder need an output folder"),
        (["p.png", "lib"], "out", "two inputs would write the same output name"),
        (["nope.png"], "out", "nope.png: no such file or folder"),
        (["p.png", "q.png"], "taken", "exists and is not a folder"),
    ],
)
def test_plans_that_cannot_work_are_one_clear_error(
    names: list[str], output: str, message: str, tmp_path: Path
) -> None:
    write_image(tmp_path / "p.png")
    write_image(tmp_path / "q.png")
    write_image(tmp_path / "lib" / "p.png")
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(UserError, match=message):
        plan_outputs(list_inputs([tmp_path / n for n in names]), tmp_path / output)


def test_existing_outputs_are_refused_unless_overwrite(tmp_path: Path) -> None:
    a, b, c = (tmp_path / n for n in ("a.png", "b.png", "c.png"))
    a.write_bytes(b"x")
    refuse_existing([b, c], overwrite=False)
    refuse_existing([a], overwrite=True)
    with pytest.raises(UserError, match=r"a.png already exists; pass --overwrite to replace it"):
        refuse_existing([a, b], overwrite=False)
    b.write_bytes(b"x")
    with pytest.raises(UserError, match=r"a.png and 1 more already exist; pass --overwrite"):
        refuse_existing([a, b], overwrite=False)


def test_generated_images_are_numbered_in_a_folder(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    assert [p.name for p in sample_outputs(out, [0, 7], "seed")] == ["seed_0000.png",
                                                                      "seed_0007.png"]  # fmt: skip
    grid = tmp_path / "grid.png"
    assert sample_outputs(out, [12345], "like", grid) == [out / "like_12345.png", grid]
    with pytest.raises(UserError, match="give a folder"):
        sample_outputs(tmp_path / "g.png", [0], "seed")
    with pytest.raises(UserError, match="give an image file name"):
        sample_outputs(out, [0], "seed", tmp_path / "grid")
    assert walk_outputs(tmp_path / "w.gif", 3) == [tmp_path / "w.gif"]
    assert [p.name for p in walk_outputs(out, 2)] == ["frame_000.png", "frame_001.png"]
    with pytest.raises(UserError, match=r"a \.gif or into a folder"):
        walk_outputs(tmp_path / "w.mp4", 3)


def test_every_verb_has_its_parser_and_a_handler() -> None:
    parser = build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == list(VERBS)
    assert all(callable(verb(name).run) for name in VERBS)
    only = build_parser(only="generate")
    (sub,) = (a for a in only._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == ["generate"]
