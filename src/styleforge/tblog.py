"""Dependency-free TensorBoard event files for scalars (writer, and a minimal reader).

An event file is a TFRecord stream: per record a uint64 LE length, the masked CRC32C of those
8 bytes, the data, and the masked CRC32C of the data. The data is a hand-encoded ``Event``
protobuf: 1 wall_time (double), 2 step (int64), 3 file_version (string), 5 summary
(``Summary``: repeated 1 ``Value``; ``Value``: 1 tag (string), 2 simple_value (float)).
"""

from __future__ import annotations

import math
import socket
import struct
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from styleforge.fileio import atomic_write, disk_full_names

__all__ = ["EventWriter", "crc32c", "drop_steps_from", "masked_crc32c", "read_scalars"]

_FILE_VERSION = "brain.Event:2"
_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF
_U64 = (1 << 64) - 1


def _crc32c_table() -> tuple[int, ...]:
    """The 256-entry table of reflected CRC32C (Castagnoli, polynomial 0x82F63B78)."""
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC32C (Castagnoli) of ``data``, as an unsigned 32-bit int."""
    crc = _U32
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ _U32


def masked_crc32c(data: bytes) -> int:
    """The TFRecord mask of ``crc32c(data)``: rotate right by 15, add 0xA282EAD8 (mod 2³²)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32


# --- protobuf encoding -------------------------------------------------------------------


def _varint(value: int) -> bytes:
    """Base-128 varint of ``value`` (negative ints as 64-bit two's complement)."""
    value &= _U64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint(field << 3 | wire_type)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + _varint(len(payload)) + payload


def _float32(value: float) -> bytes:
    """Little-endian float32 of ``value``; finite values beyond float32 range become ±inf."""
    try:
        return struct.pack("<f", value)
    except OverflowError:
        return struct.pack("<f", math.copysign(math.inf, value))


def _encode_event(
    wall_time: float,
    step: int,
    file_version: str | None = None,
    values: Mapping[str, float] | None = None,
) -> bytes:
    """Serialized ``Event`` holding ``file_version`` and/or a ``Summary`` of simple values."""
    data = _key(1, 1) + struct.pack("<d", wall_time) + _key(2, 0) + _varint(step)
    if file_version is not None:
        data += _length_delimited(3, file_version.encode())
    if values is not None:
        summary = b"".join(
            _length_delimited(
                1, _length_delimited(1, tag.encode()) + _key(2, 5) + _float32(float(value))
            )
            for tag, value in values.items()
        )
        data += _length_delimited(5, summary)
    return data


