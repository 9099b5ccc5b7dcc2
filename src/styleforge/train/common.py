"""What every training loop shares: stop requests, NaN rollback, learning-rate scaling, EMA.

The loops' states (stylizer and sampler) both satisfy :class:`LoopState`: two Adam optimisers,
a step counter, a learning-rate scale, a rollback count, and ``load``/``to_checkpoint``.
"""

from __future__ import annotations

import copy
import re
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import torch
from torch import nn

from styleforge.distributed import World
from styleforge.errors import JobFailed, UserError
from styleforge.train.checkpoint import load_checkpoint, restore_rng, rng_state, save_checkpoint

__all__ = [
    "SINGLE",
    "GanState",
    "LoopConfig",
    "LoopState",
    "StopRequest",
    "TrainingDiverged",
    "finish_step",
    "peers_watched",
    "roll_back",
    "set_lr",
    "start_from",
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


#: One process (the default of every loop's ``world``).
SINGLE = World()

Gen = TypeVar("Gen", bound=nn.Module)
Disc = TypeVar("Disc", bound=nn.Module)


@dataclass
class GanState(Generic[Gen, Disc]):
    """Everything that changes while a GAN trains; what a checkpoint saves. ``KIND`` tags the
    checkpoint so a stylizer run is never resumed as a sampler run or the other way round."""

    KIND: ClassVar[str] = "gan"
    generator: Gen
    ema: Gen
    disc: Disc
    opt_g: torch.optim.Adam
    opt_d: torch.optim.Adam
    data_gen: torch.Generator
    step: int = 0
    lr_scale: float = 1.0
    rollbacks: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def to_checkpoint(self, config: Any) -> dict[str, Any]:
        """A dict of tensors and plain values (see :mod:`styleforge.train.checkpoint`);
        ``config`` is the run's config (anything with ``to_dict``)."""
        return {
            "kind": self.KIND,
            "step": self.step,
            "lr_scale": self.lr_scale,
            "rollbacks": self.rollbacks,
            "config": config.to_dict(),
            "generator": self.generator.state_dict(),
            "ema": self.ema.state_dict(),
            "disc": self.disc.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": rng_state(self.data_gen),
            "history": self.history,
        }

    def load(self, ckpt: dict[str, Any]) -> None:
        """Restore from :meth:`to_checkpoint` output."""
        kind = ckpt.get("kind", "stylizer")  # checkpoints before the sampler had no kind
        if kind != self.KIND:
            raise UserError(f"checkpoint is of a {kind} run, not a {self.KIND} run")
        self.generator.load_state_dict(ckpt["generator"])
        self.ema.load_state_dict(ckpt["ema"])
        self.disc.load_state_dict(ckpt["disc"])
        self.opt_g.load_state_dict(ckpt["opt_g"])
        self.opt_d.load_state_dict(ckpt["opt_d"])
        restore_rng(self.data_gen, ckpt["rng"])
        self.step = int(ckpt["step"])
        self.lr_scale = float(ckpt.get("lr_scale", 1.0))
        self.rollbacks = int(ckpt.get("rollbacks", 0))
        self.history = list(ckpt["history"])


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


S = TypeVar("S", bound=GanState[Any, Any])


def start_from(
    state: S,
    config: LoopConfig,
    checkpoint: Path | None,
    resume: bool,
    world: World = SINGLE,
) -> dict[str, Any]:
    """With ``resume``, load ``checkpoint`` into the fresh ``state`` (learning rates scaled as
    they were); under torchrun process 0 reads it and sends it to the others, so only process
    0 needs the run folder. Returns a copy of the starting state: the first last-good for
    :func:`roll_back`."""
    if resume:
        if checkpoint is None:
            raise UserError("nothing to resume from: no checkpoint path")
        path = checkpoint
        state.load(world.on_main(lambda: load_checkpoint(path)))
        set_lr(state, config)
    return copy.deepcopy(state.to_checkpoint(config))


def finish_step(
    state: S,
    config: Any,
    logs: dict[str, float],
    last_good: dict[str, Any],
    checkpoint: Path | None,
    on_step: Callable[[S], None] | None,
) -> dict[str, Any]:
    """Record a completed step: history, step count, the ``on_step`` hook, and every
    ``config.checkpoint_every`` steps a new last-good state (saved to ``checkpoint``).
    Returns the current last-good state."""
    state.history.append(logs)
    state.step += 1
    if on_step is not None:
        on_step(state)
    if state.step % config.checkpoint_every == 0:
        last_good = copy.deepcopy(state.to_checkpoint(config))
        if checkpoint is not None:
            save_checkpoint(last_good, checkpoint)
    return last_good


def _ignore_sigterm() -> None:
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


@contextmanager
def peers_watched(world: World, run_dir: Path) -> Iterator[None]:
    """Under torchrun, turn the error a process gets when another one died (a collective that
    fails) into one line saying what to do; the checkpoint, written atomically by process 0
    only, is intact.

    Use it outside :meth:`StopRequest.installed`: torchrun sends SIGTERM to the survivors as soon
    as one process dies, so on this path SIGTERM is ignored from here on (the process is ending
    anyway); otherwise the default handler, restored on the way out, could kill the process
    before it has said why."""
    try:
        yield
    except RuntimeError as err:
        if not world.distributed:
            raise
        _ignore_sigterm()
        raw = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        # gloo's "[.../pair.cc:553] Connection closed by peer [addr]:port. This is ..." -> the
        # first sentence, without the source location.
        reason = re.sub(r"^\[[^\]]*\]\s*", "", raw).split(". ")[0][:160]
        raise JobFailed(
            f"process {world.rank} of {world.size} lost the others ({reason}); the job stopped. "
            f"The last checkpoint in {run_dir} is intact: run the same command with --resume "
            "(with any number of processes) to go on from it"
        ) from err
