"""Faults and awkward input: no traceback, no lost data, the same weights every time.

Every file kind is generated here. Good kinds must be restyled (or used); broken kinds fail
alone with one line naming the file once; the exit code tells a script which happened.
"""

from __future__ import annotations

import csv
import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from styleforge.cli import main
from styleforge.errors import EXIT_FAULT, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE
from styleforge.infer.model_file import ModelInfo, write_model
from styleforge.nets import StylizerConfig, StylizerNet
from styleforge.tblog import read_scalars

from .conftest import write_image

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(0)


def _rgb(h: int, w: int) -> Image.Image:
    return Image.fromarray(RNG.integers(0, 256, (h, w, 3), dtype=np.uint8))


def make_good(folder: Path) -> list[Path]:
    """Every awkward-but-valid kind: each must be restyled."""
    folder.mkdir(parents=True, exist_ok=True)
    kinds: dict[str, Image.Image] = {
        "rgba.png": _rgb(40, 50).convert("RGBA"),
        "palette_alpha.png": _rgb(40, 50).convert("P"),
        "cmyk.jpg": _rgb(40, 50).convert("CMYK"),
        "web.webp": _rgb(40, 50),
        "scan.tif": _rgb(40, 50),
        "ten.png": _rgb(10, 10),
        "dot.png": _rgb(1, 1),
        "banner.png": _rgb(1, 3000),
        "tower.png": _rgb(3000, 1),
    }
    for name, img in kinds.items():
        if name == "palette_alpha.png":
            img.info["transparency"] = 0
        img.save(folder / name)
    deep = Image.fromarray(RNG.integers(0, 65535, (40, 50), dtype=np.uint16))  # mode I;16
    deep.save(folder / "sixteen_bit.png")
    rotated = _rgb(30, 60)
    exif = rotated.getexif()
    exif[0x0112] = 6  # rotate 90° on display
    rotated.save(folder / "exif_rotated.jpg", exif=exif)
    return sorted(p for p in folder.iterdir() if p.name in {*kinds, "sixteen_bit.png",
                                                            "exif_rotated.jpg"})  # fmt: skip


