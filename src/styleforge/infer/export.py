"""A trained model file as ONNX: :func:`export_model` writes it, :func:`open_exported` runs it.

Torch-free at import: opening an exported model needs only numpy and onnxruntime; torch is
imported by :func:`export_model` itself.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from styleforge.errors import DiskFull, UserError
from styleforge.infer.onnx_runtime import OnnxStylizerNet

__all__ = ["ONNX_FORMAT", "cached_export", "export_key", "export_model", "open_exported"]

#: The ``format`` entry of the metadata of an ONNX file written by :func:`export_model`.
ONNX_FORMAT = "styleforge-stylizer-onnx-v1"


def export_model(model: Path, output: Path) -> Path:
    """Export a ``.safetensors`` stylizer to ONNX (dynamic batch, height and width), with the
    model's metadata (``format``: :data:`ONNX_FORMAT`, ``source_model``: its file name)."""
    from styleforge.infer.model_file import read_model
    from styleforge.infer.onnx_trace import export_onnx
    from styleforge.nets import build_stylizer

    state, info = read_model(model)
    net = build_stylizer(info.net)
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise UserError(f"{model}: weights do not match the architecture in its header") from err
    meta = {k: v for k, v in info.to_metadata().items() if k != "format"}
    meta |= {"format": ONNX_FORMAT, "source_model": model.name}
    return export_onnx(net, output, metadata=meta)


def cached_export(model: Path) -> OnnxStylizerNet:
    """``model`` (a ``.safetensors`` stylizer) exported to ONNX once, kept in the user cache
    (``onnx/`` under :func:`~styleforge.fileio.cache_dir`) keyed by :func:`export_key` and
    :data:`ONNX_FORMAT`, and opened on onnxruntime: the first run exports, later runs open the
    copy (a retrained or edited model has other bytes, so gets a new copy; a new taste from
    ``tune`` does not change the network, so keeps it).
    A cached copy that does not open is exported again; the copy is written atomically. Where
    the cache cannot be written, the export goes to a temporary folder that is removed once
    the model is open (every run exports then)."""
    from styleforge.fileio import atomic_write, cache_dir

    copy = cache_dir() / "onnx" / f"{export_key(model)[:32]}-{ONNX_FORMAT}.onnx"
    if copy.is_file():
        try:
            return open_exported(copy)
        except Exception:  # damaged or foreign: made again below
            pass
    try:
        with atomic_write(copy, ".onnx") as tmp:
            export_model(model, tmp)
    except (OSError, DiskFull):  # a read-only or full cache: export for this run only
        with tempfile.TemporaryDirectory(prefix="styleforge-onnx-") as folder:
            return open_exported(export_model(model, Path(folder) / "model.onnx"))
    return open_exported(copy)


def export_key(model: Path) -> str:
    """Hex sha256 of what an export of the ``.safetensors`` file ``model`` is made of: its
    bytes, with the taste entries (which ``tune`` rewrites after every round) left out of the
    header's metadata; a file that is not safetensors is hashed whole."""
    import hashlib
    import json

    from styleforge.infer.header import TASTE_KEYS, read_header

    raw = model.read_bytes()
    try:
        header, start = read_header(raw)
    except UserError:  # not a safetensors header: every byte counts
        return hashlib.sha256(raw).hexdigest()
    meta = header.get("__metadata__", {})
    for key in TASTE_KEYS:
        meta.pop(key, None)
    digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    digest.update(memoryview(raw)[start:])
    return digest.hexdigest()


def open_exported(model: Path) -> OnnxStylizerNet:
    """An ONNX file written by :func:`export_model`, on onnxruntime; any other ONNX model is a
    :class:`UserError`. onnxruntime's optimised form of it is kept in the user cache
    (:func:`optimized_copy`), so later runs start faster."""
    net = OnnxStylizerNet(model, optimized=optimized_copy(model))
    if net.metadata.get("format") != ONNX_FORMAT:
        raise UserError(f"{model}: an ONNX model, but not one exported by styleforge")
    return net


def optimized_copy(model: Path) -> Path | None:
    """Where onnxruntime's optimised graph of the ONNX file ``model`` is kept: the user cache,
    keyed by the file's sha256, the onnxruntime version and this CPU (the graph is laid out
    for its vector instructions); ``None`` when the file cannot be read."""
    import onnxruntime

    from styleforge.fileio import cache_dir, sha256_file

    try:
        digest = sha256_file(model)[:32]
    except OSError:
        return None
    return cache_dir() / "onnx-ort" / f"{digest}-ort{onnxruntime.__version__}-{_cpu_tag()}.onnx"


def _cpu_tag() -> str:
    """A short tag of this CPU: its architecture and, on Linux, a hash of its feature flags."""
    import hashlib
    import platform

    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        pass
    return f"{platform.machine() or 'cpu'}-{hashlib.sha256(flags.encode()).hexdigest()[:8]}"
