"""VGG encoder with layers addressed by name, and the input preprocessing its weights expect.

Images enter as float RGB NCHW in [0,1]; the encoder's own preprocessing turns them into what the
weights were trained on. Mixing the two conventions up is the classic "grey output" bug, so the
preprocessing is chosen by the weights, never by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from styleforge.errors import UserError
from styleforge.features.weights import (
    VGG16_CONVS,
    VGG19_CONVS,
    StateDict,
    vgg16_state,
    vgg19_state_from_torchvision,
)

Arch = Literal["vgg16", "vgg19"]
Preprocessing = Literal["caffe", "torchvision"]

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class CaffePreprocess(nn.Module):
    """RGB [0,1] -> BGR [0,255] minus the ImageNet channel means (Caffe/Keras VGG weights)."""

    mean: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        """(N,3,H,W) RGB in [0,1] -> (N,3,H,W) BGR, mean-subtracted, 0-255 scale."""
        return x.flip(1) * 255.0 - self.mean


class TorchvisionPreprocess(nn.Module):
    """RGB [0,1] -> (x - ImageNet mean) / ImageNet std (torchvision weights)."""

    mean: Tensor
    std: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        """(N,3,H,W) RGB in [0,1] -> (N,3,H,W) normalised."""
        return (x - self.mean) / self.std


def layer_names(arch: Arch) -> list[str]:
    """All addressable layer names in network order: conv1_1, relu1_1, ..., pool5."""
    convs = VGG16_CONVS if arch == "vgg16" else VGG19_CONVS
    names: list[str] = []
    for i, (conv, _, _) in enumerate(convs):
        names += [conv, conv.replace("conv", "relu")]
        block = conv[4]
        last_in_block = i + 1 == len(convs) or convs[i + 1][0][4] != block
        if last_in_block:
            names.append(f"pool{block}")
    return names


@dataclass(frozen=True)
class EncoderSpec:
    """Which perceptual network to use. ``weights=None`` means the offline VGG16 default."""

    arch: Arch = "vgg16"
    weights: Path | None = None

    @property
    def preprocessing(self) -> Preprocessing:
        """The preprocessing the weights were trained with."""
        return "caffe" if self.arch == "vgg16" else "torchvision"


class VGGEncoder(nn.Module):
    """Frozen VGG cut after the deepest requested layer; returns the requested features by name.

    ``forward(x)`` takes (N,3,H,W) RGB in [0,1] and returns ``{name: (N,C_l,H_l,W_l)}``.
    """

    def __init__(
        self,
        arch: Arch,
        state: StateDict,
        layers: Sequence[str],
        preprocessing: Preprocessing,
        pool: Literal["max", "avg"] = "max",
    ) -> None:
        super().__init__()
        all_names = layer_names(arch)
        unknown = [name for name in layers if name not in all_names]
        if unknown or not layers:
            raise UserError(
                f"unknown {arch} layer(s) {', '.join(unknown) or '(none given)'}; "
                f"choose from {', '.join(all_names)}"
            )
        self.arch = arch
        self.layers = tuple(dict.fromkeys(layers))
        self.preprocess: nn.Module = (
            CaffePreprocess() if preprocessing == "caffe" else TorchvisionPreprocess()
        )
        deepest = max(all_names.index(name) for name in self.layers)
        self.names = all_names[: deepest + 1]
        modules: list[nn.Module] = []
        for name in self.names:
            if name.startswith("conv"):
                weight, bias = state[f"{name}.weight"], state[f"{name}.bias"]
                conv = nn.Conv2d(weight.shape[1], weight.shape[0], 3, padding=1)
                with torch.no_grad():
                    conv.weight.copy_(weight)
                    conv.bias.copy_(bias)  # type: ignore[union-attr]
                modules.append(conv)
            elif name.startswith("relu"):
                # In place is safe unless the conv output before it was asked for.
                modules.append(nn.ReLU(inplace=name.replace("relu", "conv") not in self.layers))
            else:
                modules.append(nn.MaxPool2d(2, 2) if pool == "max" else nn.AvgPool2d(2, 2))
        self.body = nn.ModuleList(modules)
        self.requires_grad_(False)
        self.eval()

    def cut(self, layers: Sequence[str]) -> VGGEncoder:
        """A frozen encoder for ``layers`` (none deeper than this one's deepest) with this
        one's weights, on its device: a shallower network without reading the weights again."""
        known = set(self.names)
        deeper = [name for name in layers if name not in known]
        if deeper:
            raise ValueError(f"this encoder stops at {self.names[-1]}: no {', '.join(deeper)}")
        state = {
            f"{name}.{key}": value.detach()
            for name, module in zip(self.names, self.body, strict=True)
            if name.startswith("conv")
            for key, value in module.state_dict().items()
        }
        preprocessing: Preprocessing = (
            "caffe" if isinstance(self.preprocess, CaffePreprocess) else "torchvision"
        )
        pool: Literal["max", "avg"] = (
            "avg" if any(isinstance(m, nn.AvgPool2d) for m in self.body) else "max"
        )
        cut = VGGEncoder(self.arch, state, layers, preprocessing, pool=pool)
        return _placed(cut, next(self.parameters()).device)

    def train(self, mode: bool = True) -> VGGEncoder:
        """The encoder is frozen: it always stays in eval mode."""
        return super().train(False)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """(N,3,H,W) RGB [0,1] -> dict of requested feature maps."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (N,3,H,W) RGB images, got shape {tuple(x.shape)}")
        h = self.preprocess(x)
        out: dict[str, Tensor] = {}
        wanted = set(self.layers)
        for name, module in zip(self.names, self.body, strict=True):
            h = module(h)
            if name in wanted:
                out[name] = h
        return out


def load_encoder(
    layers: Sequence[str],
    spec: EncoderSpec | None = None,
    device: torch.device | str = "cpu",
    pool: Literal["max", "avg"] = "max",
) -> VGGEncoder:
    """Build the frozen encoder for ``layers`` from offline weights, on ``device``."""
    spec = spec or EncoderSpec()
    if spec.arch == "vgg16":
        state = vgg16_state(spec.weights)
    elif spec.weights is None:
        raise UserError(
            "--encoder vgg19 needs --encoder-weights PATH (a torchvision vgg19 state dict); "
            "styleforge never downloads weights"
        )
    else:
        state = vgg19_state_from_torchvision(spec.weights)
    return _placed(VGGEncoder(spec.arch, state, layers, spec.preprocessing, pool=pool), device)


def loss_encoder(
    layers: Sequence[str], device: torch.device, vgg: VGGEncoder | None = None
) -> VGGEncoder:
    """The frozen VGG a loss needs for ``layers``: cut from ``vgg`` (an encoder the job has
    already loaded, e.g. for its evaluation) when that one reaches them, else loaded."""
    if vgg is not None and all(name in vgg.names for name in layers):
        return vgg.cut(layers)
    return load_encoder(layers, device=device)


def _placed(encoder: VGGEncoder, device: torch.device | str) -> VGGEncoder:
    """``encoder`` on ``device`` (channels-last on CUDA: faster convolutions on tensor cores)."""
    encoder = encoder.to(device)
    if torch.device(device).type == "cuda":
        encoder = encoder.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return encoder
