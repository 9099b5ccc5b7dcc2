"""What every training loop shares: stop requests, NaN rollback, learning-rate scaling, EMA.

The loops' states (stylizer and sampler) both satisfy :class:`LoopState`: two Adam optimisers,
a step counter, a learning-rate scale, a rollback count, and ``load``/``to_checkpoint``.
"""

from __future__ import annotations

import copy
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, Protocol

import torch
from torch import nn

from styleforge.errors import UserError

__all__ = [
    "LoopConfig",
    "LoopState",
    "StopRequest",
    "TrainingDiverged",
    "roll_back",
    "set_lr",
    "update_ema",
]


class TrainingDiverged(UserError):
    """The loss became NaN or infinite again after a rollback."""


class LoopConfig(Protocol):
    """The learning rates of a training config."""

    @property
    def lr_g(self) -> float: ...
    @property
    def lr_d(self) -> float: ...


class LoopState(Protocol):
    """What :func:`roll_back` and :func:`set_lr` need of a training state."""

    @property
    def opt_g(self) -> torch.optim.Optimizer: ...
    @property
    def opt_d(self) -> torch.optim.Optimizer: ...

    step: int
    lr_scale: float
    rollbacks: int

    def load(self, ckpt: dict[str, Any]) -> None: ...
    def to_checkpoint(self, config: Any) -> dict[str, Any]: ...


class StopRequest:
    """Turns Ctrl-C / SIGTERM into a request to stop at the end of the current step (so the
    checkpoint is a clean step boundary); a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this step (Ctrl-C again to abort at once)...", file=sys.stderr)

    @contextmanager
    def installed(self) -> Iterator[StopRequest]:
        """Install the handlers (main thread only; elsewhere a no-op)."""
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)


def set_lr(state: LoopState, config: LoopConfig) -> None:
    """Set both optimisers' learning rates to the config's times ``state.lr_scale``."""
    for group in state.opt_g.param_groups:
        group["lr"] = config.lr_g * state.lr_scale
    for group in state.opt_d.param_groups:
        group["lr"] = config.lr_d * state.lr_scale


def roll_back(state: LoopState, config: LoopConfig, last_good: dict[str, Any]) -> dict[str, Any]:
    """After a non-finite loss: restore ``last_good`` with half the learning rate (the first
    time) or raise :class:`TrainingDiverged` (the second time). Returns the new last-good."""
    step = state.step
    if state.rollbacks >= 1:
        raise TrainingDiverged(
            f"the loss became NaN or infinite at step {step}, again after a rollback with a "
            "lower learning rate; try a smaller --lr or --adv-weight"
        )
    state.load(copy.deepcopy(last_good))
    state.rollbacks += 1
    state.lr_scale *= 0.5
    set_lr(state, config)
    print(
        f"\nthe loss became NaN or infinite at step {step}: rolled back to step {state.step} "
        f"with the learning rate × {state.lr_scale:g}",
        file=sys.stderr,
    )
    return copy.deepcopy(state.to_checkpoint(config))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema ← decay·ema + (1−decay)·model, parameters and buffers alike."""
    for e, m in zip(ema.state_dict().values(), model.state_dict().values(), strict=True):
        if e.dtype.is_floating_point:
            e.lerp_(m, 1.0 - decay)
        else:
            e.copy_(m)
