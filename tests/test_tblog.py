"""TensorBoard event files: CRC32C, round trip, corruption, and TensorBoard's own reader."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest

from styleforge.tblog import EventWriter, crc32c, masked_crc32c, read_scalars


def _write_sample(logdir: Path) -> Path:
    """An event file with two scalars at steps 0, 10, 20 (step 10 adds a third tag)."""
    with EventWriter(logdir) as writer:
        writer.add_scalars(0, {"loss": 1.5, "lr": 1e-3}, wall_time=1000.0)
        writer.add_scalars(10, {"loss": 0.123456789, "lr": 1e-3, "extra": -2})
        writer.add_scalars(20, {"loss": 0.1, "lr": 5e-4})
    return writer.path


def test_crc32c_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0
    assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4 test vector
    crc = crc32c(b"123456789")
    assert masked_crc32c(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) % 2**32


def test_file_name_and_round_trip(tmp_path: Path) -> None:
    path = _write_sample(tmp_path / "run")
    assert path.parent == tmp_path / "run"
    assert path.name.startswith("events.out.tfevents.")
    assert path.name.endswith(".styleforge")
    f32 = lambda v: float(np.float32(v))  # noqa: E731
    assert read_scalars(path) == [
        (0, "loss", 1.5),
        (0, "lr", f32(1e-3)),
        (10, "loss", f32(0.123456789)),
        (10, "lr", f32(1e-3)),
        (10, "extra", -2.0),
        (20, "loss", f32(0.1)),
        (20, "lr", f32(5e-4)),
    ]


def test_non_finite_values_and_large_steps(tmp_path: Path) -> None:
    with EventWriter(tmp_path) as writer:
        writer.add_scalars(2**40, {"nan": math.nan, "inf": math.inf, "ninf": -math.inf})
        writer.add_scalars(-3, {"huge": 1e300})
    rows = read_scalars(writer.path)
    assert [(s, t) for s, t, _ in rows] == [
        (2**40, "nan"),
        (2**40, "inf"),
        (2**40, "ninf"),
        (-3, "huge"),
    ]
    values = [v for _, _, v in rows]
    assert math.isnan(values[0])
    assert values[1:] == [math.inf, -math.inf, math.inf]


def test_flushed_before_close_and_closed_writer(tmp_path: Path) -> None:
    writer = EventWriter(tmp_path)
    writer.add_scalars(1, {"a": 1.0})
    assert read_scalars(writer.path) == [(1, "a", 1.0)]  # visible without close()
    writer.close()
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.add_scalars(2, {"a": 2.0})


def test_first_record_holds_file_version(tmp_path: Path) -> None:
    with EventWriter(tmp_path) as writer:
        pass
    data = writer.path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    assert len(data) == 8 + 4 + length + 4
    assert b"brain.Event:2" in data[12 : 12 + length]
    assert read_scalars(writer.path) == []


def test_corruption_and_truncation_raise(tmp_path: Path) -> None:
    path = _write_sample(tmp_path)
    data = path.read_bytes()
    bad = tmp_path / "bad"
    for pos in (3, 9, 20, len(data) // 2, len(data) - 1):
        corrupted = bytearray(data)
        corrupted[pos] ^= 0x40
        bad.write_bytes(bytes(corrupted))
        with pytest.raises(ValueError, match="CRC"):
            read_scalars(bad)
    for cut in (1, 5, 13):
        bad.write_bytes(data[:-cut])
        with pytest.raises(ValueError, match="truncated"):
            read_scalars(bad)


def test_tensorboard_reads_the_same_scalars(tmp_path: Path) -> None:
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    path = _write_sample(tmp_path)
    acc = accumulator.EventAccumulator(str(tmp_path))
    acc.Reload()
    assert sorted(acc.Tags()["scalars"]) == ["extra", "loss", "lr"]
    ours: dict[str, list[tuple[int, float]]] = {}
    for step, tag, value in read_scalars(path):
        ours.setdefault(tag, []).append((step, value))
    for tag, expected in ours.items():
        events = acc.Scalars(tag)
        assert [(e.step, e.value) for e in events] == expected
    assert acc.Scalars("loss")[0].wall_time == 1000.0
