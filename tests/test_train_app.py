"""`styleforge train` / `apply` / `export` end to end at tiny sizes, the training comforts
(previews, logs, checkpoints, stop and resume, NaN rollback) and every bad input's message."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from styleforge.cli import main
from styleforge.errors import EXIT_PARTIAL, UserError
from styleforge.images import SAMPLE_PHOTOS
from styleforge.infer.model_file import read_model
from styleforge.nets import DiscriminatorConfig, StylizerConfig
from styleforge.tblog import read_scalars
from styleforge.train.config import StylizerTrainConfig
from styleforge.train.data import sample_photos
from styleforge.train.loop import StopRequest, TrainingDiverged
from styleforge.train.stylizer import StylizerState, train_stylizer, train_stylizer_loop

from .conftest import write_image

pytestmark = pytest.mark.slow

TINY = StylizerTrainConfig(
    steps=6, size=32, batch=2, warmup=2, checkpoint_every=3, preview_every=2, seed=3,
    net=StylizerConfig(width=8, n_res=1), disc=DiscriminatorConfig(width=8, n_layers=2),
)  # fmt: skip
TINY_FLAGS = ["--size", "32", "--batch", "2", "--quiet", "--device", "cpu"]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse's own errors
        code = int(stop.code or 0)
    return code, capsys.readouterr().err


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    styles, photos = tmp_path / "styles", tmp_path / "photos"
    for i in range(3):
        write_image(styles / f"s{i}.png", size=(72, 64), seed=10 + i)
        write_image(photos / f"p{i}.jpg", size=(80, 64), seed=20 + i)
    return styles, photos


def _images(seed: int, n: int = 3) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.rand(1, 3, 40, 48, generator=gen) for _ in range(n)]


def test_train_writes_model_previews_and_logs(folders: tuple[Path, Path], tmp_path: Path) -> None:
    styles, photos = folders
    out = tmp_path / "model.safetensors"
    result = train_stylizer(TINY, styles, out, content_dir=photos, device="cpu", progress=False)
    assert result.model == out and not result.stopped_early and result.steps == 6
    _, info = read_model(out)
    assert info.net == TINY.net and info.training["steps"] == 6
    assert info.style["images"] == 3 and len(info.style["fingerprint"]) == 64
    assert info.metrics["mean_style_gain"] > 0 and "final_content" in info.metrics
    run_dir = tmp_path / "model.run"
    assert (run_dir / "checkpoint.pt").is_file() and (run_dir / "config.json").is_file()
    assert sorted(p.name for p in (run_dir / "previews").iterdir()) == [
        "step_000002.png", "step_000004.png", "step_000006.png",
    ]  # fmt: skip
    # Preview: a strip of the collection, a row of 3 photos, the same row restyled.
    assert Image.open(run_dir / "preview.png").size == (3 * 64, 2 * 64 + 40)  # strip: 32 + 2·4
    with open(run_dir / "log.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == list(range(6))
    assert rows[0]["d_loss"] == "" and rows[-1]["d_loss"] != ""
    events = list(run_dir.glob("events.out.tfevents.*"))
    assert len(events) == 1
    tags = {tag for _, tag, _ in read_scalars(events[0])}
    assert {"loss/content", "loss/style", "loss/adv", "loss/d_loss"} <= tags


def test_train_reads_each_picture_once_and_loads_one_vgg(
    folders: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import styleforge.collection as collection
    import styleforge.features.encoder as encoder
    import styleforge.images as images
    import styleforge.metrics.features as features

    decoded: list[Path] = []
    hashed: list[Path] = []
    loads: list[tuple[str, ...]] = []
    real_open, real_hash, real_load = (
        images.open_image,
        collection.sha256_file,
        encoder.load_encoder,
    )

    def counting_open(path: Path, *args: object, **kwargs: object) -> Image.Image:
        decoded.append(Path(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    def counting_hash(path: Path) -> str:
        hashed.append(path)
        return real_hash(path)

    def counting_load(layers: tuple[str, ...], *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        loads.append(tuple(layers))
        return real_load(layers, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(images, "open_image", counting_open)
    monkeypatch.setattr(collection, "sha256_file", counting_hash)
    monkeypatch.setattr(encoder, "load_encoder", counting_load)  # what the losses would load
    monkeypatch.setattr(features, "load_encoder", counting_load)
    styles, photos = folders
    out = tmp_path / "model.safetensors"
    train_stylizer(TINY, styles, out, content_dir=photos, device="cpu", progress=False)
    files = sorted([*styles.iterdir(), *photos.iterdir()])
    assert sorted(decoded) == files and sorted(hashed) == files
    assert len(loads) == 1  # the evaluation's VGG; the losses use a cut of it
    _, info = read_model(out)
    assert info.metrics["mean_style_gain"] > 0 and info.style["images"] == 3
    assert not (tmp_path / "model.run" / "final").exists()  # evaluated in memory


def test_stop_request_checkpoints_and_resume_finishes_identically(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    device = torch.device("cpu")
    photos, styles = _images(1), _images(2)
    straight = train_stylizer_loop(TINY, photos, styles, device)
    stop = StopRequest()

    def press_ctrl_c(state: StylizerState) -> None:
        if state.step == 4:
            stop.requested = True

    ckpt = tmp_path / "c.pt"
    half = train_stylizer_loop(TINY, photos, styles, device, ckpt, on_step=press_ctrl_c, stop=stop)
    assert half.step == 4
    resumed = train_stylizer_loop(TINY, photos, styles, device, ckpt, resume=True)
    assert resumed.step == 6
    for name, value in straight.generator.state_dict().items():
        assert torch.equal(value, resumed.generator.state_dict()[name]), name


def test_nan_rolls_back_with_lower_lr_then_stops_clearly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    device = torch.device("cpu")
    config = replace(TINY, steps=8, checkpoint_every=2)
    poisoned: list[int] = []

    def poison_at(*steps: int):  # type: ignore[no-untyped-def]
        def hook(state: StylizerState) -> None:
            if state.step in steps and state.step not in poisoned:
                poisoned.append(state.step)
                with torch.no_grad():
                    next(state.generator.parameters()).fill_(float("nan"))

        return hook

    state = train_stylizer_loop(config, _images(1), _images(2), device, on_step=poison_at(5))
    assert state.step == 8 and state.rollbacks == 1 and state.lr_scale == 0.5
    assert state.opt_g.param_groups[0]["lr"] == pytest.approx(config.lr_g / 2)
    assert "rolled back to step 4" in capsys.readouterr().err
    assert all(torch.isfinite(p).all() for p in state.generator.parameters())
    poisoned.clear()
    with pytest.raises(TrainingDiverged, match="again after a rollback"):
        train_stylizer_loop(config, _images(1), _images(2), device, on_step=poison_at(3, 5))


def test_train_apply_export_cli(
    folders: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    styles, photos = folders
    model = tmp_path / "m.safetensors"
    code, err = run(
        ["train", str(styles), "-o", str(model), "--content", str(photos), "--steps", "3",
         *TINY_FLAGS],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "wrote" in err and model.is_file()
    code, err = run(["train", str(styles), "-o", str(model), "--steps", "3", *TINY_FLAGS], capsys)
    assert code == 2 and "already exists" in err

    # apply: one file to a named file, and a folder tree mirrored.
    (photos / "sub").mkdir()
    write_image(photos / "sub" / "deep.png", size=(70, 50), seed=5)
    one = tmp_path / "one.png"
    code, err = run(["apply", str(model), str(photos / "p0.jpg"), "-o", str(one), "-q"], capsys)
    assert code == 0, err
    assert Image.open(one).size == (80, 64)
    out = tmp_path / "out"
    code, err = run(["apply", str(model), str(photos), "-o", str(out), "-q"], capsys)
    assert code == 0, err
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["p0.jpg", "p1.jpg", "p2.jpg", "sub/deep.png"]
    code, err = run(["apply", str(model), str(photos), "-o", str(out), "-q"], capsys)
    assert code == 2 and "already exist" in err and "--overwrite" in err
    (out / "p1.jpg").unlink()
    code, err = run(
        ["apply", str(model), str(photos), "-o", str(out), "-q", "--skip-existing"], capsys
    )
    assert code == 0 and "restyled 1, skipped 3" in err

    # export to ONNX and apply with onnxruntime: same pixels as torch within 1e-3.
    pytest.importorskip("onnxruntime")
    onnx_path = tmp_path / "m.onnx"
    code, err = run(["export", str(model), "-o", str(onnx_path)], capsys)
    assert code == 0, err
    big = write_image(tmp_path / "big.png", size=(150, 90), seed=9)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert run(["apply", str(model), str(big), "-o", str(a), "-q", "--tile", "0"], capsys)[0] == 0
    code, err = run(["apply", str(onnx_path), str(big), "-o", str(b), "-q", "--tile", "0"], capsys)
    assert code == 0, err
    diff = np.abs(np.asarray(Image.open(a), float) - np.asarray(Image.open(b), float))
    assert diff.max() <= 1.0  # ≤ 1/255: the float outputs agree within 1e-3 before rounding


def test_onnx_apply_does_not_import_torch(
    folders: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("onnxruntime")
    styles, photos = folders
    from styleforge.infer.export import export_model

    model = tmp_path / "m.safetensors"
    train_stylizer(TINY, styles, model, content_dir=photos, device="cpu", progress=False,
                   evaluate_result=False)  # fmt: skip
    onnx_path = export_model(model, tmp_path / "m.onnx")
    probe = (
        "import sys; from styleforge.cli import main; "
        f"code = main(['apply', {str(onnx_path)!r}, {str(photos / 'p0.jpg')!r}, "
        f"'-o', {str(tmp_path / 'r.png')!r}, '-q']); "
        "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(code)"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "r.png").is_file()


def test_sigterm_saves_a_checkpoint_and_resume_continues(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    styles, photos = folders
    model = tmp_path / "m.safetensors"
    cmd = [
        sys.executable, "-m", "styleforge", "train", str(styles), "-o", str(model),
        "--content", str(photos), "--checkpoint-every", "100000", "--preview-every", "2",
        *TINY_FLAGS,
    ]  # fmt: skip
    proc = subprocess.Popen([*cmd, "--steps", "100000"], stderr=subprocess.PIPE, text=True)
    preview = tmp_path / "m.run" / "preview.png"
    deadline = time.monotonic() + 120
    while not preview.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "continue with --resume" in err and not model.exists()
    from styleforge.train.checkpoint import load_checkpoint

    stopped_at = load_checkpoint(tmp_path / "m.run" / "checkpoint.pt")["step"]
    assert stopped_at >= 2
    again = subprocess.run([*cmd, "--steps", "3"], capture_output=True, text=True)
    assert again.returncode == 2 and "--resume" in again.stderr  # a fresh run would clobber it
    done = subprocess.run(
        [*cmd, "--steps", str(stopped_at + 2), "--resume"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert model.is_file()
    with open(tmp_path / "m.run" / "log.csv") as fh:
        steps = [int(r["step"]) for r in csv.DictReader(fh)]
    assert steps == list(range(stopped_at + 2))  # no step logged twice


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "{missing}", "-o", "{tmp}/m.safetensors"], "no such file or folder"),
        (["train", "{empty}", "-o", "{tmp}/m.safetensors"], "usable image"),
        (["train", "{styles}", "-o", "{tmp}/m.pt"], "must end in .safetensors"),
        (["train", "{styles}", "-o", "{tmp}/m.safetensors", "--preset", "huge"], "invalid choice"),
        (["train", "{styles}", "-o", "{tmp}/m.safetensors", "--resume"], "no checkpoint"),
        (["train", "{styles}", "-o", "{tmp}/m.safetensors", "--size", "8"], "at least 32"),
        (["apply", "{tmp}/none.safetensors", "{photo}", "-o", "{tmp}/o.png"], "no such model"),
        (["apply", "{notmodel}", "{photo}", "-o", "{tmp}/o.png"], "not a readable"),
        (["apply", "{model}", "{tmp}/nope.jpg", "-o", "{tmp}/o.png"], "no such file"),
        (["apply", "{model}", "{photo}", "-o", "{tmp}/o.png", "--strength", "2.5"], "0 to 2"),
        (["apply", "{model}", "{photo}", "-o", "{tmp}/o.png", "--tile", "50"], "twice the"),
        (["export", "{model}", "-o", "{tmp}/m.txt"], "must end in .onnx"),
        (["export", "{notmodel}", "-o", "{tmp}/m.onnx"], "not a readable"),
    ],
)
def test_bad_inputs_get_one_clear_line(
    argv: list[str], message: str, folders: tuple[Path, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    styles, photos = folders
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 40)
    model = tmp_path / "model.safetensors"
    if "{model}" in " ".join(argv):
        train_stylizer(TINY, styles, model, content_dir=photos, device="cpu", progress=False,
                       evaluate_result=False)  # fmt: skip
    subs = {
        "{missing}": str(tmp_path / "missing"), "{empty}": str(tmp_path / "empty"),
        "{styles}": str(styles), "{tmp}": str(tmp_path), "{photo}": str(photos / "p0.jpg"),
        "{model}": str(model), "{notmodel}": str(tmp_path / "bad.safetensors"),
    }  # fmt: skip
    args = []
    for a in argv:
        for k, v in subs.items():
            a = a.replace(k, v)
        args.append(a)
    code, err = run(args, capsys)
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert message in lines[-1], err
    assert "Traceback" not in err


def test_bad_photo_in_a_folder_fails_alone(
    folders: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    styles, photos = folders
    model = tmp_path / "m.safetensors"
    train_stylizer(TINY, styles, model, content_dir=photos, device="cpu", progress=False,
                   evaluate_result=False)  # fmt: skip
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((photos / "p0.jpg").read_bytes()[:200])
    out = tmp_path / "o"
    code, err = run(["apply", str(model), str(photos / "p1.jpg"), str(broken), "-o", str(out),
                     "-q"], capsys)  # fmt: skip
    assert code == EXIT_PARTIAL and "failed" in err and "broken.jpg" in err
    assert (out / "p1.jpg").is_file() and not (out / "broken.png").exists()

    # A folder: every image gets an output (a byte-identical copy too, it is another photo of
    # the library), the broken one fails alone, a non-image file is noted.
    library = tmp_path / "library"
    (library / "sub").mkdir(parents=True)
    (library / "a.jpg").write_bytes((photos / "p0.jpg").read_bytes())
    (library / "sub" / "copy_of_a.jpg").write_bytes((photos / "p0.jpg").read_bytes())
    (library / "broken.jpg").write_bytes(broken.read_bytes())
    (library / "a.xmp").write_text("sidecar")
    code, err = run(["apply", str(model), str(library), "-o", str(tmp_path / "lib_out"), "-q"],
                    capsys)  # fmt: skip
    assert code == EXIT_PARTIAL, err  # the others were written; a script can tell
    written = sorted(p.relative_to(tmp_path / "lib_out").as_posix()
                     for p in (tmp_path / "lib_out").rglob("*.*"))  # fmt: skip
    assert written == ["a.jpg", "sub/copy_of_a.jpg"]
    assert "failed" in err and "broken.jpg" in err and "a.xmp" in err


def test_sample_photos_are_bundled_colour_photos() -> None:
    photos = sample_photos()
    assert list(photos) == list(SAMPLE_PHOTOS)
    for photo in photos.values():
        assert photo.shape[:2] == (1, 3) and min(photo.shape[-2:]) >= 256


def test_train_refuses_model_path_that_is_a_folder(folders: tuple[Path, Path]) -> None:
    styles, photos = folders
    with pytest.raises(UserError, match="is a folder"):
        train_stylizer(TINY, styles, styles, content_dir=photos, device="cpu", progress=False)


def test_resumed_log_keeps_only_the_steps_the_checkpoint_holds(tmp_path: Path) -> None:
    from styleforge.train.job import RunLog
    from styleforge.train.stylizer import STYLIZER_COLUMNS

    log = RunLog(tmp_path, None, STYLIZER_COLUMNS)
    for step in range(5):  # 0-based step indices; a checkpoint was saved after 3 steps
        log.add(step, {"content": float(step)})
    log.close()
    resumed = RunLog(tmp_path, 3, STYLIZER_COLUMNS)
    resumed.add(3, {"content": 30.0})
    resumed.close()
    rows = (tmp_path / "log.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [0, 1, 2, 3]
    assert rows[-1].split(",")[2] == "30.0"


def test_log_after_a_rollback_holds_each_step_once(tmp_path: Path) -> None:
    from styleforge.train.job import RunLog
    from styleforge.train.stylizer import STYLIZER_COLUMNS

    log = RunLog(tmp_path, None, STYLIZER_COLUMNS)
    for step in [0, 1, 2, 3, 4, 2, 3, 4, 5]:  # NaN after step 4: rolled back to 2 steps done
        log.add(step, {"content": float(step) + (0.5 if step == 5 else 0.0)})
    log.close()
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [0, 1, 2, 3, 4, 5]
