"""The network ``apply`` runs (a model file on torch or onnxruntime, or the zero-training preview
of a style folder), and ``apply`` shared among the processes of a ``torchrun`` job.

Torch-free at import: a ``.onnx`` model on onnxruntime never imports torch.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PIL import Image

from styleforge import images
from styleforge.distributed import joined, shard
from styleforge.errors import UserError
from styleforge.infer.apply import ApplySummary, RunBatch, apply_files
from styleforge.infer.export import cached_export, open_exported
from styleforge.infer.settings import Settings

__all__ = [
    "Backend",
    "ShardedSummary",
    "apply_sharded",
    "choose_backend",
    "gpu_visible",
    "onnx_backend",
    "pictures_backend",
    "preview_backend",
    "torch_backend",
]

Backend = Literal["torch", "onnx"]


def torch_backend(model: Path, device: str) -> RunBatch:
    """A ``.safetensors`` stylizer on torch, on ``device`` (``auto``, ``cpu``, ``cuda:1``...)."""
    from styleforge.infer.stylizer import Stylizer

    return Stylizer.load(model, device).backend()


def onnx_backend(model: Path, device: str) -> RunBatch:
    """An exported ``.onnx`` stylizer on onnxruntime (CPU only); a ``.safetensors`` model runs
    its cached export (:func:`~styleforge.infer.export.cached_export`)."""
    if device not in ("auto", "cpu"):
        raise UserError("--backend onnx runs on the CPU; leave out --device or use --device cpu")
    return open_exported(model) if model.suffix.lower() == ".onnx" else cached_export(model)


def preview_backend(style_dir: Path, device: str, max_pixels: int) -> RunBatch:
    """The zero-training stylizer of a style folder: the painter prior with the folder's mean
    style."""
    from styleforge import collection

    coll = collection.scan_for(style_dir, 1, "a style preview", max_pixels=max_pixels)
    pictures = [images.open_image(p, max_pixels=max_pixels) for p in coll.images]
    return pictures_backend(pictures, device)


def pictures_backend(pictures: Sequence[Image.Image], device: str) -> RunBatch:
    """The zero-training stylizer of pictures already read: the painter prior with their mean
    style (:func:`preview_backend` of a folder)."""
    from styleforge.infer import prior
    from styleforge.infer.model_file import ModelInfo
    from styleforge.infer.stylizer import Stylizer
    from styleforge.nets import PainterConfig
    from styleforge.runtime import pick_device

    net = prior.painter_for(pictures)
    info = ModelInfo(net=PainterConfig(), style={"images": len(pictures), "preview": True})
    return Stylizer(net, info, pick_device(device)).backend()


def gpu_visible() -> bool:
    """Whether ``--device auto`` may find a GPU, asked without importing torch: an NVIDIA driver
    with devices not hidden by ``CUDA_VISIBLE_DEVICES``, or an Apple-silicon Mac (MPS)."""
    if sys.platform == "darwin":
        return platform.machine() == "arm64"
    if os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1"):
        return False
    return Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidia0").exists()


def choose_backend(
    model: Path, backend: Backend | None, device: str = "auto", *, sharded: bool = False
) -> Backend:
    """The backend for ``model``. Default: ``onnx`` for a ``.onnx`` file; for a ``.safetensors``
    model ``onnx`` too (its cached export, no torch start-up) when it runs on the CPU (``device``
    ``cpu``, or ``auto`` with no GPU in sight) and onnxruntime is installed, else ``torch``;
    ``torch`` for one process of a ``sharded`` (torchrun) job. A missing model or an ONNX model
    on torch is a :class:`UserError`."""
    if not model.is_file():
        raise UserError(f"{model}: no such model file")
    is_onnx = model.suffix.lower() == ".onnx"
    if backend is None:
        on_cpu = device == "cpu" or (device == "auto" and not gpu_visible())
        fast = on_cpu and not sharded and importlib.util.find_spec("onnxruntime") is not None
        backend = "onnx" if is_onnx or fast else "torch"
    if backend == "torch" and is_onnx:
        raise UserError(f"{model}: an ONNX model runs with --backend onnx")
    return backend


@dataclass(frozen=True)
class ShardedSummary:
    """What the processes of a sharded ``apply`` came to together."""

    total: ApplySummary
    #: Outputs written by each process, in rank order.
    per_rank: tuple[int, ...]

    def line(self) -> str:
        """``restyled 5 with 2 processes (rank 0: 3, rank 1: 2)``."""
        ranks = ", ".join(f"rank {i}: {n}" for i, n in enumerate(self.per_rank))
        return f"{self.total.line()} with {len(self.per_rank)} processes ({ranks})"


def apply_sharded(
    model: Path, backend: Backend, pairs: list[tuple[Path, Path]], options: Settings,
    device: str, *, overwrite: bool, max_pixels: int,
) -> ShardedSummary | None:  # fmt: skip
    """``apply`` as one process of a torchrun job: it restyles every N-th (photo, output) pair
    of the sorted plan on torch, on the device and process group training would use
    (``cuda:LOCAL_RANK`` for ``auto`` on a GPU machine). Outputs that exist are skipped unless
    ``overwrite``, so a re-run after a crash finishes the rest. Returns the summary of all
    processes on process 0, ``None`` on the others."""
    if backend == "onnx" or model.suffix.lower() == ".onnx":
        raise UserError("sharded apply runs the torch backend; pass the .safetensors model")
    with joined(device) as w:
        summary = apply_files(
            torch_backend(model, w.device(device)), shard(pairs, w), options,
            overwrite=overwrite, skip_existing=not overwrite, max_pixels=max_pixels,
            progress=False,
        )  # fmt: skip
        parts = w.gather(
            ([str(p) for p in summary.done], [str(p) for p in summary.skipped],
             [(str(p), r) for p, r in summary.failed])
        )  # fmt: skip
    if not w.is_main:
        return None
    total = ApplySummary()
    for done, skipped, failed in parts:
        total.done += [Path(p) for p in done]
        total.skipped += [Path(p) for p in skipped]
        total.failed += [(Path(p), r) for p, r in failed]
    return ShardedSummary(total, tuple(len(done) for done, _, _ in parts))
