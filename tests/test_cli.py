"""The command line: an end-to-end transfer at tiny size, and one clear line + exit code 2 for
every kind of user mistake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from styleforge.cli import main
from tests.conftest import write_image


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    return write_image(tmp_path / "photo.png", seed=1), write_image(tmp_path / "style.jpg", seed=2)


@pytest.mark.slow
def test_transfer_end_to_end(
    pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo, style = pair
    out = tmp_path / "out" / "result.png"
    code, err = run(
        [
            "transfer", str(photo), "--style", str(style), "-o", str(out),
            "--size", "48", "--steps", "3", "--quiet", "--device", "cpu",
        ],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert Image.open(out).size == (48, 38)
    assert not [p for p in out.parent.iterdir() if p.name != "result.png"]  # no temp files left
    code, err = run(
        ["transfer", str(photo), "--style", str(style), "-o", str(out), "--steps", "1"], capsys
    )
    assert code == 2 and "already exists" in err and "--overwrite" in err


@pytest.mark.slow
def test_transfer_folder_of_photos_with_two_weighted_styles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(2):
        write_image(tmp_path / "photos" / f"p{i}.png", seed=i)
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    styles = tmp_path / "styles"
    write_image(styles / "a.png", seed=5)
    write_image(styles / "b.png", seed=6)
    code, err = run(
        [
            "transfer", str(tmp_path / "photos"), "--style", str(styles / "a.png"),
            "--style", str(styles), "--style-weights", "0.7,0.3", "-o", str(tmp_path / "out"),
            "--size", "32", "--steps", "2", "-q",
        ],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p0.png", "p1.png"]
    assert "notes.txt" in err  # the skipped file is reported


def _bad_file(kind: str, tmp_path: Path) -> Path:
    path = tmp_path / f"bad_{kind}.png"
    if kind == "missing":
        return path
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "not_image":
        path.write_text("hello")
    elif kind == "truncated":
        good = write_image(tmp_path / "good.jpg", size=(200, 150)).read_bytes()
        path = tmp_path / "bad_truncated.jpg"
        path.write_bytes(good[: len(good) // 3])
    elif kind == "too_big":
        write_image(path, size=(300, 300))
    return path


@pytest.mark.parametrize("kind", ["missing", "empty", "not_image", "truncated", "too_big"])
@pytest.mark.parametrize("role", ["content", "style"])
def test_bad_image_is_one_line_and_exit_2(
    kind: str, role: str, pair: tuple[Path, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    photo, style = pair
    bad = _bad_file(kind, tmp_path)
    content_arg, style_arg = (bad, style) if role == "content" else (photo, bad)
    code, err = run(
        [
            "transfer", str(content_arg), "--style", str(style_arg), "-o", str(tmp_path / "o.png"),
            "--max-pixels", "50000", "--steps", "1", "--size", "32", "-q",
        ],
        capsys,
    )  # fmt: skip
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("styleforge: error: ")
    assert bad.name in err
    assert not (tmp_path / "o.png").exists()


def test_folder_with_too_few_usable_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "styles"
    write_image(folder / "tiny.png", size=(40, 30))
    (folder / "empty.jpg").write_bytes(b"")
    photo = write_image(tmp_path / "p.png")
    code, err = run(
        ["transfer", str(photo), "--style", str(folder), "-o", str(tmp_path / "o.png")], capsys
    )
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert "only 0 usable image" in last and "too small" in last


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--style-weights", "0.5,0.5"], "2 value(s) for 1 --style"),
        (["--style-weights", "a,b"], "expected numbers"),
        (["--steps", "0"], "positive"),
        (["--device", "tpu"], "invalid choice"),
        (["--optimizer", "sgd"], "invalid choice"),
        (["--encoder", "vgg19"], "--encoder-weights"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(
    extra: list[str], message: str, pair: tuple[Path, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    photo, style = pair
    argv = ["transfer", str(photo), "--style", str(style), "-o", str(tmp_path / "o.png"), *extra]
    try:
        code, err = run(argv, capsys)
    except SystemExit as exit_:  # argparse exits by itself
        code, err = int(exit_.code or 0), capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert message in err


def test_python_dash_m_and_console_script_agree() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "styleforge", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("styleforge ")
    missing = subprocess.run(
        [sys.executable, "-m", "styleforge", "transfer", "nope.jpg", "-s", "x.jpg", "-o", "o.png"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert missing.returncode == 2
    assert missing.stderr.strip() == "styleforge: error: nope.jpg: no such file or folder"
    assert "Traceback" not in missing.stderr


def test_several_photos_need_an_output_folder(
    pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo, style = pair
    other = write_image(tmp_path / "other.png", seed=4)
    argv = ["transfer", str(photo), str(other), "-s", str(style), "-o", str(tmp_path / "o.png")]
    code, err = run(argv, capsys)
    assert code == 2 and "2 photos need an output folder" in err
    assert not (tmp_path / "o.png").exists()
