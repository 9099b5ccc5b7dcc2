"""styleforge: learn your own visual style from pictures you like, and apply it.

The main API is imported lazily (so ``styleforge apply model.onnx`` never loads PyTorch)::

    from styleforge import Stylizer, TrainConfig, train_stylizer
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Stylizer": "styleforge.infer.stylizer",
    "ApplyOptions": "styleforge.infer.apply",
    "TrainConfig": "styleforge.train.stylizer",
    "train_stylizer": "styleforge.train.run",
}

__all__ = ["ApplyOptions", "Stylizer", "TrainConfig", "__version__", "train_stylizer"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'styleforge' has no attribute {name!r}")
