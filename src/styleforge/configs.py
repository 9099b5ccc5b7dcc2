"""Helpers shared by the frozen config dataclasses (nets, augmentation, training)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")

#: What ``--device`` accepts (``cuda:N`` too).
DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")


def from_dict(cls: type[T], d: Mapping[str, Any]) -> T:
    """Build dataclass ``cls`` from a JSON-style dict; missing keys take defaults, unknown keys
    raise ``ValueError`` (a model file from a newer version should fail loudly, not silently)."""
    unknown = set(d) - {f.name for f in fields(cls)}  # type: ignore[arg-type]
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    return cls(**d)
