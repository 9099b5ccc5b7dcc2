"""Thin ``nn.Module`` wrappers around :mod:`styleforge.losses.functional` that hold their
targets as buffers (optimisation-based transfer, :mod:`styleforge.infer.transfer`, uses them)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from styleforge.losses import functional as LF

__all__ = ["ContentLoss", "StyleLoss", "TotalVariation"]


class StyleLoss(nn.Module):
    """Style loss against fixed target Gram matrices.

    Args:
        targets: per layer, a Gram matrix of shape (C_l, C_l), (1, C_l, C_l) or (N, C_l, C_l).
            Stored as detached copies in buffers ``target_0``, ``target_1``, ...
    """

    def __init__(self, targets: Sequence[Tensor]) -> None:
        super().__init__()
        if len(targets) == 0:
            raise ValueError("StyleLoss needs at least one target Gram matrix, got none")
        for i, t in enumerate(targets):
            if not isinstance(t, Tensor):
                raise TypeError(f"targets[{i}] must be a torch.Tensor, got {type(t).__name__}")
            if t.ndim not in (2, 3) or t.shape[-1] != t.shape[-2]:
                raise ValueError(
                    f"targets[{i}] must have shape (C, C) or (N, C, C), got {tuple(t.shape)}"
                )
            self.register_buffer(f"target_{i}", t.detach().clone())
        self.num_layers = len(targets)

    @property
    def targets(self) -> list[Tensor]:
        """The stored target Gram matrices, one per layer."""
        return [self.get_buffer(f"target_{i}") for i in range(self.num_layers)]

    def forward(self, outputs: Sequence[Tensor]) -> Tensor:
        """Style loss of per-layer feature maps (N, C_l, H_l, W_l) -> scalar."""
        return LF.style_loss(outputs, self.targets)


class ContentLoss(nn.Module):
    """Content loss against a fixed target feature map.

    Args:
        target: content features, shape (N, C, H, W); stored detached in buffer ``target``.
    """

    target: Tensor

    def __init__(self, target: Tensor) -> None:
        super().__init__()
        if not isinstance(target, Tensor):
            raise TypeError(f"target must be a torch.Tensor, got {type(target).__name__}")
        if target.ndim != 4:
            raise ValueError(f"target must have shape (N, C, H, W), got {tuple(target.shape)}")
        self.register_buffer("target", target.detach().clone())

    def forward(self, output: Tensor) -> Tensor:
        """Content loss of ``output`` (same shape as the target) -> scalar."""
        return LF.content_loss(output, self.target)


class TotalVariation(nn.Module):
    """Module form of :func:`~styleforge.losses.functional.total_variation`: (N,C,H,W) -> scalar."""

    def forward(self, x: Tensor) -> Tensor:
        """Total-variation penalty of ``x`` (N, C, H, W) -> scalar."""
        return LF.total_variation(x)
