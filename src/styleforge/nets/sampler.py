"""The sampler's networks: a DCGAN-shaped generator (latent -> image) and its discriminator.

Generator: latent (N, latent_dim) -> dense -> (N, C, 4, 4) -> ``log2(resolution / 4)`` stages of
nearest ×2 upsampling + 3×3 conv + normalisation + LeakyReLU -> 3×3 conv -> tanh, returned as
float RGB NCHW in [0,1] like every image in styleforge. Upsample + conv instead of DCGAN's
transposed convs avoids checkerboard artefacts. Normalisation is per-pixel feature normalisation
(``pixel``, as in ProGAN: no batch statistics, so train and eval behave alike, the EMA copy needs
no re-estimated statistics and a batch split across processes computes the same thing) or
DCGAN's BatchNorm (``batch``).

With ``sle`` the generator adds FastGAN's skip-layer excitation (Liu et al., ICLR 2021): the
4×4 and 8×8 maps gate, channel by channel, the maps three stages later (32 and 64 px at 64 px), so
the coarse layout reaches the fine layers in few steps; it costs almost nothing.

With ``compositions`` the generator holds a bank of that many compositions: the collection's
pictures shrunk to ``composition_side``² (area average), a buffer filled when training starts
and saved with the weights. A latent picks one (uniformly over the bank, by the normal CDF of its
first component) and mirrors it when its second component is positive; the composition, resized,
is added through a 1×1 conv to each map up to its side (4, 8 and 16 px for 16). The sampler is
still a function of the latent alone, but where the heads, the sky or the ground lie comes from
the collection instead of from a few hundred adversarial steps (issue #41): the training pulls
each image's shrunk copy toward its composition (:func:`~styleforge.losses.composition_match`)
and the discriminator asks for the detail.

Discriminator (``disc="conv"``): strided 4×4 convs with LeakyReLU(0.2) from the resolution down
to 4×4 (spectral norm on every conv, optional dropout), a minibatch standard-deviation channel
(it lets the discriminator see a collapsed batch) and a dense head to one logit per image.
``disc="projected"`` is :class:`~styleforge.nets.projected.ProjectedDiscriminator`, which judges
images in a frozen pretrained feature space (``features``: EfficientNet-Lite0 or VGG16; built by
:func:`build_sampler_disc`); ``projected+conv`` adds the pixel discriminator's logit to it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from styleforge import configs
from styleforge.runtime import at_least_float32

if TYPE_CHECKING:
    from styleforge.nets.projected import FeatureNet, ProjectedDiscriminator

__all__ = [
    "RESOLUTIONS", "SamplerConfig", "SamplerDiscriminator", "SamplerGenerator",
    "build_sampler_disc",
]  # fmt: skip

RESOLUTIONS: tuple[int, ...] = (64, 128, 256)
#: The sampler's discriminators (see :class:`SamplerConfig`).
DISCS: tuple[str, ...] = ("conv", "projected", "projected+conv")
_BASE = 4  # side of the first feature map


@dataclass(frozen=True)
class SamplerConfig(configs.DictConfig):
    """Constructor config of :class:`SamplerGenerator` and :class:`SamplerDiscriminator`.

    Args:
        resolution: output side in px, one of :data:`RESOLUTIONS`.
        latent_dim: size of the standard-normal latent vector.
        width: channels of the last generator stage (and first discriminator conv); each stage
            towards 4×4 doubles it, capped at ``max_width``.
        max_width: the channel cap.
        norm: generator normalisation, ``pixel`` or ``batch``.
        dropout: dropout probability in the discriminator (0 disables).
        spectral_norm: wrap the discriminator's layers in spectral normalisation.
        mbstd_group: group size of the discriminator's minibatch standard-deviation channel
            (1 disables it, making the discriminator batch-independent). Above 1 a logit
            depends on the other images of its batch, so a batch split across processes is
            not the same computation as the whole batch in one.
        sle: skip-layer excitation in the generator (FastGAN).
        disc: ``conv`` (pixels), ``projected`` (frozen pretrained features) or
            ``projected+conv`` (both: the feature scales' logits and the pixel one's).
        features: the projected discriminator's feature network: ``efficientnet``
            (EfficientNet-Lite0, fed the images at ``feature_size``) or ``vgg`` (VGG16 at the
            resolution).
        feature_size: the side (px) EfficientNet-Lite0 sees the images at; 0: twice the
            resolution, at most 256 (its cost grows with the square: 96 px for a 64 px
            sampler is about half a step's discriminator time of 128 px).
        upsample: how the generator doubles its maps: ``nearest`` (earlier versions) or
            ``bilinear`` (no blocky, grid-aligned structure for the conv after it to build on).
        layout: side (px) of a projected discriminator's layout judge
            (:class:`~styleforge.nets.projected.LayoutDiscriminator`: the picture shrunk to
            ``layout``², where its dark and light masses and its colours lie); 0: none. A
            power of two from 8 up to half the resolution.
        compositions: how many compositions the generator's bank holds (see the module
            docstring; training fills it with one per picture); 0: none.
        composition_side: their side (px): 4 or a power of two up to half the resolution.
    """

    resolution: int = 64
    latent_dim: int = 100
    width: int = 16
    max_width: int = 128
    norm: Literal["pixel", "batch"] = "pixel"
    dropout: float = 0.0
    mbstd_group: int = 4
    spectral_norm: bool = True
    sle: bool = False
    disc: Literal["conv", "projected", "projected+conv"] = "conv"
    features: Literal["efficientnet", "vgg"] = "efficientnet"
    feature_size: int = 0
    upsample: Literal["nearest", "bilinear"] = "nearest"
    layout: int = 0
    compositions: int = 0
    composition_side: int = 16

    def __post_init__(self) -> None:
        if self.resolution not in RESOLUTIONS:
            raise ValueError(
                f"resolution must be one of {', '.join(map(str, RESOLUTIONS))}, "
                f"got {self.resolution!r}"
            )
        configs.check_ints(self, ("latent_dim", "width", "max_width", "mbstd_group"))
        if self.norm not in ("pixel", "batch"):
            raise ValueError(f"norm must be 'pixel' or 'batch', got {self.norm!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.disc not in DISCS:
            raise ValueError(f"disc must be one of {', '.join(DISCS)}, got {self.disc!r}")
        if self.features not in ("efficientnet", "vgg"):
            raise ValueError(f"features must be 'efficientnet' or 'vgg', got {self.features!r}")
        if self.feature_size and not 32 <= self.feature_size <= 512:
            raise ValueError(f"feature_size must be 0 or 32 to 512, got {self.feature_size!r}")
        if self.upsample not in ("nearest", "bilinear"):
            raise ValueError(f"upsample must be 'nearest' or 'bilinear', got {self.upsample!r}")
        sides = [8 * 2**i for i in range(8) if 8 * 2**i <= self.resolution // 2]
        if self.layout and self.layout not in sides:
            raise ValueError(f"layout must be 0 or one of {sides}, got {self.layout!r}")
        if self.compositions < 0:
            raise ValueError(f"compositions must be ≥ 0, got {self.compositions!r}")
        if self.composition_side not in (4, *sides):
            raise ValueError(
                f"composition_side must be one of {', '.join(map(str, (4, *sides)))}, "
                f"got {self.composition_side!r}"
            )

    @property
    def feature_side(self) -> int:
        """The side (px) EfficientNet-Lite0 sees the images at (see ``feature_size``)."""
        return self.feature_size or min(2 * self.resolution, 256)

    @property
    def stages(self) -> int:
        """Number of ×2 stages between 4×4 and the resolution."""
        return int(math.log2(self.resolution // _BASE))

    def channels(self) -> list[int]:
        """Channels from the 4×4 map to the full resolution (``stages + 1`` entries)."""
        return [min(self.width * 2**i, self.max_width) for i in range(self.stages, -1, -1)]


class PixelNorm(nn.Module):
    """Scale each pixel's feature vector to unit RMS: (N,C,H,W) -> (N,C,H,W)."""

    def forward(self, x: Tensor) -> Tensor:
        """(N,C,H,W) -> (N,C,H,W)."""
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


