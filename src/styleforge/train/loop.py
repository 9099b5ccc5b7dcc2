"""The one GAN training loop, shared by the stylizer and the sampler (and by refine).

A model brings a :class:`GanPlan`: how to draw a step's inputs and its phases (after
StyleGAN2-ADA's phase list), each an optimiser and a loss, run in order every step (the
discriminator, then the generator). :func:`train_gan` does everything else once: resume, NaN
rollback, the EMA generator, stop requests, checkpoints, and the means over torchrun's processes
of what is logged. States (:class:`GanState`) are what a checkpoint holds.

Both models' loops have one shape: a fresh state, then :func:`train_steps` with the model's
:class:`GanSteps` built on this process's :class:`Share` (its rows, the networks as they train,
DiffAugment of its rows), run as :class:`LoopRun` says.
"""

from __future__ import annotations

import copy
import math
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, NamedTuple, Protocol, TypeVar

import torch
from torch import Tensor, nn
from typing_extensions import Self, TypedDict

from styleforge.distributed import World
from styleforge.errors import UserError
from styleforge.features import loss_encoder  # re-exported: its home until #44
from styleforge.train.augment import AugmentPolicy, diff_augment
from styleforge.train.checkpoint import load_checkpoint, restore_rng, rng_state, save_checkpoint

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "SINGLE",
    "GanConfig",
    "GanPlan",
    "GanState",
    "GanSteps",
    "LoopRun",
    "Phase",
    "PhaseLoss",
    "Share",
    "StopRequest",
    "TrainingDiverged",
    "d_then_g",
    "frozen",
    "loss_encoder",
    "roll_back",
    "set_lr",
    "start_from",
    "train_gan",
    "train_steps",
    "update_ema",
]

#: One process (the default of every loop's ``world``).
SINGLE = World()


class TrainingDiverged(UserError):
    """The loss became NaN or infinite again after a rollback."""


class GanConfig(Protocol):
    """What the loop reads of a training config (both training configs have it)."""

    @property
    def steps(self) -> int: ...
    @property
    def batch(self) -> int: ...
    @property
    def lr_g(self) -> float: ...
    @property
    def lr_d(self) -> float: ...
    @property
    def checkpoint_every(self) -> int: ...
    @property
    def augment(self) -> AugmentPolicy: ...
    def to_dict(self) -> dict[str, Any]: ...


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

    @classmethod
    def fresh(
        cls, generator: Gen, disc: Disc, lr: tuple[float, float], betas: tuple[float, float],
        seed: int,
    ) -> Self:  # fmt: skip
        """A state at step 0 for networks already placed: an EMA copy of ``generator``, Adam
        for each (learning rates ``lr`` = (G's, D's)) and a data generator seeded ``seed``."""
        return cls(
            generator=generator,
            ema=copy.deepcopy(generator).requires_grad_(False),
            disc=disc,
            opt_g=torch.optim.Adam(generator.parameters(), lr=lr[0], betas=betas),
            opt_d=torch.optim.Adam(disc.parameters(), lr=lr[1], betas=betas),
            data_gen=torch.Generator().manual_seed(seed),
        )

    def to_checkpoint(self, config: GanConfig) -> dict[str, Any]:
        """A dict of tensors and plain values (see :mod:`styleforge.train.checkpoint`)."""
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


Batch = TypeVar("Batch")
S = TypeVar("S", bound=GanState[Any, Any])


class PhaseLoss(NamedTuple):
    """A phase's scalar loss to minimise and the values to log (before the mean over the
    processes)."""

    loss: Tensor
    logs: dict[str, float]


@dataclass(frozen=True)
class Phase(Generic[Batch]):
    """One optimiser step of a training step: ``loss(batch, step)`` gives this process's
    :class:`PhaseLoss`, or ``None`` to skip the phase at that step (a warm-up)."""

    optimizer: torch.optim.Optimizer
    loss: Callable[[Batch, int], PhaseLoss | None]


@dataclass(frozen=True)
class GanPlan(Generic[Batch]):
    """What a model brings to :func:`train_gan`: ``draw(step)`` makes the step's inputs (all
    random numbers for the whole global batch, drawn alike on every process, of which each keeps
    its rows); ``phases`` run in order on them; ``ema_decay(step)`` is the EMA's decay after
    that step."""

    draw: Callable[[int], Batch]
    phases: tuple[Phase[Batch], ...]
    ema_decay: Callable[[int], float]


class GanSteps(Protocol[Batch]):
    """A model's draw and its discriminator and generator steps (see :func:`d_then_g`)."""

    def draw(self, step: int) -> Batch: ...
    def d_loss(self, batch: Batch, step: int) -> PhaseLoss | None: ...
    def g_loss(self, batch: Batch, step: int) -> PhaseLoss | None: ...
    def ema_decay(self, step: int) -> float: ...


def d_then_g(state: GanState[Any, Any], steps: GanSteps[Batch]) -> GanPlan[Batch]:
    """The plan of a GAN that steps its discriminator, then its generator, on each draw."""
    phases = (Phase(state.opt_d, steps.d_loss), Phase(state.opt_g, steps.g_loss))
    return GanPlan(steps.draw, phases, steps.ema_decay)


