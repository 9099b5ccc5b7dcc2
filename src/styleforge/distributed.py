"""Running under ``torchrun``: which process this is, and combining results across processes.

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (and the rendezvous variables)
for every process it starts. Without them styleforge runs as one process and nothing here
initialises ``torch.distributed``. The process group uses gloo on the CPU and NCCL on CUDA.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["World", "shard", "world"]

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
        """Join the process group (a no-op for a single process or when already joined)."""
        if not self.distributed:
            return
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend=backend, rank=self.rank, world_size=self.size)

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
