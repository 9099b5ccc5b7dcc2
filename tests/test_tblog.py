"""TensorBoard event files: round trip, corruption, and an independent TFRecord reader."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest
from tensorboardX.proto.event_pb2 import Event

from styleforge.tblog import EventWriter, drop_steps_from, read_events, read_scalars


def _write_sample(logdir: Path) -> Path:
    """An event file with two scalars at steps 0, 10, 20 (step 10 adds a third tag)."""
    with EventWriter(logdir) as writer:
        writer.add_scalars(0, {"loss": 1.5, "lr": 1e-3}, wall_time=1000.0)
        writer.add_scalars(10, {"loss": 0.123456789, "lr": 1e-3, "extra": -2})
        writer.add_scalars(20, {"loss": 0.1, "lr": 5e-4})
    return writer.path


def _crc32c(data: bytes) -> int:
    """Bitwise reference CRC32C (Castagnoli, reflected polynomial 0x82F63B78)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def _masked(data: bytes) -> int:
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) % 2**32


def _tfrecords(path: Path) -> list[bytes]:
    """The payloads of a TFRecord file, read as TensorBoard does, every checksum asserted."""
    data, pos, payloads = path.read_bytes(), 0, []
    while pos < len(data):
        (length,) = struct.unpack("<Q", data[pos : pos + 8])
        assert struct.unpack("<I", data[pos + 8 : pos + 12])[0] == _masked(data[pos : pos + 8])
        payload = data[pos + 12 : pos + 12 + length]
        end = pos + 12 + length
        assert struct.unpack("<I", data[end : end + 4])[0] == _masked(payload)
        payloads.append(payload)
        pos = end + 4
    return payloads


def test_reference_crc32c_check_values() -> None:
    assert _crc32c(b"123456789") == 0xE3069283
    assert _crc32c(b"") == 0
    assert _crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4 test vector


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


def test_independent_reader_sees_the_same_scalars(tmp_path: Path) -> None:
    path = _write_sample(tmp_path)
    events = [Event.FromString(p) for p in _tfrecords(path)]
    assert events[0].file_version == "brain.Event:2"
    theirs = [(e.step, v.tag, v.simple_value) for e in events[1:] for v in e.summary.value]
    assert theirs == read_scalars(path)
    assert len(theirs) == 7
    assert events[1].wall_time == 1000.0
    assert [e.step for e in read_events(path)] == [0, 0, 10, 20]


def test_reopened_writer_in_the_same_second_keeps_the_first_file(tmp_path: Path) -> None:
    with EventWriter(tmp_path) as first:
        first.add_scalars(1, {"a": 1.0})
    with EventWriter(tmp_path) as second:
        second.add_scalars(2, {"a": 2.0})
    assert first.path != second.path
    assert read_scalars(first.path) == [(1, "a", 1.0)]
    assert read_scalars(second.path) == [(2, "a", 2.0)]


def test_drop_steps_from_rewrites_deletes_and_cuts_torn_tails(tmp_path: Path) -> None:
    path = _write_sample(tmp_path / "run")
    drop_steps_from(tmp_path / "run", 10)
    assert read_scalars(path) == [(0, "loss", 1.5), (0, "lr", float(np.float32(1e-3)))]
    _tfrecords(path)  # the rewritten file is framed and checksummed as TensorBoard expects
    path.write_bytes(path.read_bytes() + b"\x05torn")
    drop_steps_from(tmp_path / "run", 10)
    assert len(read_scalars(path)) == 2
    drop_steps_from(tmp_path / "run", 0)
    assert not path.exists()
