"""Checkpoints that hold everything a resume needs, written atomically.

A checkpoint is a plain dict of tensors, numbers, strings and nested dicts/lists, saved with
``torch.save`` and read back with ``torch.load(weights_only=True)``: no pickled classes, so a
checkpoint from elsewhere cannot run code. It is written to a temporary file and renamed, so a
crash or Ctrl-C during the write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import torch

from styleforge.errors import UserError
from styleforge.fileio import atomic_write

FORMAT = "styleforge-checkpoint-v1"


def save_checkpoint(state: dict[str, Any], path: Path) -> Path:
    """Write ``state`` (plus a format tag) to ``path`` atomically."""
    # Serialised in memory first, so a full disk is a plain OSError from the file write (torch's
    # zip writer reports it as an opaque RuntimeError), turned into DiskFull by atomic_write.
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    with atomic_write(path, ".tmp") as tmp:
        with open(tmp, "wb") as fh:
            fh.write(buffer.getbuffer())
        _pause_before_rename()
    return path


def _pause_before_rename() -> None:
    """Test hook: ``STYLEFORGE_TEST_CKPT_PAUSE=SECONDS`` sleeps inside the checkpoint write (the
    temporary file exists, the old checkpoint is still in place), so a test can kill -9 there."""
    pause = os.environ.get("STYLEFORGE_TEST_CKPT_PAUSE")
    if pause:
        time.sleep(float(pause))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (never unpickles objects)."""
    if not path.is_file():
        raise UserError(f"{path}: no checkpoint to resume from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise UserError(f"{path}: not a readable styleforge checkpoint ({err})") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path}: not a styleforge checkpoint")
    return state


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """The states of a data generator and of torch's global CPU RNG."""
    return {"data": generator.get_state(), "torch": torch.get_rng_state()}


def restore_rng(generator: torch.Generator, state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    generator.set_state(state["data"])
    torch.set_rng_state(state["torch"])