def _record(data: bytes) -> bytes:
    """One TFRecord framing ``data``."""
    header = struct.pack("<Q", len(data))
    return (
        header
        + struct.pack("<I", masked_crc32c(header))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


# --- writer ------------------------------------------------------------------------------


class EventWriter:
    """Appends scalar events to ``logdir/events.out.tfevents.{time}.{host}.styleforge``.

    Every ``add_scalars`` is flushed at once, so a reader sees everything written up to a
    crash. Use as a context manager or call ``close()``.
    """

    def __init__(self, logdir: Path) -> None:
        logdir = Path(logdir)
        logdir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        self.path = logdir / f"events.out.tfevents.{int(now)}.{socket.gethostname()}.styleforge"
        self._file: BinaryIO | None = open(self.path, "ab")  # noqa: SIM115 (closed in close())
        self._write(_encode_event(now, 0, file_version=_FILE_VERSION))

    def _write(self, data: bytes) -> None:
        if self._file is None:
            raise ValueError(f"EventWriter for {self.path} is closed")
        with disk_full_names(self.path):
            self._file.write(_record(data))
            self._file.flush()

    def add_scalars(
        self, step: int, values: Mapping[str, float], wall_time: float | None = None
    ) -> None:
        """Write one event at ``step`` holding every ``tag: value`` (stored as float32)."""
        if not -(1 << 63) <= step < 1 << 63:
            raise ValueError(f"step {step} does not fit an int64")
        if wall_time is None:
            wall_time = time.time()
        self._write(_encode_event(wall_time, step, values=values))

    def flush(self) -> None:
        """Push buffered bytes to the OS (``add_scalars`` already does so)."""
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Flush and close the file; closing twice is harmless."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --- reader ------------------------------------------------------------------------------


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the varint at ``pos``."""
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("malformed protobuf: bad varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value & _U64, pos


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field, wire type, value) of each field in a message; fixed-size values as raw bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        field, wire_type = key >> 3, key & 7
        value: int | bytes
        if wire_type == 0:
            value, pos = _read_varint(buf, pos)
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            value, pos = buf[pos : pos + size], pos + size
        elif wire_type == 2:
            size, pos = _read_varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise ValueError(f"malformed protobuf: wire type {wire_type}")
        if pos > len(buf):
            raise ValueError("malformed protobuf: truncated field")
        yield field, wire_type, value


def _records(data: bytes) -> Iterator[bytes]:
    """Payloads of the TFRecords in ``data``, both CRCs checked."""
    pos = 0
    while pos < len(data):
        if pos + 12 > len(data):
            raise ValueError(f"truncated record header at byte {pos}")
        header = data[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[pos + 8 : pos + 12])
        if header_crc != masked_crc32c(header):
            raise ValueError(f"length CRC mismatch at byte {pos}")
        start, end = pos + 12, pos + 12 + length
        if end + 4 > len(data):
            raise ValueError(f"truncated record at byte {pos}")
        payload = data[start:end]
        (data_crc,) = struct.unpack("<I", data[end : end + 4])
        if data_crc != masked_crc32c(payload):
            raise ValueError(f"data CRC mismatch at byte {pos}")
        yield payload
        pos = end + 4


def _event_step(payload: bytes) -> tuple[int, bool]:
    """(step, whether it holds a summary) of a serialized ``Event``."""
    step, has_summary = 0, False
    for field, wire_type, value in _fields(payload):
        if field == 2 and wire_type == 0 and isinstance(value, int):
            step = value - (1 << 64) if value >> 63 else value
        elif field == 5 and wire_type == 2:
            has_summary = True
    return step, has_summary


def drop_steps_from(logdir: Path, step: int) -> None:
    """Remove the scalar events of ``step`` and later from the event files in ``logdir``.

    A resumed run (or one rolled back after a NaN) trains those steps again and logs them anew:
    without this TensorBoard would draw two overlapping curves. A torn last record (the process
    was killed while writing it) goes too. A file left with no scalars is deleted; the others
    are rewritten atomically.
    """
    for path in sorted(Path(logdir).glob("events.out.tfevents.*")):
        data = path.read_bytes()
        kept: list[bytes] = []
        scalars = dropped = 0
        try:
            for payload in _records(data):
                at, has_summary = _event_step(payload)
                if has_summary and at >= step:
                    dropped += 1
                    continue
                scalars += has_summary
                kept.append(payload)
        except ValueError:  # a torn tail: keep what came before it
            dropped += 1
        if not scalars:
            path.unlink()
        elif dropped:
            with atomic_write(path) as tmp:
                tmp.write_bytes(b"".join(_record(p) for p in kept))


def read_scalars(path: Path) -> list[tuple[int, str, float]]:
    """(step, tag, value) of every simple value in an event file, in file order.

    Raises ValueError on a CRC mismatch, a truncated record or a malformed message.
    """
    scalars: list[tuple[int, str, float]] = []
    for payload in _records(Path(path).read_bytes()):
        step = 0
        summaries: list[bytes] = []
        for field, wire_type, value in _fields(payload):
            if field == 2 and wire_type == 0 and isinstance(value, int):
                step = value - (1 << 64) if value >> 63 else value
            elif field == 5 and wire_type == 2 and isinstance(value, bytes):
                summaries.append(value)
        for summary in summaries:
            for field, wire_type, value in _fields(summary):
                if field != 1 or wire_type != 2 or not isinstance(value, bytes):
                    continue
                tag: str | None = None
                simple: float | None = None
                for vfield, vwire, vvalue in _fields(value):
                    if vfield == 1 and vwire == 2 and isinstance(vvalue, bytes):
                        tag = vvalue.decode()
                    elif vfield == 2 and vwire == 5 and isinstance(vvalue, bytes):
                        (simple,) = struct.unpack("<f", vvalue)
                if tag is not None and simple is not None:
                    scalars.append((step, tag, simple))
    return scalars
