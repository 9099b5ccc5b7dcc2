"""Building blocks of the stylizer: reflection-padded convs, residual blocks, upsampling convs.

All blocks map float NCHW tensors to float NCHW tensors. Padding is by reflection so that the
borders of a stylized image look like its interior (zero padding draws dark frames).
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

Norm = Literal["instance", "none"]

__all__ = ["ConvLayer", "Norm", "ResidualBlock", "UpsampleConv", "make_norm"]


def make_norm(norm: Norm, channels: int) -> nn.Module:
    """Normalisation layer for ``channels`` feature maps: affine InstanceNorm or identity."""
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'instance' or 'none', got {norm!r}")


class ConvLayer(nn.Module):
    """Reflection pad + conv (+ norm + ReLU): (N,C_in,H,W) -> (N,C_out,ceil(H/s),ceil(W/s)).

    Args:
        in_ch, out_ch: channel counts.
        kernel: odd kernel size; the input is reflection-padded by ``kernel // 2``.
        stride: conv stride.
        norm: normalisation after the conv; with ``None`` the layer is a bare conv (with bias),
            as used for the output layer.
        relu: whether to apply ReLU after the norm.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int = 1,
        norm: Norm | None = "instance",
        relu: bool = True,
    ) -> None:
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"kernel must be odd, got {kernel}")
        self.pad = nn.ReflectionPad2d(kernel // 2)
        # A bias before an affine InstanceNorm is cancelled by the mean subtraction.
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, bias=norm != "instance")
        self.norm = make_norm(norm, out_ch) if norm is not None else nn.Identity()
        self.act: nn.Module = nn.ReLU(inplace=True) if relu else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """(N,C_in,H,W) -> (N,C_out,H',W')."""
        return self.act(self.norm(self.conv(self.pad(x))))


class ResidualBlock(nn.Module):
    """Two 3×3 conv-norm layers with an identity skip, no ReLU after the sum (Gross & Wilber).

    (N,C,H,W) -> (N,C,H,W).
    """

    def __init__(self, channels: int, norm: Norm = "instance") -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvLayer(channels, channels, 3, norm=norm, relu=True),
            ConvLayer(channels, channels, 3, norm=norm, relu=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(N,C,H,W) -> (N,C,H,W)."""
        return x + self.body(x)


class UpsampleConv(nn.Module):
    """Nearest-neighbour ×2 upsampling then a 3×3 conv-norm-ReLU: (N,C_in,H,W) -> (N,C_out,2H,2W).

    Used instead of transposed convolutions, which produce checkerboard artefacts
    (Odena et al., 2016).
    """

    def __init__(self, in_ch: int, out_ch: int, norm: Norm = "instance") -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = ConvLayer(in_ch, out_ch, 3, norm=norm, relu=True)

    def forward(self, x: Tensor) -> Tensor:
        """(N,C_in,H,W) -> (N,C_out,2H,2W)."""
        return self.conv(self.up(x))
