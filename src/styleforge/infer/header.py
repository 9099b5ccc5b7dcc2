"""The header of a safetensors model file, read and rewritten without torch: what ``apply``
on onnxruntime and ``tune``'s taste need (a model's metadata), with the tensors' bytes left as
they are.

A safetensors file is an 8-byte little-endian header length, the JSON header (tensor names,
dtypes, shapes, byte offsets into the data, and ``__metadata__``: string to string), then the
data; offsets count from the data's start, so a header of another length keeps them valid.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from styleforge.errors import UserError
from styleforge.fileio import atomic_write

__all__ = ["MODEL_FORMAT", "read_header", "rewrite_metadata"]

#: The ``format`` metadata entry of a stylizer model file.
MODEL_FORMAT = "styleforge-stylizer-v1"
#: The largest header read (the format's own limit).
MAX_HEADER = 100_000_000


def read_header(raw: bytes, name: str = "model") -> tuple[dict[str, Any], int]:
    """A safetensors file's bytes -> its parsed header and where its data starts; anything
    else is a :class:`UserError` naming ``name``."""
    size = struct.unpack("<Q", raw[:8])[0] if len(raw) >= 8 else 0
    try:
        if not 0 < size <= min(MAX_HEADER, len(raw) - 8):
            raise ValueError("bad header length")
        header = json.loads(raw[8 : 8 + size])
        if not isinstance(header, dict) or not isinstance(header.get("__metadata__", {}), dict):
            raise ValueError("not a safetensors header")
    except ValueError:
        raise UserError(f"{name}: not a readable safetensors file") from None
    return header, 8 + size


def rewrite_metadata(path: Path, update: Callable[[dict[str, str]], dict[str, str]]) -> Path:
    """Replace the ``__metadata__`` of the safetensors file ``path`` by ``update(metadata)``
    (which may refuse with a :class:`UserError`), atomically; the tensors' bytes are copied
    as they are."""
    raw = path.read_bytes()
    header, start = read_header(raw, str(path))
    ends = [t.get("data_offsets", [0, 0])[1] for k, t in header.items() if k != "__metadata__"]
    if max(ends, default=0) != len(raw) - start:  # a truncated (or padded) file: not rewritten
        raise UserError(f"{path}: not a readable safetensors file (truncated)")
    header["__metadata__"] = update(dict(header.get("__metadata__", {})))
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data stays 8-byte aligned
    with atomic_write(path, ".safetensors") as tmp:
        tmp.write_bytes(struct.pack("<Q", len(text)) + text + raw[start:])
    return path
