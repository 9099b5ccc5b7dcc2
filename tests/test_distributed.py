"""Under torchrun: sharded apply over a folder (2 CPU processes, gloo)."""

from __future__ import annotations

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


def test_training_under_torchrun_is_refused_clearly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from styleforge.cli import main

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    for command in ("train", "train-sampler"):
        code = main([command, str(tmp_path), "-o", str(tmp_path / "m.safetensors")])
        assert code == 2
        assert "not supported yet" in capsys.readouterr().err