@dataclass(frozen=True)
class Share:
    """This process's part of every step of a run: its ``rows`` of the global batch (split over
    ``processes``), the ``generator`` and ``disc`` as they train (DDP-wrapped under torchrun)
    and ``augment``, DiffAugment of its rows with every random number drawn for the whole
    batch, as one process would draw them."""

    rows: slice
    processes: int
    generator: nn.Module
    disc: nn.Module
    augment: Callable[[Tensor], Tensor]


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
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)


class LoopRun(TypedDict, Generic[S], total=False):
    """How a model's loop runs, beside its checkpoint (:func:`train_gan`'s keywords): ``resume``
    from the checkpoint, ``stop_at`` a step, ``on_step(state)`` after every step, a
    :class:`StopRequest`, torchrun's ``world``."""

    resume: bool
    stop_at: int | None
    on_step: Callable[[S], None] | None
    stop: StopRequest | None
    world: World


def train_steps(
    state: S,
    config: GanConfig,
    device: torch.device,
    steps_for: Callable[[Share], GanSteps[Any]],
    checkpoint: Path | None = None,
    **run: Unpack[LoopRun[S]],
) -> S:
    """Train ``state`` (fresh networks on ``device``) as :func:`train_gan` does, stepping the
    discriminator, then the generator, of ``steps_for(share)``: the model's steps built on this
    process's :class:`Share` once ``state`` holds its starting weights."""
    world = run.get("world", SINGLE)

    def plan_for(rows: slice) -> GanPlan[Any]:
        augment = partial(diff_augment, policy=config.augment, generator=state.data_gen,
                          rows=rows, of=config.batch)  # fmt: skip
        wrap = partial(world.wrap, device=device)
        share = Share(rows, world.size, wrap(state.generator), wrap(state.disc), augment)
        return d_then_g(state, steps_for(share))

    return train_gan(state, config, plan_for, checkpoint=checkpoint, **run)


def train_gan(
    state: S,
    config: GanConfig,
    plan_for: Callable[[slice], GanPlan[Any]],
    *,
    checkpoint: Path | None = None,
    resume: bool = False,
    stop_at: int | None = None,
    on_step: Callable[[S], None] | None = None,
    stop: StopRequest | None = None,
    world: World = SINGLE,
) -> S:
    """Train ``state`` until ``config.steps`` (or ``stop_at``, or a stop request); returns it.

    ``plan_for(rows)`` builds the model's :class:`GanPlan` once ``state`` holds its starting
    weights; ``rows`` is this process's share of ``config.batch`` (all of it for one process).
    With ``checkpoint``, the state is saved there every ``config.checkpoint_every`` steps and
    at the end; ``resume`` continues exactly from it. A NaN or infinite loss rolls back to the
    last good state with half the learning rate; a second one raises :class:`TrainingDiverged`.
    Under torchrun only process 0 writes the checkpoint; logged values are process means.
    """
    rows = world.rows(config.batch)
    last_good = start_from(state, config, checkpoint, resume, world)
    save_to = checkpoint if world.is_main else None
    plan = plan_for(rows)
    end = min(config.steps, stop_at) if stop_at is not None else config.steps
    while state.step < end and not world.any(stop is not None and stop.requested):
        logs = _run_phases(plan, state.step, world)
        if logs is None:
            last_good = roll_back(state, config, last_good)
            continue
        update_ema(state.ema, state.generator, plan.ema_decay(state.step))
        state.history.append(logs)
        state.step += 1
        if on_step is not None:
            on_step(state)
        if state.step % config.checkpoint_every == 0:
            last_good = copy.deepcopy(state.to_checkpoint(config))
            if save_to is not None:
                save_checkpoint(last_good, save_to)
    if save_to is not None:
        save_checkpoint(state.to_checkpoint(config), save_to)
    return state


#: The key under which a phase's loss joins its logged values for the mean over the processes.
_LOSS = "_loss"


def _run_phases(plan: GanPlan[Any], step: int, world: World) -> dict[str, float] | None:
    """One training step: every phase's optimiser step on the step's inputs. Returns the logged
    values (process means), or ``None`` as soon as a phase's loss is not finite."""
    batch = plan.draw(step)
    logs = {"step": float(step)}
    for phase in plan.phases:
        result = phase.loss(batch, step)
        if result is None:
            continue
        means = world.mean({**result.logs, _LOSS: result.loss.item()})
        if not math.isfinite(means.pop(_LOSS)):
            return None
        logs |= means
        phase.optimizer.zero_grad(set_to_none=True)
        result.loss.backward()
        phase.optimizer.step()
    return logs


@contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """``module`` with ``requires_grad`` off inside the block (the discriminator while it judges
    the generator's output: only the generator's gradients are computed and averaged)."""
    module.requires_grad_(False)
    try:
        yield module
    finally:
        module.requires_grad_(True)


def set_lr(state: GanState[Any, Any], config: GanConfig) -> None:
    """Set both optimisers' learning rates to the config's times ``state.lr_scale``."""
    for group in state.opt_g.param_groups:
        group["lr"] = config.lr_g * state.lr_scale
    for group in state.opt_d.param_groups:
        group["lr"] = config.lr_d * state.lr_scale


def roll_back(
    state: GanState[Any, Any], config: GanConfig, last_good: dict[str, Any]
) -> dict[str, Any]:
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


def start_from(
    state: S,
    config: GanConfig,
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