def _norm(kind: str, channels: int) -> nn.Module:
    return PixelNorm() if kind == "pixel" else nn.BatchNorm2d(channels)


class SamplerGenerator(nn.Module):
    """Latents (N, latent_dim) -> images (N, 3, R, R) in [0,1] (R = ``config.resolution``)."""

    bank: Tensor  # (compositions, 3, s, s), with ``config.compositions``

    def __init__(self, config: SamplerConfig | None = None) -> None:
        super().__init__()
        cfg = config if config is not None else SamplerConfig()
        self.config = cfg
        chans = cfg.channels()
        self.dense = nn.Linear(cfg.latent_dim, chans[0] * _BASE * _BASE)
        self.stem = nn.Sequential(_norm(cfg.norm, chans[0]), nn.LeakyReLU(0.2))
        stages: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(chans):
            stages += [
                nn.Upsample(scale_factor=2, mode=cfg.upsample),
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=cfg.norm != "batch"),
                _norm(cfg.norm, c_out),
                nn.LeakyReLU(0.2),
            ]
        self.stages = nn.Sequential(*stages)
        self.to_rgb = nn.Conv2d(chans[-1], 3, 3, padding=1)
        # Skip-layer excitation: map i (side 4·2^i) gates map i + 3 (side 32·2^i).
        pairs = [(i, i + 3) for i in range(2) if i + 3 < len(chans)] if cfg.sle else []
        self.excite = nn.ModuleDict({
            str(dst): _Excite(chans[src], chans[dst]) for src, dst in pairs
        })  # fmt: skip
        self._sources = {src: dst for src, dst in pairs}
        # The composition bank and its 1×1 convs into the maps of side ≤ composition_side.
        self.compose = nn.ModuleDict()
        if cfg.compositions:
            side = cfg.composition_side
            self.register_buffer("bank", torch.zeros(cfg.compositions, 3, side, side))
            self.compose.update({
                str(i): nn.Conv2d(3, c, 1) for i, c in enumerate(chans) if _BASE * 2**i <= side
            })  # fmt: skip

    def composition(self, z: Tensor) -> Tensor:
        """Latents (N, latent_dim) -> their compositions (N,3,s,s) from the bank (s =
        ``composition_side``): entry ⌊Φ(z₀)·n⌋ of n, mirrored where z₁ > 0."""
        n = self.config.compositions
        if not n:
            raise ValueError("this generator holds no compositions")
        u = 0.5 * (1.0 + torch.erf(z[:, 0].float() / math.sqrt(2.0)))
        picked = self.bank[(u * n).long().clamp(0, n - 1)]
        return torch.where((z[:, 1] > 0).view(-1, 1, 1, 1), picked.flip(-1), picked)

    def forward(self, z: Tensor) -> Tensor:
        """(N, latent_dim) -> (N, 3, R, R) in [0,1]."""
        if z.ndim != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(
                f"expected latents of shape (N, {self.config.latent_dim}), got {tuple(z.shape)}"
            )
        x = self.stem(self.dense(z).view(z.shape[0], -1, _BASE, _BASE))
        if not self.excite and not self.compose:
            x = self.stages(x)
        else:
            shown = self.composition(z) if self.compose else None
            kept: dict[int, Tensor] = {}
            for i in range(self.config.stages + 1):
                for j in range(4 * (i - 1), 4 * i) if i > 0 else ():
                    x = self.stages[j](x)
                if shown is not None and str(i) in self.compose:
                    at = F.interpolate(shown, size=x.shape[-2:], mode="area")
                    x = x + self.compose[str(i)](at.to(x.dtype))
                if str(i) in self.excite:
                    x = x * self.excite[str(i)](kept.pop(i))
                if i in self._sources:
                    kept[self._sources[i]] = x
        return (torch.tanh(self.to_rgb(x)) + 1.0) * 0.5


