"""Running under ``torchrun``: which process this is, and combining results across processes.

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (and the rendezvous variables)
for every process it starts. Without them styleforge runs as one process, every method here is
a no-op, and ``torch.distributed`` is never initialised. The process group uses gloo on the CPU;
on CUDA, NCCL for tensors on the GPU (DDP's gradients) and gloo for the few CPU values
(logged losses, the stop flag, a checkpoint sent from process 0).

torch is imported lazily: sharded ``apply`` with an ONNX model must not need it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from styleforge.errors import ReportedElsewhere, UserError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["World", "backend_for", "joined", "shard", "world"]

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place among ``size`` processes (``rank`` 0 is the one that reports)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        """Started by torchrun with more than one process."""
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """The process that prints summaries and writes shared files."""
        return self.rank == 0

    def init(self, backend: str = "gloo") -> None:
        """Join the process group (a no-op for a single process or when already joined).
        ``backend``: ``gloo``, or ``cpu:gloo,cuda:nccl`` for GPU training."""
        if not self.distributed:
            return
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend=backend, rank=self.rank, world_size=self.size)

    def device(self, name: str) -> str:
        """The device this process trains on: ``auto``/``cuda`` become ``cuda:LOCAL_RANK``
        under torchrun on a GPU machine (one GPU per process); anything else is kept."""
        import torch

        if self.distributed and name in ("auto", "cuda") and torch.cuda.is_available():
            gpus = torch.cuda.device_count()
            here = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
            if here > gpus:
                message = (
                    f"{here} processes on this machine but {gpus} GPU(s): start one process "
                    f"per GPU (--nproc_per_node={gpus}), or train on the CPU with --device cpu"
                )
                raise UserError(message) if self.is_main else ReportedElsewhere(message)
            return f"cuda:{self.local_rank}"
        return name

    def rows(self, batch: int) -> slice:
        """This process's rows of a global batch of ``batch`` rows (an equal share each)."""
        if batch % self.size:
            raise UserError(
                f"a batch of {batch} does not split evenly across {self.size} processes; "
                f"pass a --batch that is a multiple of {self.size}"
            )
        part = batch // self.size
        return slice(self.rank * part, (self.rank + 1) * part)

    def broadcast(self, value: T) -> T:
        """Process 0's ``value``, on every process."""
        if not self.distributed:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def on_main(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on process 0 only and hand its result to every process. A
        :class:`UserError` it raises is raised on every process: the original on process 0,
        a :class:`ReportedElsewhere` (which the CLI does not print again) on the others."""
        if not self.distributed:
            return fn()
        result: Any = None
        error: UserError | None = None
        if self.is_main:
            try:
                result = fn()
            except UserError as err:
                error = err
        result, message = self.broadcast((result, None if error is None else str(error)))
        if error is not None:
            raise error
        if message is not None:
            raise ReportedElsewhere(message)
        return result

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """The mean of each value over the processes (every process must pass the same keys)."""
        if not self.distributed:
            return values
        import torch
        import torch.distributed as dist

        t = torch.tensor(list(values.values()), dtype=torch.float64)
        dist.all_reduce(t)
        return dict(zip(values, (t / self.size).tolist(), strict=True))

    def any(self, flag: bool) -> bool:
        """True on every process when ``flag`` is true on any of them."""
        if not self.distributed:
            return flag
        import torch
        import torch.distributed as dist

        t = torch.tensor([int(flag)])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        """``module`` in DistributedDataParallel (gradients averaged over the processes in
        ``backward``); the module itself for a single process."""
        if not self.distributed:
            return module
        import torch
        from torch.nn.parallel import DistributedDataParallel

        ids = None
        if device.type == "cuda":
            ids = [device.index if device.index is not None else torch.cuda.current_device()]
        return DistributedDataParallel(module, device_ids=ids)

    def gather(self, value: Any) -> list[Any]:
        """Every process's ``value``, in rank order, on every process (one process: [value])."""
        if not self.distributed:
            return [value]
        import torch.distributed as dist

        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, value)
        return out

    def close(self) -> None:
        """Leave the process group."""
        if self.distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def backend_for(device: str) -> str:
    """The process-group backend for training on ``device`` (see the module docstring)."""
    import torch

    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    return "cpu:gloo,cuda:nccl" if cuda else "gloo"


@contextmanager
def joined(device: str) -> Iterator[World]:
    """This process's :class:`World`, in the process group for training on ``device`` for the
    duration (a plain single process outside torchrun)."""
    w = world()
    w.init(backend_for(device) if w.distributed else "gloo")
    try:
        yield w
    finally:
        w.close()


def world() -> World:
    """This process's :class:`World`, from torchrun's environment variables."""
    try:
        return World(
            rank=int(os.environ.get("RANK", "0")),
            size=int(os.environ.get("WORLD_SIZE", "1")),
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        )
    except ValueError:
        return World()


def shard(items: list[T], w: World) -> list[T]:
    """This process's share of ``items``: every ``size``-th item from ``rank`` on. The split
    depends only on the order of ``items`` (sorted by the caller), so it is the same on every
    process and on every re-run."""
    return items[w.rank :: w.size]
