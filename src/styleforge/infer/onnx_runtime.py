"""Torch-free inference: run a stylizer exported by :mod:`styleforge.infer.onnx_trace`.

This module must not import torch (directly or through other styleforge modules), so that a
stylizer can be applied with only numpy and onnxruntime installed. onnxruntime itself is
imported when a model is opened.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from styleforge.errors import UserError

if TYPE_CHECKING:
    from types import ModuleType

    import onnxruntime

__all__ = [
    "INPUT_NAME",
    "MIN_SIDE",
    "OUTPUT_NAME",
    "SQUARE_NAME",
    "STRENGTH_NAME",
    "OnnxStylizerNet",
]

#: Name of the graph input: float32 (N,3,H,W) in [0,1].
INPUT_NAME = "image"
#: Name of the graph output: float32 (N,3,H,W) in [0,1].
OUTPUT_NAME = "stylized"
#: Extra inputs of a painter-prior model: strength (1,) and the photo's centre square.
STRENGTH_NAME = "strength"
SQUARE_NAME = "style_square"
#: Smallest image side; equals ``styleforge.nets.stylizer.MIN_SIDE`` (not imported: torch).
MIN_SIDE = 5

_CPU = "CPUExecutionProvider"
# "[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model from X failed:" before the reason.
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : (Load model from .* failed:)?")


def _cpu_count() -> int:
    """CPU cores this process may run on (respects affinity masks where the OS has them)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


class OnnxStylizerNet:
    """A stylizer loaded from an ONNX file: (N,3,H,W) float32 in [0,1] -> same shape, in [0,1].

    Args:
        path: an ``.onnx`` file written by :func:`styleforge.infer.onnx_trace.export_onnx`.
        threads: intra-op threads of onnxruntime; default: the number of usable CPU cores.
        optimized: where onnxruntime's optimised form of ``path`` is kept for this machine: it
            is opened as it is when it is there (a third of the start-up of optimising the
            graph again), else written there (atomically) after optimising. The caller keys
            it by the model's bytes, the onnxruntime version and the CPU; a copy that does not
            open is made again, and one that cannot be written is skipped.

    Raises:
        UserError: onnxruntime is missing, or ``path`` is missing or not a stylizer model.
    """

    def __init__(
        self, path: Path, threads: int | None = None, optimized: Path | None = None
    ) -> None:
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise UserError(
                "running an ONNX stylizer needs onnxruntime: pip install onnxruntime"
            ) from e
        if not path.is_file():
            raise UserError(f"{path}: no such file")
        self.path = path
        self.threads = threads if threads is not None else _cpu_count()
        session = self._open_optimized(ort, optimized)
        if session is None:
            session = self._open(ort, optimized)
        inputs = [i.name for i in session.get_inputs()]
        outputs = [o.name for o in session.get_outputs()]
        painter = [INPUT_NAME, STRENGTH_NAME, SQUARE_NAME]
        if inputs not in ([INPUT_NAME], painter) or outputs != [OUTPUT_NAME]:
            raise UserError(
                f"{path}: not a styleforge ONNX model (inputs {inputs} and outputs {outputs}, "
                f"expected [{INPUT_NAME!r}] and [{OUTPUT_NAME!r}])"
            )
        self._session: onnxruntime.InferenceSession = session
        #: A painter-prior model: takes ``strength`` (0..2) and ``square`` in :meth:`__call__`.
        self.conditional = inputs == painter
        #: The long side it paints at by default (``None``: full size).
        self.paint_size: int | None = None
        if self.conditional:
            import json

            from styleforge.infer.settings import DEFAULT_PAINT_SIZE

            training = json.loads(self.metadata.get("training", "{}") or "{}")
            self.paint_size = int(training.get("paint_size", DEFAULT_PAINT_SIZE))

    def _options(self, ort: ModuleType, level: str) -> onnxruntime.SessionOptions:
        options = ort.SessionOptions()
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        options.intra_op_num_threads = self.threads
        options.log_severity_level = 3  # no warning that the saved graph suits this CPU only
        return options

    def _open_optimized(
        self, ort: ModuleType, optimized: Path | None
    ) -> onnxruntime.InferenceSession | None:
        """The session of the kept optimised graph, or ``None`` (none kept, or it is damaged)."""
        if optimized is None or not optimized.is_file():
            return None
        try:
            return ort.InferenceSession(
                str(optimized), self._options(ort, "ORT_DISABLE_ALL"), providers=[_CPU]
            )
        except Exception:  # damaged or from another onnxruntime: optimised again
            return None

    def _open(self, ort: ModuleType, optimized: Path | None) -> onnxruntime.InferenceSession:
        """A session that optimises the graph, keeping the result at ``optimized`` if given."""
        options = self._options(ort, "ORT_ENABLE_ALL")
        tmp = None
        if optimized is not None:
            tmp = optimized.with_name(f".{optimized.name}.{os.getpid()}.tmp")
            try:
                optimized.parent.mkdir(parents=True, exist_ok=True)
                options.optimized_model_filepath = str(tmp)
            except OSError:
                tmp = None
        try:
            session = ort.InferenceSession(str(self.path), options, providers=[_CPU])
        except Exception as e:  # onnxruntime raises its own Exception subclasses
            reason = _ORT_PREFIX.sub("", str(e)).strip().rstrip(".") or type(e).__name__
            raise UserError(f"{self.path}: not a styleforge ONNX model ({reason})") from e
        finally:
            if tmp is not None and optimized is not None:
                try:
                    if tmp.is_file():
                        os.replace(tmp, optimized)
                except OSError:
                    pass
                finally:
                    tmp.unlink(missing_ok=True)
        return session

    @property
    def metadata(self) -> dict[str, str]:
        """The model's ``metadata_props`` as a new dict."""
        return dict(self._session.get_modelmeta().custom_metadata_map)

    def __call__(
        self, batch: np.ndarray, strength: float = 1.0, square: np.ndarray | None = None
    ) -> np.ndarray:
        """Stylize ``batch`` (N,3,H,W) float in [0,1], H, W ≥ :data:`MIN_SIDE` -> float32
        (N,3,H,W) in [0,1]. A painter-prior model is conditioned on ``strength`` and the photo's
        centre ``square`` (1,3,256,256) (the batch's own centre square when ``None``)."""
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ValueError(f"expected an (N,3,H,W) batch, got shape {batch.shape}")
        if not np.issubdtype(batch.dtype, np.floating):
            raise ValueError(f"expected a float batch in [0,1], got dtype {batch.dtype}")
        h, w = batch.shape[-2:]
        if min(h, w) < MIN_SIDE:
            raise ValueError(f"image sides must be at least {MIN_SIDE} px, got {h}×{w}")
        x = np.ascontiguousarray(batch, dtype=np.float32)
        feeds = {INPUT_NAME: x}
        if self.conditional:
            if square is None:
                from styleforge.infer.apply import predictor_square

                square = predictor_square(x[:1])
            feeds[STRENGTH_NAME] = np.asarray([strength], dtype=np.float32)
            feeds[SQUARE_NAME] = np.ascontiguousarray(square, dtype=np.float32)
        (y,) = self._session.run([OUTPUT_NAME], feeds)
        return np.asarray(y)
