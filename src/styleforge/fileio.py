"""Atomic file writes: nothing the user made is ever left half-written.

Every file styleforge writes (images, reports, checkpoints, the weight cache) goes through
:func:`atomic_write`: a hidden temporary file in the target's folder, flushed to disk, given the
permissions a plainly created file would have, then renamed over the target.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from styleforge.errors import DiskFull

#: errno values that mean "no room to write": the disk or the user's quota is full.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _read_umask()


@contextlib.contextmanager
def atomic_write(target: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``target``, on any error it is
    removed and ``target`` is left as it was. Parent folders are created."""
    with disk_full_names(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = (target.stat().st_mode & 0o777) if target.exists() else (0o666 & ~UMASK)
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        with disk_full_names(target):
            yield tmp
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def disk_full_names(path: Path) -> Iterator[None]:
    """Turn an ``OSError`` that says the disk (or quota) is full into :class:`DiskFull`
    naming ``path``; other errors pass through unchanged."""
    try:
        yield
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise DiskFull(f"{path}: no space left on device") from exc
        raise


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir() -> Path:
    """The user cache directory (``$STYLEFORGE_CACHE_DIR`` overrides the platform default)."""
    env = os.environ.get("STYLEFORGE_CACHE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("styleforge"))


def json_safe(value: Any) -> Any:
    """``value`` with inf/nan as strings and paths as text, ready for ``json.dumps``."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no inf/nan
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    with atomic_write(path, ".tmp") as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_json(path: Path, data: Mapping[str, Any]) -> Path:
    """JSON written atomically; inf/nan become strings so any JSON reader accepts the file."""
    return write_text_atomic(path, json.dumps(json_safe(data), indent=2) + "\n")


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file with a header (a training run's ``log.csv``), ``[]`` when it is
    missing; a torn last row (a crash mid-write) is kept, see :func:`row_step`."""
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def row_step(row: Mapping[str, str | None]) -> int | None:
    """The ``step`` of a log row, ``None`` when it has none (a torn row)."""
    try:
        return int(float(row["step"] or ""))
    except (KeyError, TypeError, ValueError):
        return None
