"""`styleforge evaluate`: figures, report files, pairing and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from styleforge import fileio
from styleforge.cli import main
from styleforge.images import load_image, save_image
from styleforge.infer.transfer import TransferConfig, transfer
from styleforge.metrics import report
from styleforge.metrics.evaluate import evaluate, pair_results
from styleforge.metrics.features import EvalSettings
from tests.conftest import ASSETS, write_image


def test_table_and_json_handle_inf_and_none() -> None:
    table = report.format_table([{"a": 1.23456, "b": None}, {"a": float("inf"), "b": "x"}], "ab")
    assert table.splitlines()[2].split() == ["1.23", "-"]
    assert table.splitlines()[3].split() == ["inf", "x"]
    assert fileio.json_safe({"k": [float("inf"), Path("p")]}) == {"k": ["inf", "p"]}


def test_run_log_curves_are_read_and_plotted(tmp_path: Path) -> None:
    (tmp_path / "log.csv").write_text("step,g_loss,d_loss\n0,2.0,1.0\n10,1.0,\n20,0.5,0.8\n")
    (tmp_path / "other.csv").write_text("no,step,column\n1,2,3\n")
    curves = report.read_run_log(tmp_path)
    assert curves["g_loss"] == ([0.0, 10.0, 20.0], [2.0, 1.0, 0.5])
    assert curves["d_loss"] == ([0.0, 20.0], [1.0, 0.8])
    png = report.plot_curves(curves)
    assert png.startswith(b"\x89PNG")


def test_pairing_by_name(tmp_path: Path) -> None:
    photos = [tmp_path / "a.jpg", tmp_path / "b.png"]
    assert pair_results([Path("out/b.png"), Path("out/a.png")], photos) == photos[::-1]
    with pytest.raises(Exception, match="no photo with the same name for 1 result"):
        pair_results([Path("out/c.png")], photos)


@pytest.fixture
def sets(tmp_path: Path) -> dict[str, Path]:
    for i in range(3):
        write_image(tmp_path / "style" / f"s{i}.png", size=(96, 80), seed=10 + i)
    for name in ("p1", "p2"):
        write_image(tmp_path / "photos" / f"{name}.jpg", seed=len(name) + int(name[1]))
        write_image(tmp_path / "results" / f"{name}.png", seed=20 + int(name[1]))
    return {k: tmp_path / k for k in ("style", "photos", "results")} | {"root": tmp_path}


@pytest.mark.slow
def test_evaluate_cli_writes_self_contained_report(
    sets: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = sets["root"] / "run"
    run_dir.mkdir()
    (run_dir / "log.csv").write_text("step,loss\n0,3\n1,2\n")
    out = sets["root"] / "report"
    code = main(
        [
            "evaluate", str(sets["results"]), "--style", str(sets["style"]),
            "--content", str(sets["photos"]), "-o", str(out), "--size", "64", "--run", str(run_dir),
        ]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "style_gain" in captured.out and "p1.png" in captured.out
    metrics = json.loads((out / "metrics.json").read_text())
    assert {r["name"] for r in metrics["rows"]} == {"p1.png", "p2.png"}
    assert all(r["photo"].endswith(".jpg") for r in metrics["rows"])
    assert isinstance(metrics["summary"]["kid"], float)
    page = (out / "report.html").read_text()
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 2  # contact sheet and loss curves
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http" not in page.replace("http-equiv", "")
    assert (out / "contact_sheet.png").stat().st_size > 0


@pytest.mark.slow
def test_single_image_collection_says_kid_is_undefined(
    sets: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    one = sets["style"] / "s0.png"
    code = main(["evaluate", str(sets["results"]), "-s", str(one), "-o", str(sets["root"] / "r")])
    out = capsys.readouterr().out
    assert code == 0
    assert "KID undefined" in out and "nan" not in out.lower()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("mismatch", "no photo with the same name"),
        ("empty", "only 0 usable image"),
        ("missing_result", "no such file or folder"),
        ("missing_style", "no such file or folder"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    case: str, message: str, sets: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = sets["root"]
    style, results, photos = str(sets["style"]), str(sets["results"]), str(sets["photos"])
    if case == "mismatch":
        write_image(root / "results" / "p9.png")
    elif case == "empty":
        (root / "empty").mkdir()
        results = str(root / "empty")
    elif case == "missing_result":
        results = str(root / "nope.png")
    else:
        style = str(root / "nostyle")
    code = main(["evaluate", results, "-s", style, "-c", photos, "-o", str(root / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and message in err
    assert not (root / "r").exists()


@pytest.mark.slow
def test_stronger_style_weight_scores_higher_gain_and_lower_ssim(
    photo: torch.Tensor, starry: torch.Tensor, tmp_path: Path
) -> None:
    save_image(photo, tmp_path / "photos" / "cat.png")
    save_image(
        load_image(ASSETS / "style_images" / "starry_night.jpg", size=128), tmp_path / "s.png"
    )
    gains, ssims = [], []
    for weight in (1e-5, 1e-3):
        cfg = TransferConfig(size=64, steps=30, style_weight=weight)
        out = save_image(
            transfer(photo, [starry], cfg, progress=False), tmp_path / f"r{weight}" / "cat.png"
        )
        ev = evaluate(tmp_path / "s.png", [out], [tmp_path / "photos" / "cat.png"],
                      EvalSettings(size=64))  # fmt: skip
        gains.append(ev.rows[0]["style_gain"])
        ssims.append(ev.rows[0]["ssim"])
    assert 1.0 < gains[0] < gains[1]
    assert ssims[0] > ssims[1]
