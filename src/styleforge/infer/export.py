"""A trained model file as ONNX: :func:`export_model` writes it, :func:`open_exported` runs it.

Torch-free at import: opening an exported model needs only numpy and onnxruntime; torch is
imported by :func:`export_model` itself.
"""

from __future__ import annotations

from pathlib import Path

from styleforge.errors import UserError
from styleforge.infer.onnx_runtime import OnnxStylizerNet

__all__ = ["ONNX_FORMAT", "export_model", "exported_copy", "open_exported"]

#: The ``format`` entry of the metadata of an ONNX file written by :func:`export_model`.
ONNX_FORMAT = "styleforge-stylizer-onnx-v1"


def export_model(model: Path, output: Path) -> Path:
    """Export a ``.safetensors`` stylizer to ONNX (dynamic batch, height and width), with the
    model's metadata (``format``: :data:`ONNX_FORMAT`, ``source_model``: its file name)."""
    from styleforge.infer.model_file import read_model
    from styleforge.infer.onnx_export import export_onnx
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


def exported_copy(model: Path) -> Path:
    """``model`` (a ``.safetensors`` stylizer) exported to ONNX once and kept in the user cache
    (``onnx/`` under :func:`~styleforge.fileio.cache_dir`), keyed by the sha256 of the model
    file's bytes and :data:`ONNX_FORMAT`: the first ``--backend onnx`` run exports, later runs
    open the copy (a retrained or edited model has other bytes, so gets a new copy). A cached
    copy that does not open is exported again; the copy is written atomically."""
    from styleforge.fileio import atomic_write, cache_dir, sha256_file

    copy = cache_dir() / "onnx" / f"{sha256_file(model)[:32]}-{ONNX_FORMAT}.onnx"
    if copy.is_file():
        try:
            open_exported(copy)
            return copy
        except Exception:  # damaged or foreign: made again below
            pass
    with atomic_write(copy, ".onnx") as tmp:
        export_model(model, tmp)
    return copy


def open_exported(model: Path) -> OnnxStylizerNet:
    """An ONNX file written by :func:`export_model`, on onnxruntime; any other ONNX model is a
    :class:`UserError`."""
    net = OnnxStylizerNet(model)
    if net.metadata.get("format") != ONNX_FORMAT:
        raise UserError(f"{model}: an ONNX model, but not one exported by styleforge")
    return net
