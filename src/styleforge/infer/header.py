"""The header of a safetensors model file, read and rewritten without torch: what ``apply``
on onnxruntime and ``tune``'s taste need (a model's metadata), with the tensors' bytes left as
they are.

A safetensors file is an 8-byte little-endian header length, the JSON header (tensor names,
dtypes, shapes, byte offsets into the data, and ``__metadata__``: string to string), then the
data; offsets count from the data's start, so a header of another length keeps them valid.

The model file's metadata keys that ``tune`` writes live here: :data:`TASTE_KEY`, the chosen
look as a plain record (:meth:`~styleforge.infer.settings.Settings.to_record`), read by
:func:`read_taste` for every restyle, and :data:`TASTE_SESSION_KEY`, the rounds that led to it,
which only ``styleforge.taste`` reads. (The keys ``train`` writes are
:class:`~styleforge.infer.model_file.ModelInfo`'s.)
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from styleforge.errors import UserError
from styleforge.fileio import atomic_write
from styleforge.infer.settings import Settings

__all__ = [
    "LEGACY_TASTE_FORMATS",
    "LOOK_FORMAT",
    "MODEL_FORMAT",
    "TASTE_KEY",
    "TASTE_KEYS",
    "TASTE_SESSION_KEY",
    "read_header",
    "read_metadata",
    "read_taste",
    "rewrite_metadata",
    "taste_entry",
    "taste_fix_hint",
]

#: The ``format`` metadata entry of a stylizer model file.
MODEL_FORMAT = "styleforge-stylizer-v1"
#: The metadata entry of a model's taste: the chosen look, a plain record (JSON,
#: :func:`taste_entry`).
TASTE_KEY = "taste"
#: The ``format`` of that record.
LOOK_FORMAT = "styleforge-look-v1"
#: The metadata entry of the taste session that chose it: seed, rounds, picks (JSON).
TASTE_SESSION_KEY = "taste_session"
#: Both entries ``tune`` writes (an export of the network leaves them out of its key).
TASTE_KEYS = (TASTE_KEY, TASTE_SESSION_KEY)
#: Formats of the taste entry of files written before the look and the session had entries
#: of their own: the whole session, its chosen look under ``recommended``.
LEGACY_TASTE_FORMATS = ("styleforge-taste-v1", "styleforge-taste-v2")
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


def read_metadata(model: Path) -> dict[str, str] | None:
    """A safetensors file's metadata (header only, no torch), ``None`` when the file is
    unreadable (loading it reports that in its own words)."""
    from safetensors import safe_open

    try:
        with safe_open(str(model), framework="numpy") as fh:
            return dict(fh.metadata() or {})
    except Exception:  # safetensors raises its own error types for bad headers
        return None


def taste_fix_hint(model: Path) -> str:
    """What to do about a damaged taste in ``model``."""
    return (
        f" (`styleforge tune {model} --reset` removes it, tune --restart replaces it, "
        "apply --no-taste ignores it)"
    )


def taste_entry(look: Settings) -> str:
    """The :data:`TASTE_KEY` entry of a look (every knob set): ``{"format": LOOK_FORMAT,
    "strength": 1.3, "paint_size": 640, "colors": 0.2, "tone": 0.1}`` as JSON."""
    return json.dumps({"format": LOOK_FORMAT, **look.to_record()})


def read_taste(model: Path) -> Settings | None:
    """The look ``tune`` stored in the model file ``model`` (``None``: none, or not a
    ``.safetensors`` file: an ``.onnx`` export carries none). A file written before the look
    had an entry of its own is read from its session's ``recommended`` look. A damaged entry
    is a one-line :class:`UserError` saying how to get past it."""
    if model.suffix.lower() != ".safetensors":
        return None
    text = (read_metadata(model) or {}).get(TASTE_KEY)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        raise UserError(f"{model}: damaged taste record: not JSON{taste_fix_hint(model)}") from None
    if isinstance(data, dict) and data.get("format") in LEGACY_TASTE_FORMATS:
        data = data.get("recommended")
    elif isinstance(data, dict) and data.get("format") == LOOK_FORMAT:
        data = {k: v for k, v in data.items() if k != "format"}
    try:
        return Settings.from_record(data)
    except UserError as err:
        raise UserError(f"{model}: damaged taste record: {err}{taste_fix_hint(model)}") from None
