"""A model's taste, stored in its own file: two metadata entries of the model's safetensors
file, written together by :func:`write_taste` (the header is rewritten atomically, the tensors
kept as they are; no torch).

- :data:`~styleforge.infer.header.TASTE_KEY`: the chosen look, a plain record that every
  restyle reads (:func:`~styleforge.infer.header.read_taste`, without this package);
- :data:`~styleforge.infer.header.TASTE_SESSION_KEY`: the session that chose it
  (:meth:`TasteSession.to_dict`: seed, rounds, picks, the looks' distances), read only here.

A file written before the two had entries of their own holds the whole session under
:data:`~styleforge.infer.header.TASTE_KEY`: :func:`read_session` reads it from there, and the
next :func:`write_taste` writes both entries the new way.
"""

from __future__ import annotations

import json
from pathlib import Path

from styleforge.errors import UserError
from styleforge.infer.header import (
    LEGACY_TASTE_FORMATS,
    MODEL_FORMAT,
    TASTE_KEY,
    TASTE_KEYS,
    TASTE_SESSION_KEY,
    read_metadata,
    read_taste,
    rewrite_metadata,
    taste_entry,
    taste_fix_hint,
)
from styleforge.taste.session import TasteSession

__all__ = ["has_taste", "read_session", "write_taste"]


def has_taste(model: Path) -> bool:
    """Whether the model file holds a taste (either entry, damaged or not)."""
    meta = read_metadata(model) or {}
    return any(key in meta for key in TASTE_KEYS)


def read_session(model: Path) -> TasteSession | None:
    """The taste session stored in ``model`` (``None``: none); a damaged one is a one-line
    :class:`UserError` saying how to get past it."""
    meta = read_metadata(model) or {}
    if TASTE_SESSION_KEY in meta:
        return _session(model, _json(model, meta[TASTE_SESSION_KEY]))
    if TASTE_KEY not in meta:
        return None
    data = _json(model, meta[TASTE_KEY])
    if isinstance(data, dict) and data.get("format") in LEGACY_TASTE_FORMATS:
        return _session(model, data)  # written before the session had an entry of its own
    read_taste(model)  # a damaged look is reported as a restyle reports it
    return None  # a look without its rounds: they start afresh


def _json(model: Path, text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        raise UserError(f"{model}: damaged taste record: not JSON{taste_fix_hint(model)}") from None


def _session(model: Path, data: object) -> TasteSession:
    try:
        return TasteSession.from_dict(data)
    except UserError as err:
        raise UserError(f"{model}: {err}{taste_fix_hint(model)}") from None


def write_taste(model: Path, session: TasteSession | None) -> Path:
    """Store ``session`` as ``model``'s taste, its recommendation as the look restyles follow
    (``None``: remove both), atomically; the tensors and every other metadata entry stay as
    they were (only the header is rewritten: no torch)."""

    def updated(meta: dict[str, str]) -> dict[str, str]:
        if meta.get("format") != MODEL_FORMAT:
            raise UserError(f"{model}: not a styleforge stylizer model (.safetensors from train)")
        for key in TASTE_KEYS:
            meta.pop(key, None)
        if session is not None:
            meta[TASTE_KEY] = taste_entry(session.recommendation())
            meta[TASTE_SESSION_KEY] = json.dumps(session.to_dict())
        return meta

    if not model.is_file():
        raise UserError(f"{model}: no such model file")
    return rewrite_metadata(model, updated)
