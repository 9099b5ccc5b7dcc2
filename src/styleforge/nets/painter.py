"""The painter prior: a conditional-instance-norm stylizer and the style predictor that feeds it.

The architecture is that of Ghiasi et al., "Exploring the structure of a real-time, arbitrary
neural artistic stylization network" (BMVC 2017), in the narrow width Magenta ships for phones;
the weights (trained on tens of thousands of paintings) are read offline by
:mod:`styleforge.nets.prior_weights`.

- :class:`StylePredictor`: MobileNetV2 (ReLU6, TensorFlow "SAME" padding) -> global mean ->
  1×1 conv to a 100-d *style vector*. (N,3,256,256) RGB in [0,1] -> (N,100).
- :class:`PainterTransformer`: 9×9 conv, two stride-2 3×3 convs (8/16/32 channels), 5 residual
  blocks, two nearest-×2 + 3×3 conv stages and a 9×9 conv out, sigmoid; reflection padding.
  Every norm after the contracting part is a conditional instance norm whose scale and shift
  are linear in the style vector. (N,3,H,W) in [0,1] + (N,100) -> (N,3,H,W) in [0,1].
- :class:`PainterNet`: the stylizer a styleforge model file holds: the transformer with its own
  style vector (learned, initialised from a collection) and a *neutral* vector (the mean style
  of ordinary photos). ``strength`` s in [0, 1] conditions on ``base + s·(style − base)``, where
  ``base`` is the photo's own style vector (or the neutral one): 0 is close to the photo, 1 the
  style. (Strengths above 1 are made in :mod:`styleforge.infer.apply` by painting twice.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from styleforge import configs
from styleforge.nets.stylizer import MIN_SIDE  # the same 9×9 reflection pad: 5 px

__all__ = [
    "PREDICTOR_SIZE",
    "PainterConfig",
    "PainterNet",
    "PainterTransformer",
    "StylePredictor",
]

#: The style predictor sees style images at this square size (as it was trained).
PREDICTOR_SIZE = 256
#: Total downsampling of the transformer; inputs are reflection-padded to a multiple of it.
DOWNSAMPLE = 4
#: MobileNetV2 (alpha 1): (expansion, out channels, repeats, first stride) per stage.
MOBILENET_V2_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)  # fmt: skip


@dataclass(frozen=True)
class PainterConfig(configs.DictConfig):
    """Constructor config of :class:`PainterNet`; JSON-able via :meth:`to_dict`.

    Args:
        arch: always ``"painter"``: tells a model file's reader which network to build.
        style_dim: length of the style vector.
        widths: channels of the three contracting convs.
        n_res: residual blocks at the widest channel count.
    """

    arch: str = "painter"
    style_dim: int = 100
    widths: tuple[int, int, int] = (8, 16, 32)
    n_res: int = 5

    def __post_init__(self) -> None:
        if self.arch != "painter":
            raise ValueError(f"PainterConfig.arch must be 'painter', got {self.arch!r}")
        object.__setattr__(self, "widths", tuple(self.widths))  # a list works too
        if len(self.widths) != 3 or any(not isinstance(w, int) or w < 1 for w in self.widths):
            raise ValueError(f"widths must be three positive ints, got {self.widths!r}")
        configs.check_ints(self, ("style_dim",))
        configs.check_ints(self, ("n_res",), minimum=0)


class _ReflectConv(nn.Module):
    """Reflection pad by k//2, then a k×k conv (no padding)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, bias: bool = True) -> None:
        super().__init__()
        self.pad = k // 2
        self.conv = nn.Conv2d(cin, cout, k, stride, 0, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, [self.pad] * 4, mode="reflect"))


