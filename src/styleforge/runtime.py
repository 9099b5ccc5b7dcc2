"""Device choice, memory layout and mixed precision.

CPU runs stay float32. On CUDA the heavy convolutions run under bf16 autocast with channels_last
memory layout; anything that accumulates statistics (Gram matrices, losses) is computed in at least
float32 (:func:`at_least_float32`), so networks built in float64 (the exactness tests) stay float64.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TypeVar

import torch

from styleforge.configs import DEVICE_CHOICES
from styleforge.errors import UserError


def pick_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU; asking for one that is absent is an error.
    A ``torch.device`` is returned as it is."""
    if isinstance(name, torch.device):
        return name
    if name not in DEVICE_CHOICES and not name.startswith("cuda:"):
        raise UserError(f"unknown device {name!r}; choose from {', '.join(DEVICE_CHOICES)}")
    cuda_ok = torch.cuda.is_available()
    mps_ok = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda_ok else "mps" if mps_ok else "cpu")
    if name.startswith("cuda") and not cuda_ok:
        raise UserError("--device cuda: no CUDA GPU is available here (try --device cpu)")
    if name == "mps" and not mps_ok:
        raise UserError("--device mps: Apple MPS is not available here (try --device cpu)")
    return torch.device(name)


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last on CUDA (faster convolutions with tensor cores), contiguous elsewhere."""
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format


@contextlib.contextmanager
def autocast(device: torch.device, enabled: bool = True) -> Iterator[None]:
    """bf16 autocast on CUDA when enabled; a no-op on CPU and MPS (they stay float32)."""
    if enabled and device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.bfloat16):
            yield
    else:
        yield


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in at least float32: bf16/fp16 (autocast outputs) become float32, float32 and float64
    pass through unchanged (``.float()`` would round float64 down)."""
    if x.dtype in (torch.float16, torch.bfloat16):
        return x.float()
    return x


M = TypeVar("M", bound=torch.nn.Module)


def place(module: M, device: torch.device, channels_last: bool | None = None) -> M:
    """Move ``module`` to ``device``, in channels_last layout when ``channels_last`` says so
    (default: on CUDA only)."""
    module = module.to(device)
    if channels_last if channels_last is not None else device.type == "cuda":
        module = module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return module
