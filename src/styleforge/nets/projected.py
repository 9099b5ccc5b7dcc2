"""A projected discriminator for the sampler: it judges images in a frozen pretrained feature space.

After Sauer et al., "Projected GANs Converge Faster" (NeurIPS 2021): a discriminator that starts
from a pretrained network's features learns from a few dozen pictures what a discriminator on raw
pixels cannot, so the generator is pushed toward the collection's shapes (horizon, mountain,
head) and not only its palette. Two frozen feature networks ship offline:

- EfficientNet-Lite0 (:class:`~styleforge.features.efficientnet.EfficientNetFeatures`, Projected
  GAN's own choice; the default): 4 scales, about 1/40 of VGG16's cost per image;
- the VGG16 the losses use (:class:`VGGTaps`: ``relu2_2``, ``relu3_3``, ``relu4_3``; Kumari et
  al., CVPR 2022, found VGG-like ImageNet features among the most useful for 100-shot sets).

Structure, for (N,3,R,R) images in [0,1], with S feature scales (shallow to deep):

- cross-channel mixing (CCM): a fixed random 1×1 conv per scale to 64, 128, 256, 512 channels,
  so the discriminator cannot lean on a few dominant channels of the pretrained network;
- cross-scale mixing (CSM): a fixed random top-down path (3×3 conv, upsampling, added) so each
  scale also sees the deeper ones;
- per scale a small trained head that judges the whole picture: a 3×3 conv, spectral-norm 4×4
  stride-2 convs down to at most 4×4, LeakyReLU, and a conv over the whole map to one logit.
  One score per scale and picture (not per patch) asks for one composition per picture; patch
  scores let the generator tile several heads into one portrait.

Optionally (``layout``) a judge of the picture shrunk to a few pixels a side adds a logit for
the layout alone (:class:`LayoutDiscriminator`), and (``pixel``) a
discriminator on the pixels themselves adds one more: the
frozen features see the picture at stride 4 and coarser, so on their own they let the generator
keep a fine grid or stripes that no painting has; a small pixel discriminator sees them.

The logits of all scales are concatenated: (N, S), then the layout's and the pixel one's. Only
the heads (and the layout and pixel discriminators) are trained; the feature network and the
mixing weights never change (the mixing weights are buffers drawn from a fixed seed, so a
checkpoint resumes exactly). The feature
network is held outside the module's state (a checkpoint does not carry its fixed weights) and
moves (device, dtype) with the module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from styleforge.features import VGGEncoder
from styleforge.features.efficientnet import EfficientNetFeatures

__all__ = [
    "MIXED_CHANNELS", "VGG_TAPS", "FeatureNet", "LayoutDiscriminator", "ProjectedDiscriminator",
    "VGGTaps",
]  # fmt: skip

#: The VGG16 layers :class:`VGGTaps` reads, shallow to deep (strides 2, 4, 8).
VGG_TAPS: tuple[str, ...] = ("relu2_2", "relu3_3", "relu4_3")
#: Channels after cross-channel mixing, per scale (shallow to deep).
MIXED_CHANNELS: tuple[int, ...] = (64, 128, 256, 512)
_MIX_SEED = 1234


class VGGTaps(nn.Module):
    """Frozen VGG16 features as a list: (N,3,H,W) in [0,1] -> [relu2_2, relu3_3, relu4_3]."""

    channels: tuple[int, ...] = (128, 256, 512)

    def __init__(self, encoder: VGGEncoder) -> None:
        super().__init__()
        missing = [name for name in VGG_TAPS if name not in encoder.layers]
        if missing:
            raise ValueError(f"the encoder does not return {', '.join(missing)}")
        self.encoder = encoder

    def forward(self, x: Tensor) -> list[Tensor]:
        """(N,3,H,W) -> [(N,128,H/2,W/2), (N,256,H/4,W/4), (N,512,H/8,W/8)]."""
        feats = self.encoder(x)
        return [feats[name] for name in VGG_TAPS]


#: The frozen feature networks a projected discriminator can read.
FeatureNet = EfficientNetFeatures | VGGTaps


def _fixed_conv(c_in: int, c_out: int, k: int, gen: torch.Generator) -> Tensor:
    """A (c_out, c_in, k, k) Kaiming-uniform weight drawn from ``gen``."""
    bound = (6.0 / (c_in * k * k)) ** 0.5
    return (torch.rand(c_out, c_in, k, k, generator=gen) * 2 - 1) * bound


def _head(channels: int, side: int, width: int) -> nn.Sequential:
    """(N,channels,side,side) -> (N,1): one score for the whole map."""
    layers: list[nn.Module] = [
        spectral_norm(nn.Conv2d(channels, width, 3, padding=1)), nn.LeakyReLU(0.2),
    ]  # fmt: skip
    c_in = width
    while side > 4:
        c_out = min(c_in * 2, 4 * width)
        layers += [spectral_norm(nn.Conv2d(c_in, c_out, 4, 2, 1)), nn.LeakyReLU(0.2)]
        c_in, side = c_out, side // 2
    layers += [spectral_norm(nn.Conv2d(c_in, 1, side)), nn.Flatten()]
    return nn.Sequential(*layers)


class LayoutDiscriminator(nn.Module):
    """Images (N,3,R,R) in [0,1] -> logits (N,), judging the picture shrunk to side × side
    (area average): where its dark and light masses and its colours lie, nothing finer.

    The frozen features see edges and texture first, and a generator that gets only their
    verdict learns sharp flat-colour blobs in no order before it learns a layout; this judge,
    on a few hundred numbers per picture, can only ask for the layout (a head over shoulders,
    a sky over a shore). Its body is a scale head's (:func:`_head`) on the shrunk pixels.
    """

    def __init__(self, side: int = 16, width: int = 64) -> None:
        super().__init__()
        self.side = side
        self.body = _head(3, side, width)

    def forward(self, x: Tensor) -> Tensor:
        """(N,3,R,R) in [0,1] -> (N,) raw logits."""
        small = F.adaptive_avg_pool2d(x, self.side)
        return self.body(small * 2.0 - 1.0).view(-1)


class ProjectedDiscriminator(nn.Module):
    """Images (N,3,R,R) in [0,1] -> logits (N, S): one per feature scale.

    Args:
        resolution: the image side R in px (at least 32).
        features: a frozen network mapping (N,3,R,R) in [0,1] to S maps, shallow to deep, each
            side halving, with a ``channels`` attribute (S ints); kept outside the module's
            parameters and state.
        width: channels of the heads' first conv (doubling per stride, capped at 4·width).
        pixel: an optional discriminator on the images themselves, (N,3,R,R) -> (N,) logits,
            trained with the heads.
        layout: an optional judge of the layout alone, (N,3,R,R) -> (N,) logits, trained with
            the heads.
    """

    def __init__(
        self,
        resolution: int,
        features: FeatureNet,
        width: int = 64,
        pixel: nn.Module | None = None,
        layout: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if resolution < 32:
            raise ValueError(f"a projected discriminator needs at least 32 px, got {resolution}")
        channels: Sequence[int] = features.channels
        if not 1 <= len(channels) <= len(MIXED_CHANNELS):
            raise ValueError(f"expected 1 to {len(MIXED_CHANNELS)} feature scales")
        self.resolution = resolution
        self._features = (features.eval().requires_grad_(False),)  # not a submodule
        mixed = MIXED_CHANNELS[: len(channels)]
        gen = torch.Generator().manual_seed(_MIX_SEED)
        for i, (c_in, c_out) in enumerate(zip(channels, mixed, strict=True)):
            self.register_buffer(f"ccm{i}", _fixed_conv(c_in, c_out, 1, gen))
        for i in range(len(mixed) - 1):
            self.register_buffer(f"csm{i}", _fixed_conv(mixed[i + 1], mixed[i], 3, gen))
        self.scales = len(mixed)
        where = next(features.parameters()).device  # the feature net may already be on a GPU
        with torch.no_grad():
            probe = torch.zeros(1, 3, resolution, resolution, device=where)
            sides = [f.shape[-1] for f in features(probe)]
        self.heads = nn.ModuleList(
            _head(c, side, width) for c, side in zip(mixed, sides, strict=True)
        )
        self.pixel = pixel
        self.layout = layout

    @property
    def features(self) -> FeatureNet:
        """The frozen feature network the discriminator reads."""
        return self._features[0]

    def _apply(
        self, fn: Callable[[Tensor], Tensor], recurse: bool = True
    ) -> ProjectedDiscriminator:
        super()._apply(fn, recurse)
        self.features._apply(fn, recurse)  # the feature network moves with the heads
        return self

    def mixed(self, x: Tensor) -> list[Tensor]:
        """The mixed feature maps of images (N,3,R,R), shallow to deep (64, 128, … channels)."""
        f = [F.conv2d(m, getattr(self, f"ccm{i}")) for i, m in enumerate(self.features(x))]
        out = [f[-1]]
        for i in range(self.scales - 2, -1, -1):
            deeper = F.conv2d(out[0], getattr(self, f"csm{i}"), padding=1)
            up = F.interpolate(deeper, size=f[i].shape[-2:], mode="nearest")
            out.insert(0, f[i] + up)
        return out

    def forward(self, x: Tensor) -> Tensor:
        """(N,3,R,R) in [0,1] -> (N,S) raw logits, one per scale (then the layout's and the
        pixel one's)."""
        r = self.resolution
        if x.ndim != 4 or x.shape[1:] != (3, r, r):
            raise ValueError(f"expected an (N,3,{r},{r}) batch, got {tuple(x.shape)}")
        logits = [head(m) for head, m in zip(self.heads, self.mixed(x), strict=True)]
        if self.layout is not None:
            logits.append(self.layout(x).view(-1, 1))
        if self.pixel is not None:
            logits.append(self.pixel(x).view(-1, 1))
        return torch.cat(logits, 1)