class CondInstanceNorm(nn.Module):
    """Instance norm (biased variance, eps 1e-5) with scale ``gamma(s)`` and shift ``beta(s)``,
    each a linear map of the style vector s (N,D). x: (N,C,H,W) -> (N,C,H,W)."""

    def __init__(self, channels: int, style_dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.gamma = nn.Linear(style_dim, channels)
        self.beta = nn.Linear(style_dim, channels)
        self.eps = eps

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        var = (x - mean).square().mean(dim=(2, 3), keepdim=True)
        gamma = self.gamma(style)[:, :, None, None]
        beta = self.beta(style)[:, :, None, None]
        return (x - mean) * torch.rsqrt(var + self.eps) * gamma + beta


class _CondResidual(nn.Module):
    def __init__(self, channels: int, style_dim: int) -> None:
        super().__init__()
        self.conv1 = _ReflectConv(channels, channels, 3, bias=False)
        self.norm1 = CondInstanceNorm(channels, style_dim)
        self.conv2 = _ReflectConv(channels, channels, 3, bias=False)
        self.norm2 = CondInstanceNorm(channels, style_dim)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        h = F.relu(self.norm1(self.conv1(x), style))
        return x + self.norm2(self.conv2(h), style)


class PainterTransformer(nn.Module):
    """The conditional stylizer: (N,3,H,W) in [0,1] and style (N,D) -> (N,3,H,W) in [0,1].
    Any H, W ≥ :data:`MIN_SIDE` (padded to a multiple of 4 inside, cropped back)."""

    def __init__(self, config: PainterConfig | None = None) -> None:
        super().__init__()
        cfg = config if config is not None else PainterConfig()
        a, b, c = cfg.widths
        d = cfg.style_dim
        self.contract = nn.ModuleList(
            [_ReflectConv(3, a, 9), _ReflectConv(a, b, 3, 2), _ReflectConv(b, c, 3, 2)]
        )
        self.residual = nn.ModuleList([_CondResidual(c, d) for _ in range(cfg.n_res)])
        self.expand = nn.ModuleList([_ReflectConv(c, b, 3), _ReflectConv(b, a, 3)])
        self.expand_norm = nn.ModuleList([CondInstanceNorm(b, d), CondInstanceNorm(a, d)])
        self.out = _ReflectConv(a, 3, 9)
        self.out_norm = CondInstanceNorm(3, d)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an (N,3,H,W) batch, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if min(h, w) < MIN_SIDE:
            raise ValueError(f"image sides must be at least {MIN_SIDE} px, got {h}×{w}")
        style = style.reshape(style.shape[0], -1).to(x.dtype)
        if style.shape[0] == 1 and x.shape[0] > 1:
            style = style.expand(x.shape[0], -1)
        pad_h, pad_w = -h % DOWNSAMPLE, -w % DOWNSAMPLE
        if torch.jit.is_tracing() or pad_h or pad_w:  # traced: record the pad for every size
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        y = x
        for conv in self.contract:
            y = F.relu(conv(y))
        for block in self.residual:
            y = block(y, style)
        for conv, norm in zip(self.expand, self.expand_norm, strict=True):
            y = F.interpolate(y, scale_factor=2.0, mode="nearest")
            y = F.relu(norm(conv(y), style))
        y = torch.sigmoid(self.out_norm(self.out(y), style))
        return y[..., :h, :w]


def _tf_same_pad(x: Tensor, k: int, stride: int) -> Tensor:
    """TensorFlow "SAME" zero padding: the odd pixel goes bottom/right."""
    h, w = x.shape[-2:]
    ph = max((-(-h // stride) - 1) * stride + k - h, 0)
    pw = max((-(-w // stride) - 1) * stride + k - w, 0)
    return F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])


class _SameConv(nn.Module):
    """Conv with TF "SAME" padding and an optional ReLU6 (batch norm folded into the bias)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
                 relu6: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.k, self.stride, self.relu6 = k, stride, relu6
        self.conv = nn.Conv2d(cin, cout, k, stride, 0, groups=groups)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(_tf_same_pad(x, self.k, self.stride) if self.k > 1 else x)
        return F.relu6(y) if self.relu6 else y


class _InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, expansion: int, stride: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.expand = _SameConv(cin, hidden, 1) if expansion != 1 else None
        self.depthwise = _SameConv(hidden, hidden, 3, stride, groups=hidden)
        self.project = _SameConv(hidden, cout, 1, relu6=False)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.skip else y


class StylePredictor(nn.Module):
    """Style image -> style vector: (N,3,256,256) RGB in [0,1] -> (N,D)."""

    def __init__(self, style_dim: int = 100) -> None:
        super().__init__()
        self.stem = _SameConv(3, 32, 3, 2)
        blocks: list[nn.Module] = []
        cin = 32
        for expansion, cout, repeats, stride in MOBILENET_V2_STAGES:
            for i in range(repeats):
                blocks.append(_InvertedResidual(cin, cout, expansion, stride if i == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = _SameConv(cin, 1280, 1)
        self.bottleneck = nn.Conv2d(1280, style_dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.head(self.blocks(self.stem(x)))
        return self.bottleneck(y.mean(dim=(2, 3), keepdim=True)).flatten(1)


class PainterNet(nn.Module):
    """A styleforge stylizer built on the painter prior: (N,3,H,W) in [0,1] -> (N,3,H,W).

    Holds the transformer, its ``style`` vector (D,) (a parameter: fine-tuning learns it) and a
    ``neutral`` vector (D,) (a buffer: the style of ordinary photos). ``forward(x, strength)``
    conditions the norms on ``neutral + strength·(style − neutral)``; strength is a float or a
    0-d / (N,) tensor, 0..2 in practice.
    """

    neutral: Tensor

    def __init__(self, config: PainterConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = configs.given_or_default(config, PainterConfig)
        self.transformer = PainterTransformer(cfg)
        self.style = nn.Parameter(torch.zeros(cfg.style_dim))
        self.register_buffer("neutral", torch.zeros(cfg.style_dim))

    def style_at(self, strength: float | Tensor = 1.0, own: Tensor | None = None) -> Tensor:
        """The conditioning vector(s) ``base + strength·(style − base)``, where ``base`` is the
        photo's ``own`` style vector (D,) or (N,D) when given, else :attr:`neutral`. A float or
        0-d strength gives (1,D) (or (N,D) with an (N,D) ``own``); an (N,) strength gives (N,D)."""
        base = self.neutral if own is None else own.to(self.style.dtype)
        base = base.reshape(-1, self.config.style_dim)
        s = torch.as_tensor(strength, dtype=self.style.dtype, device=self.style.device)
        return base + s.reshape(-1, 1) * (self.style[None] - base)

    def forward(
        self, x: Tensor, strength: float | Tensor = 1.0, own: Tensor | None = None
    ) -> Tensor:
        return self.transformer(x, self.style_at(strength, own))
