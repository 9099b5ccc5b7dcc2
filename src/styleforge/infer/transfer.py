"""Optimisation-based style transfer (Gatys, Ecker & Bethge 2016), with colour preservation
(Gatys et al. 2017, luminance-only transfer) and coarse-to-fine synthesis for large outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor
from tqdm import tqdm

from styleforge.errors import UserError
from styleforge.features import EncoderSpec, VGGEncoder, load_encoder
from styleforge.images import resize_tensor, resize_to, rgb_to_yiq, yiq_to_rgb
from styleforge.losses import ContentLoss, StyleLoss, TotalVariation, gram_matrix
from styleforge.losses.functional import weighted_gram_targets
from styleforge.runtime import autocast, memory_format


@dataclass(frozen=True)
class TransferConfig:
    """Settings of one transfer. Defaults were picked by looking at results on the shared data.

    Layers follow Gatys et al. (style relu1_1..relu5_1, content relu4_2); the loss weights are for
    the product's normalisations (Gram / C·H·W, content error / C·H·W) on Caffe-scaled VGG16.
    """

    size: int = 512
    steps: int = 150
    content_weight: float = 1.0
    style_weight: float = 1e-4
    tv_weight: float = 10.0
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    content_layer: str = "relu4_2"
    preserve_colors: bool = False
    init: Literal["content", "noise"] = "content"
    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    adam_lr: float = 0.02
    seed: int = 0
    style_scale: float = 1.0
    multiscale_from: int = 1024
    base_size: int = 512
    encoder: EncoderSpec = field(default_factory=EncoderSpec)
    amp: bool = True

    def __post_init__(self) -> None:
        if self.size < 16:
            raise UserError(f"--size {self.size}: must be at least 16 px")
        if self.steps < 1:
            raise UserError(f"--steps {self.steps}: must be at least 1")
        for name in ("content_weight", "style_weight", "tv_weight"):
            if getattr(self, name) < 0:
                raise UserError(f"--{name.replace('_', '-')} must not be negative")
        if self.style_scale <= 0:
            raise UserError("--style-scale must be positive")

    def scales(self) -> list[int]:
        """Long-side sizes to optimise at: one, or a coarse-to-fine ladder for large outputs."""
        if self.size < self.multiscale_from or self.base_size >= self.size:
            return [self.size]
        sizes, s = [], float(self.base_size)
        while s < self.size * 0.95:
            sizes.append(round(s))
            s *= 2**0.5
        return [*sizes, self.size]

    def steps_at(self, index: int) -> int:
        """Full steps at the first scale, half at each refinement scale."""
        return self.steps if index == 0 else max(self.steps // 2, 1)


@dataclass(frozen=True)
class LossTerms:
    """Weighted loss terms of one evaluation."""

    total: float
    content: float
    style: float
    tv: float


def _luminance_matched(style: Tensor, content_y: Tensor) -> Tensor:
    """Style luminance (1,1,H,W) with mean/std matched to the content's luminance."""
    y = rgb_to_yiq(style)[:, :1]
    y = (y - y.mean()) / (y.std() + 1e-6) * content_y.std() + content_y.mean()
    return y.clamp(0.0, 1.0)


class _Objective:
    """Content, style and TV loss of an image against targets fixed at one scale (the targets
    are encoded once, without gradients, into the loss modules' buffers)."""

    def __init__(
        self,
        encoder: VGGEncoder,
        config: TransferConfig,
        content: Tensor,
        styles: Sequence[Tensor],
        weights: Sequence[float],
        device: torch.device,
    ) -> None:
        self.encoder, self.config, self.device = encoder, config, device
        fmt = memory_format(device)
        with torch.no_grad(), autocast(device, config.amp):
            feats = encoder(content.to(device, memory_format=fmt))
            content_target = feats[config.content_layer].float()
            grams = []
            for style in styles:
                sf = encoder(style.to(device, memory_format=fmt))
                grams.append([gram_matrix(sf[layer]) for layer in config.style_layers])
        self.content_loss = ContentLoss(content_target)
        self.style_loss = StyleLoss(weighted_gram_targets(grams, weights))
        self.tv_loss = TotalVariation()

    def __call__(self, image: Tensor) -> tuple[Tensor, LossTerms]:
        """image (1,3,H,W) -> (scalar loss with graph, its weighted terms)."""
        cfg = self.config
        with autocast(self.device, cfg.amp):
            feats = self.encoder(image)
        c = cfg.content_weight * self.content_loss(feats[cfg.content_layer].float())
        s = cfg.style_weight * self.style_loss([feats[layer] for layer in cfg.style_layers])
        t = cfg.tv_weight * self.tv_loss(image.float())
        total = c + s + t
        terms = LossTerms(*(float(v.detach()) for v in (total, c, s, t)))
        return total, terms


