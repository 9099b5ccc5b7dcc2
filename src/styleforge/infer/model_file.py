"""The stylizer model file: one safetensors file, self-describing, never pickled.

Tensors: the generator's ``state_dict`` (the EMA weights when training kept an EMA). Metadata
(safetensors allows ``str -> str`` only, so structured values are JSON):

- ``format``: :data:`MODEL_FORMAT`; ``styleforge_version``;
- ``net``: :class:`~styleforge.nets.StylizerConfig` or :class:`~styleforge.nets.PainterConfig`
  (``arch: painter``) as JSON, enough to rebuild the network;
- ``preprocessing``: how pixels enter and leave the network (float RGB NCHW in [0,1], sRGB);
- ``training``: the training config as JSON; ``style``: the style set (fingerprint, image count,
  names); ``metrics``: final figures (JSON); ``created``: ISO time.

Reading uses ``safetensors.safe_open`` only: a truncated file, a file of another kind or a
safetensors file that is not a styleforge model gives a one-line :class:`UserError`.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch
from safetensors import safe_open
from safetensors.torch import save
from torch import Tensor

from styleforge.errors import UserError
from styleforge.fileio import atomic_write
from styleforge.infer.header import MODEL_FORMAT
from styleforge.nets import AnyStylizerConfig, stylizer_config_from_dict
from styleforge.version import __version__

__all__ = [
    "MODEL_FORMAT",
    "PREPROCESSING",
    "ModelInfo",
    "load_weights",
    "now_iso",
    "read_model",
    "read_safetensors",
    "write_model",
]

PREPROCESSING: dict[str, Any] = {
    "layout": "NCHW",
    "channels": "RGB",
    "range": [0.0, 1.0],
    "color": "sRGB",
}


@dataclass(frozen=True)
class ModelInfo:
    """What a model file says about itself (its metadata, decoded)."""

    net: AnyStylizerConfig
    version: str = __version__
    preprocessing: dict[str, Any] = field(default_factory=lambda: dict(PREPROCESSING))
    training: dict[str, Any] = field(default_factory=dict)
    style: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    #: One entry per ``tune --refine`` that led to this model (oldest first): what it started
    #: from and the picks it learned from.
    refined: list[dict[str, Any]] = field(default_factory=list)

    def to_metadata(self) -> dict[str, str]:
        """safetensors metadata: every value a string (JSON for structured ones)."""
        extra = {"refined": json.dumps(self.refined)} if self.refined else {}
        return extra | {
            "format": MODEL_FORMAT,
            "styleforge_version": self.version,
            "net": json.dumps(self.net.to_dict()),
            "preprocessing": json.dumps(self.preprocessing),
            "training": json.dumps(self.training),
            "style": json.dumps(self.style),
            "metrics": json.dumps(self.metrics),
            "created": self.created or now_iso(),
        }

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str], path: Path) -> ModelInfo:
        """Inverse of :meth:`to_metadata`; a bad or foreign header is a :class:`UserError`."""
        if meta.get("format") != MODEL_FORMAT:
            raise UserError(f"{path}: a safetensors file, but not a styleforge stylizer model")
        try:
            return cls(
                net=stylizer_config_from_dict(json.loads(meta["net"])),
                version=meta.get("styleforge_version", "?"),
                preprocessing=json.loads(meta.get("preprocessing", "{}")),
                training=json.loads(meta.get("training", "{}")),
                style=json.loads(meta.get("style", "{}")),
                metrics=json.loads(meta.get("metrics", "{}")),
                created=meta.get("created", ""),
                refined=list(json.loads(meta.get("refined", "[]"))),
            )
        except (KeyError, ValueError, TypeError) as err:
            raise UserError(f"{path}: damaged styleforge model header ({err})") from err


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class HasMetadata(Protocol):
    """A model description that renders itself as safetensors metadata."""

    def to_metadata(self) -> dict[str, str]: ...


def write_model(path: Path, state_dict: Mapping[str, Tensor], info: HasMetadata) -> Path:
    """Write weights + metadata (a stylizer's :class:`ModelInfo` or a sampler's info) to
    ``path`` atomically (float32, contiguous, on the CPU)."""
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in state_dict.items()}
    data = save(tensors, metadata=info.to_metadata())  # bytes: a full disk is a plain OSError
    with atomic_write(path, ".safetensors") as tmp:
        tmp.write_bytes(data)
    return path


def read_safetensors(path: Path, what: str = "model") -> tuple[dict[str, Tensor], dict[str, str]]:
    """Tensors and raw metadata of a safetensors file; a missing, truncated or foreign file is a
    one-line :class:`UserError`."""
    if not path.exists():
        raise UserError(f"{path}: no such {what} file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a {what} file")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (not a dict)
    except Exception as err:  # safetensors raises its own error types for bad headers
        raise UserError(
            f"{path}: not a readable styleforge {what} (truncated or not safetensors)"
        ) from err
    return tensors, meta


M = TypeVar("M", bound=torch.nn.Module)


def load_weights(net: M, state: Mapping[str, Tensor], path: Path) -> M:
    """``net`` with the weights ``state`` of the model file ``path`` loaded (strictly); weights
    that do not fit the architecture its header describes are a :class:`UserError`."""
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise UserError(f"{path}: weights do not match the architecture in its header") from err
    return net


def read_model(path: Path) -> tuple[dict[str, Tensor], ModelInfo]:
    """Weights and metadata of a model file; clear :class:`UserError` for anything unusable."""
    tensors, meta = read_safetensors(path)
    if meta.get("format", "").startswith("styleforge-sampler"):
        raise UserError(f"{path}: a styleforge sampler (use `styleforge generate`), not a stylizer")
    return tensors, ModelInfo.from_metadata(meta, path)