def make_broken(folder: Path) -> list[Path]:
    """Every kind that must fail on its own."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "page.png").write_text("<html><body>not a picture</body></html>")
    (folder / "notes.jpg").write_text("hello")
    (folder / "empty.png").write_bytes(b"")
    good = write_image(folder / "whole.jpg", size=(200, 150)).read_bytes()
    (folder / "whole.jpg").unlink()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 3])
    Image.new("L", (3000, 3000)).save(folder / "bomb.png")  # 9 MP, over --max-pixels below
    names = ("page.png", "notes.jpg", "empty.png", "truncated.jpg", "bomb.png")
    return [folder / name for name in names]


@pytest.fixture
def model(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    net = StylizerConfig(width=4, n_res=1)
    return write_model(tmp_path / "m.safetensors", StylizerNet(net).state_dict(), ModelInfo(net))


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


# --- apply ----------------------------------------------------------------------------------


def test_apply_folder_restyles_every_good_kind_and_names_each_failure_once(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = make_good(tmp_path / "in")
    broken = make_broken(tmp_path / "in")
    out = tmp_path / "out"
    code, err = _run(["apply", str(model), str(tmp_path / "in"), "-o", str(out), "-q",
                      "--max-pixels", "1000000"], capsys)  # fmt: skip
    assert code == EXIT_PARTIAL, err
    assert "Traceback" not in err
    for src in good:
        result = Image.open(out / (src.stem + src.suffix if src.suffix != ".tif" else src.name))
        upright = Image.open(src)
        w, h = upright.size
        assert result.size == ((h, w) if src.name == "exif_rotated.jpg" else (w, h)), src.name
    for src in broken:
        lines = [line for line in err.splitlines() if src.name in line]
        assert len(lines) == 1 and lines[0].count(src.name) == 1, (src.name, err)
        assert not list(out.glob(src.stem + ".*"))
    assert "bomb.png: 3000x3000 is 9 megapixels, over the limit" in err
    assert f"restyled {len(good)}, failed {len(broken)}" in err
    assert not list(out.rglob(".*"))  # no temporary files

    code, _ = _run(["apply", str(model), *map(str, broken), "-o", str(tmp_path / "o2"), "-q",
                    "--max-pixels", "1000000"], capsys)  # fmt: skip
    assert code == EXIT_USAGE  # nothing could be restyled
    code, _ = _run(["apply", str(model), *map(str, good[:2]), "-o", str(tmp_path / "o3"), "-q"],
                   capsys)  # fmt: skip
    assert code == EXIT_OK


@pytest.mark.parametrize("shape", [(1, 1), (1, 20000), (20000, 1), (3, 4), (5, 9)])
def test_tiny_and_sliver_photos_restyle_at_their_size(model: Path, shape: tuple[int, int]) -> None:
    from styleforge.infer.stylizer import Stylizer

    photo = torch.rand(1, 3, *shape)
    out = Stylizer.load(model, "cpu")(photo)
    assert out.shape == photo.shape and torch.isfinite(out).all()


def test_thin_edge_tiles_are_padded_too() -> None:
    from styleforge.infer.apply import stylize_array
    from styleforge.infer.settings import Settings

    seen: list[tuple[int, int]] = []

    def net(x: np.ndarray) -> np.ndarray:
        seen.append(x.shape[-2:])
        assert min(x.shape[-2:]) >= 5
        return 1 - x

    photo = np.random.default_rng(1).random((1, 3, 2, 201), dtype=np.float32)
    out = stylize_array(net, photo, Settings(tile=100, overlap=10))
    np.testing.assert_allclose(out, 1 - photo, atol=1e-6)  # padding cropped back exactly
    assert len(seen) > 1


# --- the other commands ---------------------------------------------------------------------


@pytest.mark.slow
def test_train_transfer_evaluate_use_the_good_and_report_the_broken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    styles = tmp_path / "styles"
    for i in range(3):
        write_image(styles / f"print{i}.png", size=(96, 80), seed=i)
    broken = make_broken(styles)
    model = str(tmp_path / "m.safetensors")
    code, err = _run(["train", str(styles), "-o", model, "--steps", "2", "--size", "32",
                      "--batch", "1", "-q", "--max-pixels", "1000000"], capsys)  # fmt: skip
    assert code == EXIT_OK, err  # fewer style images still give a model
    assert "3 usable images (5 skipped)" in err and "Traceback" not in err
    for src in broken:
        assert sum(src.name in line for line in err.splitlines()) == 1, (src.name, err)

    photos = tmp_path / "photos"
    write_image(photos / "a.png", seed=7)
    make_broken(photos)
    code, err = _run(["transfer", str(photos), "--style", str(styles / "print0.png"), "-o",
                      str(tmp_path / "t"), "--steps", "1", "--size", "32", "-q",
                      "--max-pixels", "1000000"], capsys)  # fmt: skip
    assert code == EXIT_PARTIAL and (tmp_path / "t" / "a.png").is_file(), err
    code, err = _run(["evaluate", str(photos), "--style", str(styles), "-o", str(tmp_path / "e"),
                      "--size", "32", "--max-pixels", "1000000"], capsys)  # fmt: skip
    assert code == EXIT_PARTIAL and (tmp_path / "e" / "report.html").is_file(), err


@pytest.mark.slow
def test_web_upload_keeps_the_good_kinds_and_says_why_for_the_broken(tmp_path: Path) -> None:
    from styleforge.app.store import Store
    from styleforge.app.ui import App
    from styleforge.app.worker import Worker

    files = [*make_good(tmp_path / "up"), *make_broken(tmp_path / "up")]
    store = Store(tmp_path / "data", max_upload_bytes=2**20)
    app = App(store, Worker(store, "cpu"))
    audit = app.create_style("mixed", files)
    assert "Traceback" not in audit
    for name in ("page.png", "notes.jpg", "empty.png", "truncated.jpg"):
        assert name in audit


# --- full disk ------------------------------------------------------------------------------


def _enospc_after(monkeypatch: pytest.MonkeyPatch, ok: int) -> None:
    """Every fsync after the first ``ok`` fails as on a full disk (delayed allocation)."""
    import styleforge.fileio as fileio

    calls = {"n": 0}
    real = os.fsync

    def fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] > ok:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    monkeypatch.setattr(fileio.os, "fsync", fsync)


@pytest.mark.slow
def test_full_disk_in_training_is_one_line_keeps_the_checkpoint_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    styles = tmp_path / "styles"
    for i in range(3):
        write_image(styles / f"print{i}.png", size=(96, 80), seed=i)
    run_dir = tmp_path / "m.run"
    argv = ["train", str(styles), "-o", str(tmp_path / "m.safetensors"), "--steps", "4",
            "--size", "32", "--batch", "1", "--checkpoint-every", "2", "--preview-every", "100",
            "-q"]  # fmt: skip
    import styleforge.train.checkpoint as checkpoint

    writes = {"n": 0}

    def second_write_finds_the_disk_full() -> None:
        writes["n"] += 1
        if writes["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "_pause_before_rename", second_write_finds_the_disk_full)
    code, err = _run(argv, capsys)
    assert code == EXIT_FAULT, err
    last = f"styleforge: error: {run_dir / 'checkpoint.pt'}: no space left on device"
    assert err.strip().splitlines()[-1] == last and "Traceback" not in err
    assert checkpoint.load_checkpoint(run_dir / "checkpoint.pt")["step"] == 2  # the old one
    assert not list(run_dir.rglob(".*"))  # no temporary file left
    monkeypatch.undo()
    code, err = _run([*argv, "--resume"], capsys)
    assert code == EXIT_OK, err
    assert (tmp_path / "m.safetensors").is_file()


def test_full_disk_in_apply_stops_with_one_line_and_no_partial_file(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from styleforge.infer.export import cached_export

    photos = [write_image(tmp_path / f"p{i}.png", seed=i) for i in range(3)]
    out = tmp_path / "out"
    monkeypatch.setenv("STYLEFORGE_CACHE_DIR", str(tmp_path / "cache"))
    cached_export(model)  # an earlier run exported it for onnxruntime (the CPU default)
    _enospc_after(monkeypatch, 1)
    code, err = _run(["apply", str(model), *map(str, photos), "-o", str(out), "-q"], capsys)
    assert code == EXIT_FAULT and err.count("no space left on device") == 1, err
    assert sorted(p.name for p in out.iterdir()) == ["p0.png"]  # no partial or hidden file


def test_apply_runs_when_the_cache_cannot_take_the_onnx_export(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """A user cache that cannot be written (here: its path runs through a file): the export is
    made for this run only, in a temporary folder, and the photo is restyled all the same."""
    photo = write_image(tmp_path / "p.png", seed=1)
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    monkeypatch.setenv("STYLEFORGE_CACHE_DIR", str(blocker / "cache"))
    out = tmp_path / "o.png"
    code, err = _run(["apply", str(model), str(photo), "-o", str(out), "-q"], capsys)
    assert code == 0 and out.is_file(), err
    assert blocker.read_text() == "x"


# --- kill -9 and resume; the same weights every time ----------------------------------------

PRINTS = ROOT / "src" / "styleforge" / "assets" / "hokusai_fuji"
STEPS = 12
_TRAIN = [sys.executable, "-m", "styleforge", "train", str(PRINTS),
          "--steps", str(STEPS), "--size", "32", "--batch", "2", "--checkpoint-every", "3",
          "--preview-every", "100", "-q", "--overwrite"]  # fmt: skip


def _train(out: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*_TRAIN, "-o", str(out), *extra], env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def _same(a: Path, b: Path) -> bool:
    x, y = _weights(a), _weights(b)
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def _rows(log: Path) -> int:
    try:
        return max(0, len(log.read_text().splitlines()) - 1)
    except OSError:
        return 0


def _kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 120
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "finished before the kill point"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_kill_9_anywhere_then_resume_gives_the_same_weights_and_one_log_row_per_step(
    tmp_path: Path,
) -> None:
    straight = tmp_path / "straight.safetensors"
    assert _train(straight).wait() == 0
    out = tmp_path / "killed.safetensors"
    run_dir = tmp_path / "killed.run"
    in_write = {"STYLEFORGE_TEST_CKPT_PAUSE": "30"}

    def writing() -> bool:  # the temporary checkpoint exists, the rename has not happened
        return bool(list(run_dir.glob(".checkpoint.*")))

    _kill_when(_train(out, env=in_write), writing)  # inside the very first checkpoint write
    assert not (run_dir / "checkpoint.pt").exists()
    _kill_when(_train(out), lambda: _rows(run_dir / "log.csv") >= 7)  # between checkpoints
    _kill_when(_train(out, "--resume", env=in_write), writing)  # inside a later write
    assert _train(out, "--resume").wait() == 0
    assert _same(straight, out)
    with open(run_dir / "log.csv", newline="") as fh:
        steps = [int(row["step"]) for row in csv.DictReader(fh)]
    assert steps == list(range(STEPS))
    events = sorted(run_dir.glob("events.out.tfevents.*"))
    logged = sorted(s for e in events for s, tag, _ in read_scalars(e) if tag == "loss/content")
    assert logged == list(range(STEPS))  # one curve: every step once across the event files
    assert not list(run_dir.glob(".*"))


@pytest.mark.slow
def test_same_seed_gives_the_same_weights_beside_a_busy_cpu(tmp_path: Path) -> None:
    quiet = tmp_path / "quiet.safetensors"
    assert _train(quiet).wait() == 0
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        busy = tmp_path / "busy.safetensors"
        assert _train(busy).wait() == 0
    finally:
        for hog in hogs:
            hog.kill()
    assert _same(quiet, busy)


def test_import_turns_on_reproducible_blas_unless_the_user_chose() -> None:
    code = "import os, styleforge; print(os.environ['MKL_CBWR'], os.environ['MKL_DYNAMIC'])"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MKL_")}
    got = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert got.stdout.split() == ["AUTO,STRICT", "FALSE"]
    env["MKL_CBWR"] = "AVX2"
    got = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert got.stdout.split() == ["AVX2", "FALSE"]


def test_training_does_not_depend_on_where_its_inputs_sit_in_memory() -> None:
    from styleforge.nets import DiscriminatorConfig
    from styleforge.train.config import StylizerTrainConfig
    from styleforge.train.stylizer import train_stylizer_loop

    config = StylizerTrainConfig(steps=3, size=32, batch=2, warmup=1, checkpoint_every=10,
                                 seed=3, net=StylizerConfig(width=4, n_res=1),
                         disc=DiscriminatorConfig(width=8, n_layers=2))  # fmt: skip
    gen = torch.Generator().manual_seed(0)
    photos = [torch.rand(1, 3, 40, 48, generator=gen) for _ in range(2)]
    styles = [torch.rand(1, 3, 40, 48, generator=gen) for _ in range(2)]

    def shifted(t: torch.Tensor, by: int) -> torch.Tensor:
        buf = torch.empty(t.numel() + by)
        view = buf[by:].view_as(t)
        view.copy_(t)
        return view

    runs = []
    for by in (0, 1, 3):
        moved = [shifted(p, by) for p in photos], [shifted(s, by) for s in styles]
        state = train_stylizer_loop(config, *moved, torch.device("cpu"))
        runs.append(state.generator.state_dict())
    for other in runs[1:]:
        assert all(torch.equal(runs[0][k], other[k]) for k in other)


# --- the web app on a network ---------------------------------------------------------------


def test_serve_refuses_a_network_host_without_a_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from styleforge.app import auth

    monkeypatch.delenv(auth.AUTH_ENV, raising=False)
    code, err = _run(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)], capsys)
    assert code == EXIT_USAGE and "--auth" in err and "--no-auth" in err
    assert auth.resolve_auth("127.0.0.1", None, False) is None
    assert auth.resolve_auth("::1", None, False) is None
    assert auth.resolve_auth("0.0.0.0", None, True) is None
    assert auth.resolve_auth("0.0.0.0", "ann:s3cret:x", False) == ("ann", "s3cret:x")
    login = tmp_path / "login"
    login.write_text("bob:pw\n")
    assert auth.resolve_auth("example.org", f"@{login}", False) == ("bob", "pw")
    monkeypatch.setenv(auth.AUTH_ENV, "eve:pw2")
    assert auth.resolve_auth("10.0.0.5", None, False) == ("eve", "pw2")
    for bad in ("nopassword", ":pw", "user:"):
        with pytest.raises(auth.UserError, match="USER:PASSWORD"):
            auth.resolve_auth("0.0.0.0", bad, False)


def test_serve_puts_its_login_in_front_of_gradio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from styleforge.app import ui

    seen: dict[str, object] = {}
    monkeypatch.setattr(ui, "run_server", lambda server: seen.update(config=server.config))
    code, _ = _run(["serve", "--host", "0.0.0.0", "--auth", "ann:pw", "--data-dir",
                    str(tmp_path)], capsys)  # fmt: skip
    config: Any = seen["config"]
    assert code == EXIT_OK and config.host == "0.0.0.0"
    paths = {getattr(r, "path", "") for r in config.app.routes}
    assert "/login" in paths  # the app's own login answers first


def test_wrong_passwords_in_a_row_wait_longer_and_longer() -> None:
    """Guessing is slowed (1, 2, 4 ... 30 s before a client's next guess is looked at, reset
    by the right one); the right login is never locked out for good; nothing sleeps."""
    from styleforge.app.auth import LoginGuard

    now = [0.0]
    guard = LoginGuard("ann", "s3cret", clock=lambda: now[0], burst=10_000,
                       log=lambda line: None)  # fmt: skip
    waits = []
    for i in range(7):
        verdict = guard.attempt("ann", f"guess{i}")
        waits.append(verdict.retry_after)
        now[0] += verdict.retry_after
    assert waits == [1, 2, 4, 8, 16, 30, 30]
    assert guard("ann", "s3cret") is True  # after its wait: in
    assert guard("bob", "s3cret") is False and guard.attempt("ann", "x").retry_after == 1
    now[0] += 1
    assert guard("ann", "S3cret") is False
    for _ in range(2000):  # a long siege: still bounded, no overflow
        now[0] += 30
        guard("ann", "x")
    now[0] += 30
    assert guard("ann", "s3cret") is True


@pytest.mark.slow
def test_web_job_that_fills_the_disk_says_so_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import styleforge.train.job as job_shell
    from styleforge.app.store import Store
    from styleforge.app.ui import App
    from styleforge.app.worker import Worker
    from styleforge.errors import DiskFull

    store = Store(tmp_path / "data", max_upload_bytes=2**20)
    worker = Worker(store, "cpu")  # not started: jobs are run here, one call each
    app = App(store, worker)
    app.create_style("s", [write_image(tmp_path / f"p{i}.png", (96, 80), seed=i) for i in range(3)])
    job = store.create_job(store.styles()[0].id, "stylizer", "quick", 3)

    def full(path: Path, *args: object) -> None:
        raise DiskFull(f"{path}: no space left on device")

    monkeypatch.setattr(job_shell, "write_model", full)
    worker._run(store.job(job.id))
    failed = store.job(job.id)
    assert failed.status == "interrupted" and "no space left on device" in failed.message
    assert failed.resumable
    monkeypatch.undo()
    worker.resume(job.id)
    worker._run(store.job(job.id))
    done = store.job(job.id)
    assert done.status == "done" and Path(str(done.model)).is_file()