def _optimise(
    param: Tensor,
    loss_fn: Callable[[], tuple[Tensor, LossTerms]],
    config: TransferConfig,
    steps: int,
    bar: tqdm,
    history: list[LossTerms],
) -> None:
    """Run ``steps`` optimiser iterations on ``param`` in place, updating the progress bar."""

    def evaluate() -> Tensor:
        with torch.no_grad():
            param.clamp_(0.0, 1.0)
        loss, terms = loss_fn()
        loss.backward()
        history.append(terms)
        if len(history) % 5 == 0:
            bar.set_postfix(style=f"{terms.style:.3g}", content=f"{terms.content:.3g}")
        return loss

    if config.optimizer == "lbfgs":
        opt = torch.optim.LBFGS(
            [param], lr=1.0, max_iter=steps, max_eval=steps, history_size=50,
            line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12,
        )  # fmt: skip
        done = len(history)

        def closure() -> Tensor:
            opt.zero_grad(set_to_none=True)
            loss = evaluate()
            bar.update(1)
            return loss

        opt.step(closure)
        bar.update(steps - (len(history) - done))  # L-BFGS may converge before the budget
    else:
        adam = torch.optim.Adam([param], lr=config.adam_lr)
        for _ in range(steps):
            adam.zero_grad(set_to_none=True)
            evaluate()
            adam.step()
            bar.update(1)
    with torch.no_grad():
        param.clamp_(0.0, 1.0)


def transfer(
    content: Tensor,
    styles: Sequence[Tensor],
    config: TransferConfig,
    style_weights: Sequence[float] | None = None,
    device: torch.device | None = None,
    encoder: VGGEncoder | None = None,
    progress: bool = True,
    history: list[LossTerms] | None = None,
) -> Tensor:
    """Paint ``content`` (1,3,H,W) in the style of ``styles`` (each (1,3,h,w)), all in [0,1].

    Returns (1,3,H',W') on the CPU with the long side ``config.size``. ``style_weights`` mixes the
    styles' Gram targets (default equal). ``history``, if given, receives every evaluation's terms.
    """
    if not styles:
        raise UserError("give at least one style image")
    device = device or torch.device("cpu")
    weights = list(style_weights) if style_weights is not None else [1.0] * len(styles)
    if encoder is None:
        layers = [*config.style_layers, config.content_layer]
        encoder = load_encoder(layers, config.encoder, device)
    history = history if history is not None else []
    scales = config.scales()
    total_steps = sum(config.steps_at(i) for i in range(len(scales)))
    generator = torch.Generator().manual_seed(config.seed)
    image: Tensor | None = None
    with tqdm(total=total_steps, disable=not progress, unit="step", desc="transfer") as bar:
        for index, size in enumerate(scales):
            bar.set_description(f"transfer {size}px")
            photo = resize_to(content, size)
            style_size = max(16, round(size * config.style_scale))
            style_imgs = [resize_to(s, style_size) for s in styles]
            if config.preserve_colors:
                photo_yiq = rgb_to_yiq(photo)
                target_in = photo_yiq[:, :1].expand(-1, 3, -1, -1)
                style_imgs = [
                    _luminance_matched(s, photo_yiq[:, :1]).expand(-1, 3, -1, -1)
                    for s in style_imgs
                ]
            else:
                target_in = photo
            objective = _Objective(encoder, config, target_in, style_imgs, weights, device)
            channels = 1 if config.preserve_colors else 3
            if image is not None:
                start = resize_tensor(image, *photo.shape[-2:])
            elif config.init == "noise":
                start = torch.rand((1, channels, *photo.shape[-2:]), generator=generator)
            else:
                start = target_in[:, :channels].clone()
            param = start.to(device).contiguous().requires_grad_(True)

            def loss_fn(p: Tensor = param, obj: _Objective = objective) -> tuple[Tensor, LossTerms]:
                x = p.expand(-1, 3, -1, -1) if p.shape[1] == 1 else p
                return obj(x.contiguous(memory_format=memory_format(p.device)))

            _optimise(param, loss_fn, config, config.steps_at(index), bar, history)
            image = param.detach().cpu()
    assert image is not None
    if config.preserve_colors:
        photo_yiq = rgb_to_yiq(resize_to(content, config.size))
        image = yiq_to_rgb(torch.cat([image, photo_yiq[:, 1:]], dim=1)).clamp(0, 1)
    return image
