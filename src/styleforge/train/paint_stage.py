"""A sampler's second stage: it paints each small composition at ``scale``× its side with the
collection's own strokes, paper and edges (issue #43).

A super-resolution GAN trained on the collection alone, from the pairs the collection gives
for free: each picture (short side ``scale × R``) and the same picture shrunk to ``R`` and
scaled back up bicubically (what the stage gets at ``generate`` time: a sampler's R px frame,
scaled up). The network (:class:`~styleforge.nets.stage.PaintStage`) is the painter prior's
transformer, started from the pretrained weights with the collection's mean style vector so
it paints from the first step, with the low band of its input put back: the layout, tone and
palette are the frame's, the finer detail the painter's. It learns, per crop of a pair,

- a perceptual term toward the original (VGG ``content_layer``,
  :func:`~styleforge.losses.content_loss`),
- the original crop's own Gram matrices (paired: each picture keeps its own surface),
- hinge adversarial against a patch discriminator on the originals' crops, both sides
  DiffAugment-ed (a few dozen pictures only), and total variation.

:func:`train_stage_loop` is the loop (the shared :func:`~styleforge.train.loop.train_steps`);
:func:`stage_pairs` makes the pairs and :func:`start_painter` the starting network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from styleforge import images
from styleforge.features import VGGEncoder, loss_encoder
from styleforge.losses import content_loss, style_loss
from styleforge.losses.functional import GanLoss, gram_matrix, total_variation
from styleforge.nets import PatchDiscriminator
from styleforge.nets.stage import PaintStage
from styleforge.runtime import at_least_float32, autocast, memory_format, place
from styleforge.train.config import PaintStageConfig
from styleforge.train.loop import (
    GanState,
    LoopRun,
    PhaseLoss,
    Share,
    frozen,
    train_steps,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "StageState",
    "degrade",
    "new_stage_state",
    "stage_pairs",
    "start_painter",
    "train_stage_loop",
]


class StageState(GanState[PaintStage, PatchDiscriminator]):
    """Everything that changes while the stage trains; what its checkpoint saves."""

    KIND = "paint-stage"


def degrade(picture: Tensor, scale: int) -> Tensor:
    """(1,3,H,W) -> (1,3,H,W): shrunk ``scale``× (Lanczos) and scaled back up
    (:func:`~styleforge.images.lift`), as a sampler's frame reaches the stage."""
    h, w = picture.shape[-2:]
    return images.lift(images.resize_tensor(picture, h // scale, w // scale), h, w)


def stage_pairs(pictures: Sequence[Tensor], side: int, scale: int) -> list[Tensor]:
    """Each picture (1,3,H,W) at short side ``side`` (a multiple of ``scale``; both sides cut
    to multiples of it) as a (1,6,h,w) pair: its degraded copy (:func:`degrade`) stacked on
    the original, so one crop cuts both at the same place."""
    out = []
    for t in pictures:
        big = images.resize_to(t, side, "short")
        h, w = big.shape[-2] // scale * scale, big.shape[-1] // scale * scale
        big = big[..., :h, :w]
        out.append(torch.cat([degrade(big, scale), big], dim=1))
    return out


class _Inputs(NamedTuple):
    """One step's rows: the degraded crops (n,3,S,S), their originals and the stage's output."""

    low: Tensor
    high: Tensor
    fake: Tensor


@dataclass(frozen=True)
class _StageSteps:
    config: PaintStageConfig
    state: StageState
    share: Share
    pairs: Sequence[Tensor]
    encoder: VGGEncoder
    device: torch.device

    def draw(self, step: int) -> _Inputs:
        """Paired crops (the same place in the degraded copy and the original) and the output."""
        from styleforge.train.data import random_crops

        c, fmt = self.config, memory_format(self.device)
        both = random_crops(self.pairs, c.batch, c.size, self.state.data_gen, keep=self.share.rows)
        both = both.to(self.device, memory_format=fmt)
        low, high = both[:, :3], both[:, 3:]
        with autocast(self.device):
            fake = at_least_float32(self.share.generator(low))
        return _Inputs(low, high, fake)

    def d_loss(self, x: _Inputs, step: int) -> PhaseLoss:
        """Originals' crops vs the stage's output, both augmented (hinge)."""
        disc, augment = self.share.disc, self.share.augment
        with autocast(self.device):
            d_real = at_least_float32(disc(augment(x.high)))
            d_fake = at_least_float32(disc(augment(x.fake.detach())))
        loss = GanLoss("hinge").d(d_real, d_fake)
        return PhaseLoss(loss, {"d_loss": loss.item()})

    def g_loss(self, x: _Inputs, step: int) -> PhaseLoss:
        """Perceptual + own-Gram toward the original, adversarial, TV (and, logged only, the
        low-frequency error, which the stage's band keeps small by construction)."""
        c = self.config
        with torch.no_grad(), autocast(self.device):
            target = self.encoder(x.high)
        with autocast(self.device):
            feats = self.encoder(x.fake)
        content = c.content_weight * content_loss(feats[c.content_layer], target[c.content_layer])
        grams = [gram_matrix(target[n]) for n in c.style_layers]
        style = c.style_weight * style_loss([feats[n] for n in c.style_layers], grams)
        with torch.no_grad():  # logged only: the stage takes its low band from its input
            low = F.l1_loss(F.avg_pool2d(x.fake, c.scale), F.avg_pool2d(x.high, c.scale))
        with frozen(self.state.disc), autocast(self.device):
            logits = at_least_float32(self.state.disc(self.share.augment(x.fake)))
        adv = c.adv_weight * GanLoss("hinge").g(logits)
        tv = c.tv_weight * total_variation(x.fake)
        loss = content + style + adv + tv
        logs = {"content": content.item(), "style": style.item(), "lowfreq": low.item(),
                "adv": adv.item(), "tv": tv.item()}  # fmt: skip
        return PhaseLoss(loss, logs)

    def ema_decay(self, step: int) -> float:
        """The config's decay, ramped up over the first steps."""
        return min(self.config.ema_decay, (1 + step) / (10 + step))


def new_stage_state(
    config: PaintStageConfig, start: PaintStage, device: torch.device
) -> StageState:
    """The stage's networks and optimisers: the generator starts from ``start`` (the painter
    prior with the collection's style vector), the discriminator fresh from ``config.seed``."""
    torch.manual_seed(config.seed)
    disc = place(PatchDiscriminator(config.disc), device)
    lr = (config.lr_g, config.lr_d)
    return StageState.fresh(place(start, device), disc, lr, (0.5, 0.999), config.seed)


def start_painter(pictures: Sequence[Tensor], scale: int, band: int | None = None) -> PaintStage:
    """The painter prior with the mean style vector of ``pictures`` ((1,3,H,W) each) as its
    style and that of their degraded copies (:func:`degrade`) as its neutral."""
    from styleforge.infer import prior

    if not pictures:
        raise ValueError("the stage needs the collection's pictures")
    pil = [images.tensor_to_pil(t) for t in pictures]
    with torch.no_grad():
        style = prior.style_vectors(pil).mean(0)
        neutral = prior.neutral_vector([images.tensor_to_pil(degrade(t, scale)) for t in pictures])
    stage = PaintStage(scale=scale, band=band)
    stage.painter = prior.prior_painter(style, neutral)
    return stage


def train_stage_loop(
    config: PaintStageConfig,
    pairs: Sequence[Tensor],
    start: PaintStage,
    device: torch.device,
    checkpoint: Path | None = None,
    vgg: VGGEncoder | None = None,
    **run: Unpack[LoopRun[StageState]],
) -> StageState:
    """Train the stage on ``pairs`` (:func:`stage_pairs`) from ``start`` until
    ``config.steps``; checkpoints, exact resume and stop requests as
    :func:`~styleforge.train.loop.train_steps` (``run``: its :class:`LoopRun` keywords)."""
    state = new_stage_state(config, start, device)
    encoder = loss_encoder([*config.style_layers, config.content_layer], device, vgg)

    def steps_for(share: Share) -> _StageSteps:
        return _StageSteps(config, state, share, pairs, encoder, device)

    return train_steps(state, config, device, steps_for, checkpoint, **run)
