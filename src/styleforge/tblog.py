"""TensorBoard event files for scalars, written with tensorboardX (and a minimal reader).

An event file is a TFRecord stream of ``Event`` protobufs; tensorboardX's ``RecordWriter`` does
the framing and the CRC32C checksums, its ``Event``/``Summary`` classes the encoding. Reading
back (to drop the steps a resumed run trains again, and in tests) parses the same framing and
decodes with the same classes; TensorBoard itself is not needed.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType

from google.protobuf.message import DecodeError
from tensorboardX.proto.event_pb2 import Event
from tensorboardX.proto.summary_pb2 import Summary
from tensorboardX.record_writer import RecordWriter, masked_crc32c

from styleforge.fileio import atomic_write, disk_full_names

__all__ = ["EventWriter", "drop_steps_from", "read_events", "read_scalars"]

_FILE_VERSION = "brain.Event:2"


def _fresh_path(logdir: Path, now: float) -> Path:
    """``logdir/events.out.tfevents.{time}.{host}.styleforge``, numbered when taken (a writer
    reopened within the same second must not overwrite the file it just closed)."""
    base = f"events.out.tfevents.{int(now)}.{socket.gethostname()}.styleforge"
    path, n = logdir / base, 0
    while path.exists():
        n += 1
        path = logdir / f"{base}.{n}"
    return path


class EventWriter:
    """Writes scalar events to a new event file in ``logdir`` (see :func:`_fresh_path`).

    Every ``add_scalars`` is flushed at once, so a reader sees everything written up to a
    crash. Use as a context manager or call ``close()``.
    """

    def __init__(self, logdir: Path) -> None:
        logdir = Path(logdir)
        logdir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        self.path = _fresh_path(logdir, now)
        with disk_full_names(self.path):
            self._records: RecordWriter | None = RecordWriter(str(self.path))
        self._write(Event(wall_time=now, step=0, file_version=_FILE_VERSION))

    def _write(self, event: Event) -> None:
        if self._records is None:
            raise ValueError(f"EventWriter for {self.path} is closed")
        with disk_full_names(self.path):
            self._records.write(event.SerializeToString())
            self._records.flush()

    def add_scalars(
        self, step: int, values: Mapping[str, float], wall_time: float | None = None
    ) -> None:
        """Write one event at ``step`` holding every ``tag: value`` (stored as float32; finite
        values beyond its range become ±inf)."""
        if not -(1 << 63) <= step < 1 << 63:
            raise ValueError(f"step {step} does not fit an int64")
        summary = Summary(
            value=[Summary.Value(tag=tag, simple_value=float(v)) for tag, v in values.items()]
        )
        now = time.time() if wall_time is None else wall_time
        self._write(Event(wall_time=now, step=step, summary=summary))

    def flush(self) -> None:
        """Push written records to disk (``add_scalars`` already does so)."""
        if self._records is not None:
            with disk_full_names(self.path):
                self._records.flush()

    def close(self) -> None:
        """Flush and close the file; closing twice is harmless."""
        if self._records is not None:
            self.flush()
            self._records.close()
            self._records = None

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _records(data: bytes) -> Iterator[bytes]:
    """Payloads of the TFRecords in ``data`` (uint64 LE length, masked CRC32C of those 8
    bytes, payload, masked CRC32C of the payload), both checksums checked.

    Raises ValueError on a checksum mismatch or a truncated record."""
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


def _event(payload: bytes) -> Event:
    try:
        return Event.FromString(payload)
    except DecodeError as err:
        raise ValueError(f"malformed Event protobuf ({err})") from err


def read_events(path: Path) -> list[Event]:
    """Every ``Event`` of an event file, in file order (the first holds the file version).

    Raises ValueError on a CRC mismatch, a truncated record or a malformed message.
    """
    return [_event(payload) for payload in _records(Path(path).read_bytes())]


def read_scalars(path: Path) -> list[tuple[int, str, float]]:
    """(step, tag, value) of every simple value in an event file, in file order.

    Raises ValueError like :func:`read_events`.
    """
    return [
        (event.step, value.tag, value.simple_value)
        for event in read_events(path)
        for value in event.summary.value
        if value.HasField("simple_value")
    ]


def drop_steps_from(logdir: Path, step: int) -> None:
    """Remove the scalar events of ``step`` and later from the event files in ``logdir``.

    A resumed run (or one rolled back after a NaN) trains those steps again and logs them anew:
    without this TensorBoard would draw two overlapping curves. A torn last record (the process
    was killed while writing it) goes too. A file left with no scalars is deleted; the others
    are rewritten atomically.
    """
    for path in sorted(Path(logdir).glob("events.out.tfevents.*")):
        kept: list[bytes] = []
        scalars = dropped = 0
        try:
            for payload in _records(path.read_bytes()):
                event = _event(payload)
                has_summary = event.HasField("summary")
                if has_summary and event.step >= step:
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
                records = RecordWriter(str(tmp))
                for payload in kept:
                    records.write(payload)
                records.close()
