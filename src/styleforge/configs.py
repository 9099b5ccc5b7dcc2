"""Helpers shared by the frozen config dataclasses (nets, augmentation, training).

A config goes to and from a JSON-style dict in one place (:func:`to_dict`, :func:`from_dict`,
the :class:`DictConfig` mixin): nested configs become nested dicts and come back as configs, a
field typed as a union of configs picks its class by the ``arch`` tag, tuples travel as lists.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, TypeVar

T = TypeVar("T")

#: What ``--device`` accepts (``cuda:N`` too).
DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")


def to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass instance as a JSON-able dict: nested configs become dicts, tuples
    become lists, everything else is kept as is."""
    if not is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"expected a config dataclass instance, got {type(config).__name__}")
    return {f.name: _plain(getattr(config, f.name)) for f in fields(config)}


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def from_dict(cls: type[T], d: Mapping[str, Any]) -> T:
    """Build dataclass ``cls`` from a JSON-style dict (the inverse of :func:`to_dict`).

    Missing keys take defaults; unknown keys raise ``ValueError`` (a model file from a newer
    version should fail loudly, not silently). A dict given for a nested config field is built
    into that config (see :func:`pick_config` for a union of configs); a list given for a tuple
    field becomes a tuple. Values that already have their type pass through.
    """
    if not isinstance(d, Mapping):
        raise TypeError(f"{cls.__name__} needs a dict, got {type(d).__name__}")
    unknown = set(d) - {f.name for f in fields(cls)}  # type: ignore[arg-type]
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    hints = typing.get_type_hints(cls)
    return cls(**{key: _typed(hints[key], value) for key, value in d.items()})


def _typed(hint: Any, value: Any) -> Any:
    """``value`` (from JSON) as the field type ``hint`` wants it."""
    origin = typing.get_origin(hint)
    members = typing.get_args(hint) if origin in (typing.Union, types.UnionType) else (hint,)
    candidates = [m for m in members if isinstance(m, type) and is_dataclass(m)]
    if candidates and isinstance(value, Mapping):
        return from_dict(pick_config(candidates, value), value)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    return value


def pick_config(candidates: Sequence[type[T]], d: Mapping[str, Any]) -> type[T]:
    """The class among ``candidates`` that dict ``d`` describes, by its ``arch`` tag: the one
    whose ``arch`` field defaults to ``d["arch"]``, or the one without an ``arch`` field when
    ``d`` has none. Raises ``ValueError`` when none matches."""
    tag = d.get("arch")
    for cls in candidates:
        arch = {f.name: f.default for f in fields(cls)}.get("arch")  # type: ignore[arg-type]
        if (None if arch is MISSING else arch) == tag:
            return cls
    raise ValueError(f"unknown arch {tag!r} (expected one of {[c.__name__ for c in candidates]})")


def given_or_default(config: T | None, cls: type[T]) -> T:
    """A network's ``config`` argument: the config given, or ``cls()`` (its defaults) for
    ``None``; anything but a ``cls`` is a :class:`TypeError`."""
    chosen = cls() if config is None else config
    if not isinstance(chosen, cls):
        raise TypeError(f"config must be a {cls.__name__}, got {type(chosen).__name__}")
    return chosen


def check_ints(config: Any, names: Sequence[str], minimum: int = 1) -> None:
    """Raise ``ValueError`` unless each named field of ``config`` is an int (not a bool) of at
    least ``minimum`` (1: "a positive int", 0: "a non-negative int")."""
    kind = {1: "a positive int", 0: "a non-negative int"}.get(minimum, f"an int ≥ {minimum}")
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"{name} must be {kind}, got {value!r}")


C = TypeVar("C", bound="DictConfig")


class DictConfig:
    """Mixin for frozen config dataclasses: ``to_dict`` / ``from_dict`` through this module."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of the fields (nested configs as dicts, tuples as lists)."""
        return to_dict(self)

    @classmethod
    def from_dict(cls: type[C], d: Mapping[str, Any]) -> C:
        """Inverse of :meth:`to_dict`; missing keys take defaults, unknown keys are an error."""
        return from_dict(cls, d)
