"""styleforge: learn your own visual style from pictures you like, and apply it.

The main API is imported lazily (so ``styleforge apply model.onnx`` never loads PyTorch)::

    from styleforge import Restyler, Settings, Stylizer, StylizerTrainConfig, train_stylizer

The package is a house of layers, every import running down (README, *How it works*); the
``[tool.importlinter]`` contracts in ``pyproject.toml`` keep it so (``make lint``).
"""

from __future__ import annotations

import os
from typing import Any

from styleforge.version import __version__

# Same seed, same machine, same thread count: the same weights, bit for bit. Without these, MKL's
# BLAS may split its sums by the memory alignment of its inputs and by how many threads it picks
# at each call, so two runs of one training can part at the last bit and drift apart through the
# GAN. MKL reads them at its first call, so this must run before any torch maths (it does: every
# entry point imports styleforge first). Set ``STYLEFORGE_REPRODUCIBLE=0`` to leave MKL alone.
if os.environ.get("STYLEFORGE_REPRODUCIBLE", "1") != "0":
    os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
    os.environ.setdefault("MKL_DYNAMIC", "FALSE")

_LAZY = {
    "Stylizer": "styleforge.infer.stylizer",
    "ApplyOptions": "styleforge.infer.settings",
    "Restyler": "styleforge.infer.restyle",
    "Settings": "styleforge.infer.settings",
    "StylizerTrainConfig": "styleforge.train.config",
    "train_stylizer": "styleforge.train.stylizer",
}

__all__ = [
    "ApplyOptions",
    "Restyler",
    "Settings",
    "Stylizer",
    "StylizerTrainConfig",
    "__version__",
    "train_stylizer",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'styleforge' has no attribute {name!r}")
