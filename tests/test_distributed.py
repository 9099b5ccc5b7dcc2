"""Under torchrun (2 CPU processes, gloo): data-parallel training and sharded apply."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from styleforge.distributed import World, shard, world
from styleforge.infer.model_file import ModelInfo, write_model
from styleforge.nets import StylizerConfig, StylizerNet

from .conftest import write_image

TORCHRUN = Path(sys.executable).with_name("torchrun")


def test_shards_are_disjoint_and_cover_everything() -> None:
    items = list(range(11))
    parts = [shard(items, World(rank=r, size=3)) for r in range(3)]
    assert sorted(x for p in parts for x in p) == items
    assert parts[0] == [0, 3, 6, 9]
    assert shard(items, World()) == items


def test_world_reads_torchrun_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    w = world()
    assert (w.rank, w.size, w.distributed, w.is_main) == (1, 2, True, False)
    monkeypatch.delenv("WORLD_SIZE")
    assert not world().distributed


@pytest.mark.slow
def test_sharded_apply_writes_every_output_exactly_once(tmp_path: Path) -> None:
    net = StylizerConfig(width=4, n_res=1)
    torch.manual_seed(0)
    model = write_model(tmp_path / "m.safetensors", StylizerNet(net).state_dict(), ModelInfo(net))
    photos = tmp_path / "photos"
    for i in range(5):
        write_image(photos / ("sub" if i % 2 else "") / f"p{i}.jpg", size=(48, 40), seed=i)
    out = tmp_path / "out"
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", "-m", "styleforge", "apply",
           str(model), str(photos), "-o", str(out), "--device", "cpu", "-q"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg"))
    assert written == ["p0.jpg", "p2.jpg", "p4.jpg", "sub/p1.jpg", "sub/p3.jpg"]
    summaries = [line for line in first.stderr.splitlines() if "with 2 processes" in line]
    assert summaries == ["restyled 5 with 2 processes (rank 0: 3, rank 1: 2)"]

    # After a crash some outputs are missing: a re-run does only those.
    (out / "p2.jpg").unlink()
    (out / "sub" / "p3.jpg").unlink()
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "restyled 2, skipped 3 (output exists) with 2 processes" in again.stderr
    assert len(list(out.rglob("*.jpg"))) == 5


# ------------------------------------------------------------------ data-parallel training

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _torchrun(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=timeout, cwd=REPO)


def _job(kind: str, out: Path, steps: int, resume: bool = False) -> dict[str, torch.Tensor]:
    """The tiny job of ``tests/ddp_job.py`` as 2 processes; process 0's final weights."""
    args = ["-m", "tests.ddp_job", kind, str(out), str(steps), *(["--resume"] if resume else [])]
    done = _torchrun(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(out / "final.pt", weights_only=True)


def _outputs(kind: str, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What the trained networks compute on fixed inputs (G, EMA and D)."""
    from styleforge.nets import PatchDiscriminator, StylizerNet
    from styleforge.nets.sampler import SamplerDiscriminator, SamplerGenerator

    from . import ddp_job

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) + 1 :]: v for k, v in weights.items() if k.startswith(prefix + ".")}

    g = torch.Generator().manual_seed(7)
    if kind == "sampler":
        cfg = ddp_job.sampler_config(1)
        nets = {n: SamplerGenerator(cfg.net) for n in ("generator", "ema")}
        nets["disc"] = SamplerDiscriminator(cfg.net)
        inputs = {"generator": torch.randn(3, cfg.net.latent_dim, generator=g)}
        inputs["disc"] = torch.rand(3, 3, 64, 64, generator=g)
    else:
        scfg = ddp_job.stylizer_config(1)
        nets = {n: StylizerNet(scfg.net) for n in ("generator", "ema")}
        nets["disc"] = PatchDiscriminator(scfg.disc)
        inputs = {"generator": torch.rand(2, 3, 32, 32, generator=g)}
        inputs["disc"] = torch.rand(2, 3, 32, 32, generator=g)
    inputs["ema"] = inputs["generator"]
    out = {}
    for name, net in nets.items():
        net.double().load_state_dict(part(name))
        with torch.no_grad():
            out[name] = net.eval()(inputs[name].double())
    return out


def _assert_same(kind: str, a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    # Outputs, not weights: a few weights have an exactly-zero true gradient (a norm's bias
    # followed by another norm), where Adam turns float rounding into full-size steps that
    # change nothing the network computes.
    # The jobs run in float64, where the same maths agrees to ~1e-12 on any CPU; 1e-8 still
    # fails a real break of equivalence (a wrong share of the batch, a missed all-reduce).
    oa, ob = _outputs(kind, a), _outputs(kind, b)
    for name in oa:
        assert oa[name].dtype == torch.float64
        torch.testing.assert_close(oa[name], ob[name], rtol=1e-8, atol=1e-8, msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sampler", "stylizer"])
def test_ddp_steps_equal_one_process_with_the_whole_batch_and_resume_across_counts(
    kind: str, tmp_path: Path
) -> None:
    from . import ddp_job

    one = World()
    reference = ddp_job.run(kind, tmp_path / "one", 4, False, one)
    early = ddp_job.run(kind, tmp_path / "early", 1, False, one)
    # Sanity: the comparison sees what 3 more steps change.
    with pytest.raises(AssertionError):
        _assert_same(kind, reference, early)

    # 2 processes with half the batch each = 1 process with the whole batch.
    _assert_same(kind, reference, _job(kind, tmp_path / "two", 4))

    # Checkpoint from 2 processes, resumed by 1; and from 1, resumed by 2.
    _job(kind, tmp_path / "two-then-one", 2)
    _assert_same(kind, reference, ddp_job.run(kind, tmp_path / "two-then-one", 4, True, one))
    ddp_job.run(kind, tmp_path / "one-then-two", 2, False, one)
    _assert_same(kind, reference, _job(kind, tmp_path / "one-then-two", 4, resume=True))


def _descendants(pid: int) -> list[int]:
    """PIDs of the processes below ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _rank_of(pid: int) -> int | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    ranks = [int(e[5:]) for e in env if e.startswith(b"RANK=")]
    return ranks[0] if ranks else None


@pytest.mark.slow
def test_killed_ddp_training_stops_clearly_and_resumes_from_its_checkpoint(
    tmp_path: Path,
) -> None:
    import signal
    import time

    from styleforge.train.checkpoint import load_checkpoint

    style = tmp_path / "style"
    for i in range(4):
        write_image(style / f"s{i}.png", size=(72, 72), seed=i)
    model = tmp_path / "s.safetensors"
    ckpt = tmp_path / "s.run" / "checkpoint.pt"
    args = ["-m", "styleforge", "train-sampler", str(style), "-o", str(model), "--batch", "4",
            "--checkpoint-every", "2", "--kid-every", "1000", "--style-weight", "0",
            "--stage-steps", "0", "--device", "cpu", "-q"]  # fmt: skip
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", *args, "--steps", "500"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV, cwd=REPO)  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert ckpt.exists(), "no checkpoint appeared"
        victim = [p for p in _descendants(proc.pid) if _rank_of(p) == 1]
        assert victim, "rank 1 not found"
        os.kill(victim[0], signal.SIGKILL)  # a process dies mid-run (a crash, an OOM kill)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    # It says so itself, or (stuck in a collective past the grace) its watchdog does.
    said = "lost the others" in err or "was stopped by torchrun" in err
    assert said and "--resume" in err, err[-3000:]
    saved = load_checkpoint(ckpt)  # intact
    assert saved["step"] >= 2 and saved["step"] % 2 == 0
    assert not model.exists()

    # Resume from it (any number of processes: here 2 again) and finish.
    resumed = _torchrun(*args, "--steps", str(saved["step"] + 3), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert model.exists()
    steps = [int(float(line.split(",")[0])) for line in
             (tmp_path / "s.run" / "log.csv").read_text().splitlines()[1:]]  # fmt: skip
    assert steps == list(range(saved["step"] + 3))


def test_a_batch_must_split_evenly() -> None:
    from styleforge.errors import UserError

    assert World(rank=1, size=2).rows(8) == slice(4, 8)
    assert World().rows(5) == slice(0, 5)
    with pytest.raises(UserError, match="multiple of 3"):
        World(rank=0, size=3).rows(8)


def test_one_process_helpers_are_pass_through() -> None:
    w = World()
    assert w.mean({"a": 1.5}) == {"a": 1.5}
    assert w.any(True) and not w.any(False)
    assert w.on_main(lambda: 3) == 3
    assert w.broadcast("x") == "x"
    net = torch.nn.Linear(2, 2)
    assert w.wrap(net, torch.device("cpu")) is net


def test_lost_processes_become_one_clear_error(tmp_path: Path) -> None:
    from styleforge.errors import JobFailed
    from styleforge.train.job import peers_watched

    lost = pytest.raises(
        JobFailed,
        match=r"process 1 of 2 lost the others \(Connection closed by peer \[127.0.0.1\]:1234\);",
    )
    with lost, peers_watched(World(rank=1, size=2), tmp_path, grace=None):
        raise RuntimeError(
            "[/src/gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:1234. "
            "This is typically caused by a remote worker crashing.\nmore detail"
        )
    # One process: a bug stays a bug.
    with pytest.raises(RuntimeError, match="plain"), peers_watched(World(), tmp_path):
        raise RuntimeError("plain")


_STUCK = """
import sys, threading
from pathlib import Path
from styleforge.distributed import World
from styleforge.train.job import peers_watched
from styleforge.train.loop import StopRequest

stop = StopRequest()
with peers_watched(World(rank=1, size=2), Path(sys.argv[1]), grace=1.0), stop.installed():
    print("ready", flush=True)
    if sys.argv[2] == "stuck":
        threading.Event().wait(120)  # as stuck as a collective whose peer died
    while not stop.requested:  # a step that ends, then the stop
        threading.Event().wait(0.05)
threading.Event().wait(2.0)  # past the grace: the watchdog is gone
print("ended by itself", flush=True)
"""


def _sigterm_after_ready(tmp_path: Path, mode: str) -> tuple[int, str, str, float]:
    """Run :data:`_STUCK` in ``mode``, send SIGTERM once it is ready: (code, out, err, s)."""
    import signal
    import time

    cmd = [sys.executable, "-c", _STUCK, str(tmp_path / "x.run"), mode]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, out, err, time.monotonic() - start


def test_a_process_stuck_after_torchruns_sigterm_is_ended_with_one_clear_line(
    tmp_path: Path,
) -> None:
    code, out, err, seconds = _sigterm_after_ready(tmp_path, "stuck")
    assert code == 1 and "ended by itself" not in out
    assert seconds < 30  # before torchrun's SIGKILL
    lines = [line for line in err.splitlines() if line.startswith("styleforge: error:")]
    assert len(lines) == 1 and "process 1 of 2 was stopped by torchrun" in lines[0], err
    assert "x.run is intact: run the same command with --resume" in lines[0]


def test_a_process_that_stops_in_time_after_sigterm_is_left_alone(tmp_path: Path) -> None:
    code, out, err, _ = _sigterm_after_ready(tmp_path, "ends")
    assert code == 0 and "ended by itself" in out, err
    assert "styleforge: error" not in err


def test_the_watchdog_leaves_nothing_behind_when_the_block_ends(tmp_path: Path) -> None:
    import signal
    import threading

    from styleforge.train.job import peers_watched

    before = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(before)
    for raised in (None, KeyboardInterrupt):
        expect = pytest.raises(KeyboardInterrupt) if raised else contextlib.nullcontext()
        with expect, peers_watched(World(rank=0, size=2), tmp_path):
            assert any(t.name == "styleforge-watchdog" for t in threading.enumerate())
            if raised:
                raise raised
        assert not any(t.name == "styleforge-watchdog" for t in threading.enumerate())
        assert signal.set_wakeup_fd(before) == before


def test_a_share_of_a_batch_is_cropped_and_augmented_as_in_the_whole_batch() -> None:
    from styleforge.train.augment import diff_augment
    from styleforge.train.data import random_crops

    pool = [torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    whole_gen, part_gen = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    whole = diff_augment(random_crops(pool, 6, 32, whole_gen), generator=whole_gen)
    rows = World(rank=1, size=3).rows(6)
    part = diff_augment(random_crops(pool, 6, 32, part_gen, keep=rows), generator=part_gen,
                        rows=rows, of=6)  # fmt: skip
    torch.testing.assert_close(part, whole[rows])
    assert whole_gen.get_state().equal(part_gen.get_state())  # the processes stay in step


@pytest.mark.slow
def test_a_user_mistake_under_torchrun_is_one_line(tmp_path: Path) -> None:
    write_image(tmp_path / "style" / "a.png")
    model = str(tmp_path / "m.safetensors")
    done = _torchrun("-m", "styleforge", "train", str(tmp_path / "style"), "-o", model,
                     "--batch", "3", "--device", "cpu")  # fmt: skip
    assert done.returncode != 0
    ours = [line for line in done.stderr.splitlines() if line.startswith("styleforge: error:")]
    assert ours == [
        "styleforge: error: a batch of 3 does not split evenly across 2 processes; pass a "
        "--batch that is a multiple of 2"
    ]
    assert not (tmp_path / "m.run").exists()