class _Excite(nn.Module):
    """FastGAN's skip-layer excitation: (N,C_src,h,w) -> (N,C_dst,1,1) channel gates in (0,1)."""

    def __init__(self, c_src: int, c_dst: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.AdaptiveAvgPool2d(4), nn.Conv2d(c_src, c_dst, 4), nn.LeakyReLU(0.1),
            nn.Conv2d(c_dst, c_dst, 1), nn.Sigmoid(),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        """(N,C_src,h,w) -> (N,C_dst,1,1)."""
        return self.body(x)


class SamplerDiscriminator(nn.Module):
    """Images (N, 3, R, R) in [0,1] -> logits (N,)."""

    def __init__(self, config: SamplerConfig | None = None) -> None:
        super().__init__()
        cfg = config if config is not None else SamplerConfig()
        self.config = cfg
        chans = cfg.channels()[::-1]  # full resolution -> 4×4

        def sn(layer: nn.Module) -> nn.Module:
            return spectral_norm(layer) if cfg.spectral_norm else layer

        layers: list[nn.Module] = [sn(nn.Conv2d(3, chans[0], 3, padding=1))]
        layers.append(nn.LeakyReLU(0.2))
        for c_in, c_out in itertools.pairwise(chans):
            layers += [sn(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1))]
            layers.append(nn.LeakyReLU(0.2))
            if cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(
            sn(nn.Conv2d(chans[-1] + 1, chans[-1], 3, padding=1)),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            sn(nn.Linear(chans[-1] * _BASE * _BASE, 1)),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(N, 3, R, R) in [0,1] -> (N,) raw logits."""
        r = self.config.resolution
        if x.ndim != 4 or x.shape[1:] != (3, r, r):
            raise ValueError(f"expected an (N,3,{r},{r}) batch, got {tuple(x.shape)}")
        h = self.body(x * 2.0 - 1.0)
        std = _minibatch_std(h, self.config.mbstd_group)
        return self.head(torch.cat([h, std], dim=1)).squeeze(1)


def _minibatch_std(h: Tensor, group: int) -> Tensor:
    """(N, 1, H, W): the mean feature standard deviation over groups of g = min(group, N)
    images (image i with images i ± k·N/g); zeros unless g ≥ 2 divides N."""
    n, c, hh, ww = h.shape
    g = min(group, n)
    if n % g:
        g = 1
    if g < 2:
        return h.new_zeros(n, 1, hh, ww)
    y = at_least_float32(h).view(g, n // g, c, hh, ww)
    std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (n // g,)
    return std.repeat(g).view(n, 1, 1, 1).expand(n, 1, hh, ww).to(h.dtype)


def build_sampler_disc(
    config: SamplerConfig, features: FeatureNet | None = None
) -> SamplerDiscriminator | ProjectedDiscriminator:
    """The discriminator ``config.disc`` names; ``projected`` reads ``features`` (the frozen
    network ``config.features`` names, see :func:`~styleforge.train.sampler.feature_net`)."""
    if config.disc == "conv":
        return SamplerDiscriminator(config)
    from styleforge.nets.projected import LayoutDiscriminator, ProjectedDiscriminator

    if features is None:
        raise ValueError("a projected discriminator needs its frozen feature network")
    pixel = SamplerDiscriminator(config) if config.disc == "projected+conv" else None
    layout = LayoutDiscriminator(config.layout) if config.layout else None
    return ProjectedDiscriminator(
        config.resolution, features, width=config.width, pixel=pixel, layout=layout
    )
