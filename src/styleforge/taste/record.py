"""A model's taste, stored in its own file.

The taste is one metadata entry of the model's safetensors file (:data:`TASTE_KEY`: the JSON of
:meth:`TasteSession.to_dict`); writing it rewrites the file atomically with the same tensors.
Reading it touches only the header (no torch), so ``apply`` gets it for nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from styleforge.errors import UserError
from styleforge.taste.controls import Controls
from styleforge.taste.session import TasteSession, stored_recommendation

__all__ = [
    "TASTE_KEY",
    "load_session",
    "model_taste",
    "read_taste_record",
    "taste_text",
    "write_taste",
]

#: The metadata key of a model's taste record.
TASTE_KEY = "taste"


def taste_text(model: Path) -> str | None:
    """The taste entry of a model file's header as stored, ``None`` when it has none (or the
    file is unreadable: loading it reports that in its own words)."""
    from safetensors import safe_open

    try:
        with safe_open(str(model), framework="numpy") as fh:
            return (fh.metadata() or {}).get(TASTE_KEY)
    except Exception:  # safetensors raises its own error types for bad headers
        return None


def read_taste_record(model: Path) -> dict[str, Any] | None:
    """A model file's taste record (JSON-decoded, not yet validated), ``None`` when it has
    none. A record that is not JSON is a :class:`UserError`."""
    text = taste_text(model)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        raise UserError(f"{model}: damaged taste record: not JSON{_fix_hint(model)}") from None
    return data if isinstance(data, dict) else {"format": None}


def _fix_hint(model: Path) -> str:
    return (
        f" (`styleforge tune {model} --reset` removes it, tune --restart replaces it, "
        "apply --no-taste ignores it)"
    )


def load_session(model: Path, record: dict[str, Any]) -> TasteSession:
    """The session a record holds; a damaged one is a one-line :class:`UserError`."""
    try:
        return TasteSession.from_dict(record)
    except UserError as err:
        raise UserError(f"{model}: {err}{_fix_hint(model)}") from None


def model_taste(model: Path) -> Controls | None:
    """The recommended controls stored in ``model`` (``None``: no taste)."""
    record = read_taste_record(model)
    if record is None:
        return None
    try:
        return stored_recommendation(record)
    except UserError as err:
        raise UserError(f"{model}: {err}{_fix_hint(model)}") from None


def write_taste(model: Path, session: TasteSession | None) -> Path:
    """Store ``session`` as ``model``'s taste (``None``: remove it), atomically; the tensors and
    every other metadata entry stay as they were (only the header is rewritten: no torch)."""
    from styleforge.infer.header import MODEL_FORMAT, rewrite_metadata

    def updated(meta: dict[str, str]) -> dict[str, str]:
        if meta.get("format") != MODEL_FORMAT:
            raise UserError(f"{model}: not a styleforge stylizer model (.safetensors from train)")
        if session is None:
            meta.pop(TASTE_KEY, None)
        else:
            meta[TASTE_KEY] = json.dumps(session.to_dict())
        return meta

    if not model.is_file():
        raise UserError(f"{model}: no such model file")
    return rewrite_metadata(model, updated)
