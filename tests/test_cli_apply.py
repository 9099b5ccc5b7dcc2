"""``styleforge apply`` under torchrun picks each process's device and process group the way
training does (issue #16: with ``--device auto`` every process used to land on ``cuda:0``).

No GPU is needed: CUDA is reported present, the process group is not joined, and the network
is an identity, so what is checked is only which device and backend each process asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from styleforge.cli import main
from styleforge.distributed import World
from styleforge.infer import backends
from tests.conftest import write_image


@pytest.mark.parametrize(
    ("flag", "rank", "device", "group"),
    [
        ("auto", 0, "cuda:0", "cpu:gloo,cuda:nccl"),
        ("auto", 1, "cuda:1", "cpu:gloo,cuda:nccl"),
        ("cuda", 1, "cuda:1", "cpu:gloo,cuda:nccl"),
        ("cpu", 1, "cpu", "gloo"),
    ],
)
def test_sharded_apply_puts_each_process_on_its_own_gpu(
    flag: str, rank: int, device: str, group: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    for name, value in {"RANK": rank, "LOCAL_RANK": rank, "WORLD_SIZE": 2,
                        "LOCAL_WORLD_SIZE": 2}.items():  # fmt: skip
        monkeypatch.setenv(name, str(value))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    asked: dict[str, Any] = {}
    monkeypatch.setattr(World, "init", lambda self, backend="gloo": asked.update(group=backend))
    monkeypatch.setattr(World, "gather", lambda self, value: [value, value])

    def identity(model: Path, dev: str) -> backends.RunBatch:
        asked["device"] = dev
        return lambda x: np.asarray(x, dtype=np.float32)

    monkeypatch.setattr(backends, "torch_backend", identity)
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"\0" * 16)  # never opened: the backend is the identity above
    photos = [write_image(tmp_path / "in" / f"p{i}.png", size=(24, 20), seed=i) for i in range(2)]
    out = tmp_path / "out"
    argv = ["apply", str(model), str(tmp_path / "in"), "-o", str(out), "--device", flag, "-q"]
    assert main(argv) == 0, capsys.readouterr().err
    assert asked == {"device": device, "group": group}
    assert sorted(p.name for p in out.iterdir()) == [photos[rank].name]  # its share only
    summary = [line for line in capsys.readouterr().err.splitlines() if "processes" in line]
    assert summary == (["restyled 2 with 2 processes (rank 0: 1, rank 1: 1)"] if rank == 0 else [])
