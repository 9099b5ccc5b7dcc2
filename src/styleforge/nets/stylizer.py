"""Feed-forward stylizer (Johnson et al., 2016, with the usual fixes) and its config.

Architecture: 9×9 conv in, two stride-2 3×3 convs, ``n_res`` residual blocks, two
nearest-neighbour-upsample + 3×3 conv stages (no transposed convs, so no checkerboard), 9×9 conv
out, sigmoid. Reflection padding and affine InstanceNorm + ReLU throughout. Images are float RGB
NCHW in [0,1] on both sides; any H×W of at least :data:`MIN_SIDE` px works, output shape ==
input shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from styleforge import configs
from styleforge.nets.blocks import ConvLayer, Norm, ResidualBlock, UpsampleConv

__all__ = ["MIN_SIDE", "StylizerConfig", "StylizerNet"]

#: Total downsampling factor of the encoder; inputs are reflection-padded to a multiple of it.
DOWNSAMPLE = 4
#: Smallest supported image side: the padded bottleneck must be ≥ 2 px for reflection padding.
MIN_SIDE = 5


@dataclass(frozen=True)
class StylizerConfig(configs.DictConfig):
    """Constructor config of :class:`StylizerNet`; JSON-able via :meth:`to_dict`.

    Args:
        width: channels after the input conv; the encoder then has width, 2·width, 4·width.
        n_res: number of residual blocks at 4·width channels and 1/4 resolution.
        norm: ``"instance"`` (affine InstanceNorm) or ``"none"``.
    """

    width: int = 32
    n_res: int = 5
    norm: Norm = "instance"

    def __post_init__(self) -> None:
        configs.check_ints(self, ("width",))
        configs.check_ints(self, ("n_res",), minimum=0)
        if self.norm not in ("instance", "none"):
            raise ValueError(f"norm must be 'instance' or 'none', got {self.norm!r}")

    @classmethod
    def quick(cls) -> StylizerConfig:
        """Small and fast (the CPU preset): channels 12/24/48, 3 residual blocks (≈ 160k
        parameters; as good as 16/32/64 on the quick preset's budget, and faster to apply)."""
        return cls(width=12, n_res=3)

    @classmethod
    def standard(cls) -> StylizerConfig:
        """The default: channels 32/64/128, 5 residual blocks (≈ 1.7M parameters)."""
        return cls(width=32, n_res=5)

    @classmethod
    def max(cls) -> StylizerConfig:
        """Largest preset: channels 48/96/192, 9 residual blocks (≈ 6.4M parameters)."""
        return cls(width=48, n_res=9)


class StylizerNet(nn.Module):
    """Image-to-image stylizer: (N,3,H,W) in [0,1] -> (N,3,H,W) in [0,1].

    Args:
        config: architecture; defaults to ``StylizerConfig()``. Kept as ``self.config`` so a
            saved model can be rebuilt with ``StylizerNet(StylizerConfig.from_dict(d))``.
    """

    def __init__(self, config: StylizerConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = configs.given_or_default(config, StylizerConfig)
        w, n = cfg.width, cfg.norm
        self.encoder = nn.Sequential(
            ConvLayer(3, w, 9, norm=n),
            ConvLayer(w, 2 * w, 3, stride=2, norm=n),
            ConvLayer(2 * w, 4 * w, 3, stride=2, norm=n),
        )
        self.residuals = nn.Sequential(*(ResidualBlock(4 * w, norm=n) for _ in range(cfg.n_res)))
        self.decoder = nn.Sequential(
            UpsampleConv(4 * w, 2 * w, norm=n),
            UpsampleConv(2 * w, w, norm=n),
            ConvLayer(w, 3, 9, norm=None, relu=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Stylize ``x`` (N,3,H,W) in [0,1] -> (N,3,H,W) in [0,1]; H, W ≥ :data:`MIN_SIDE`."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an (N,3,H,W) batch, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if min(h, w) < MIN_SIDE:
            raise ValueError(f"image sides must be at least {MIN_SIDE} px, got {h}×{w}")
        pad_h, pad_w = -h % DOWNSAMPLE, -w % DOWNSAMPLE
        # When traced (ONNX export) always pad, so the pad is recorded as a function of the input
        # size instead of being left out for an example that needs none; a zero pad is a no-op.
        if torch.jit.is_tracing() or pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        y = self.decoder(self.residuals(self.encoder(x)))
        return torch.sigmoid(y[..., :h, :w])
