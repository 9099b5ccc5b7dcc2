"""Training a feed-forward stylizer on a style collection: adversarial (PatchGAN + DiffAugment)
plus Gram style loss toward one style image per sample, content loss and TV, after a content-only
warm-up. Work in progress toward issue 4: the loop, checkpoints and exact resume are here; the
CLI, model file, previews and loss-balance tuning are not yet.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from styleforge.augment import AugmentPolicy, diff_augment
from styleforge.features import load_encoder
from styleforge.losses import content_loss, gram_matrix, style_loss, total_variation
from styleforge.losses.functional import GanKind, GanLoss
from styleforge.nets import DiscriminatorConfig, PatchDiscriminator, StylizerConfig, StylizerNet
from styleforge.train.checkpoint import load_checkpoint, restore_rng, rng_state, save_checkpoint


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one stylizer training run (paths and devices are passed apart)."""

    steps: int = 1500
    size: int = 128
    batch: int = 4
    lr_g: float = 1e-3
    lr_d: float = 1e-4
    content_weight: float = 1.0
    style_weight: float = 1e-4
    adv_weight: float = 1e3
    tv_weight: float = 10.0
    gan_loss: GanKind = "hinge"
    warmup: int = 100
    ema_decay: float = 0.995
    checkpoint_every: int = 100
    seed: int = 0
    content_layer: str = "relu2_2"
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    net: StylizerConfig = field(default_factory=StylizerConfig.quick)
    disc: DiscriminatorConfig = field(default_factory=lambda: DiscriminatorConfig(width=32))
    augment: AugmentPolicy = field(default_factory=AugmentPolicy)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for checkpoints and model metadata)."""
        d = asdict(self)
        d["net"], d["disc"] = self.net.to_dict(), self.disc.to_dict()
        d["augment"] = self.augment.to_dict()
        d["style_layers"] = list(self.style_layers)
        return d


def random_crops(pool: Sequence[Tensor], n: int, size: int, gen: torch.Generator) -> Tensor:
    """``n`` random ``size``×``size`` crops, each from a random image of ``pool`` (each
    (1,3,H,W) with both sides ≥ size), with random horizontal flips. Returns (n,3,size,size)."""
    crops = []
    for _ in range(n):
        img = pool[int(torch.randint(len(pool), (1,), generator=gen))]
        h, w = img.shape[-2:]
        top = int(torch.randint(h - size + 1, (1,), generator=gen))
        left = int(torch.randint(w - size + 1, (1,), generator=gen))
        crop = img[..., top : top + size, left : left + size]
        if float(torch.rand(1, generator=gen)) < 0.5:
            crop = crop.flip(-1)
        crops.append(crop)
    return torch.cat(crops)


@dataclass
class TrainState:
    """Everything that changes during training; what a checkpoint saves."""

    generator: StylizerNet
    ema: StylizerNet
    disc: PatchDiscriminator
    opt_g: torch.optim.Adam
    opt_d: torch.optim.Adam
    data_gen: torch.Generator
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def to_checkpoint(self, config: TrainConfig) -> dict[str, Any]:
        """A dict of tensors and plain values (see :mod:`styleforge.train.checkpoint`)."""
        return {
            "step": self.step,
            "config": config.to_dict(),
            "generator": self.generator.state_dict(),
            "ema": self.ema.state_dict(),
            "disc": self.disc.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": rng_state(self.data_gen),
            "history": self.history,
        }

    def load(self, ckpt: dict[str, Any]) -> None:
        """Restore from :meth:`to_checkpoint` output."""
        self.generator.load_state_dict(ckpt["generator"])
        self.ema.load_state_dict(ckpt["ema"])
        self.disc.load_state_dict(ckpt["disc"])
        self.opt_g.load_state_dict(ckpt["opt_g"])
        self.opt_d.load_state_dict(ckpt["opt_d"])
        restore_rng(self.data_gen, ckpt["rng"])
        self.step = int(ckpt["step"])
        self.history = list(ckpt["history"])


def new_state(config: TrainConfig, device: torch.device) -> TrainState:
    """Fresh networks and optimisers, seeded by ``config.seed``."""
    torch.manual_seed(config.seed)
    gen = StylizerNet(config.net).to(device)
    disc = PatchDiscriminator(config.disc).to(device)
    ema = copy.deepcopy(gen).requires_grad_(False)
    return TrainState(
        generator=gen,
        ema=ema,
        disc=disc,
        opt_g=torch.optim.Adam(gen.parameters(), lr=config.lr_g, betas=(0.5, 0.999)),
        opt_d=torch.optim.Adam(disc.parameters(), lr=config.lr_d, betas=(0.5, 0.999)),
        data_gen=torch.Generator().manual_seed(config.seed),
    )


def train_stylizer_loop(
    config: TrainConfig,
    photos: Sequence[Tensor],
    styles: Sequence[Tensor],
    device: torch.device,
    checkpoint: Path | None = None,
    resume: bool = False,
    stop_at: int | None = None,
    on_step: Callable[[TrainState], None] | None = None,
) -> TrainState:
    """Train until ``config.steps`` (or ``stop_at``); returns the final state.

    ``photos`` and ``styles`` are (1,3,H,W) images in [0,1] with both sides ≥ ``config.size``.
    With ``checkpoint``, state is saved there every ``checkpoint_every`` steps and at the end;
    ``resume`` continues exactly from it.
    """
    state = new_state(config, device)
    if resume and checkpoint is not None:
        state.load(load_checkpoint(checkpoint))
    encoder = load_encoder([*config.style_layers, config.content_layer], device=device)
    gan = GanLoss(config.gan_loss)
    aug_gen = state.data_gen
    end = min(config.steps, stop_at) if stop_at is not None else config.steps
    while state.step < end:
        photo = random_crops(photos, config.batch, config.size, state.data_gen).to(device)
        real = random_crops(styles, config.batch, config.size, state.data_gen).to(device)
        fake = state.generator(photo)
        logs: dict[str, float] = {"step": float(state.step)}
        adversarial = state.step >= config.warmup
        if adversarial:
            d_real = state.disc(diff_augment(real, config.augment, aug_gen))
            d_fake = state.disc(diff_augment(fake.detach(), config.augment, aug_gen))
            d_loss = gan.d(d_real, d_fake)
            state.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            state.opt_d.step()
            logs["d_loss"] = d_loss.item()
        with torch.no_grad():
            photo_feats = encoder(photo)
            real_feats = encoder(real)
            targets = [gram_matrix(real_feats[name]) for name in config.style_layers]
        feats = encoder(fake)
        c = config.content_weight * content_loss(
            feats[config.content_layer], photo_feats[config.content_layer]
        )
        loss = c
        logs["content"] = c.item()
        if adversarial:
            s = config.style_weight * style_loss([feats[n] for n in config.style_layers], targets)
            a = config.adv_weight * gan.g(state.disc(diff_augment(fake, config.augment, aug_gen)))
            t = config.tv_weight * total_variation(fake)
            loss = loss + s + a + t
            logs |= {"style": s.item(), "adv": a.item(), "tv": t.item()}
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"non-finite loss at step {state.step}")
        state.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        state.opt_g.step()
        _update_ema(state.ema, state.generator, config.ema_decay if adversarial else 0.0)
        state.history.append(logs)
        state.step += 1
        if on_step is not None:
            on_step(state)
        if checkpoint is not None and state.step % config.checkpoint_every == 0:
            save_checkpoint(state.to_checkpoint(config), checkpoint)
    if checkpoint is not None:
        save_checkpoint(state.to_checkpoint(config), checkpoint)
    return state


@torch.no_grad()
def _update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema ← decay·ema + (1−decay)·model, parameters and buffers alike."""
    for e, m in zip(ema.state_dict().values(), model.state_dict().values(), strict=True):
        if e.dtype.is_floating_point:
            e.lerp_(m, 1.0 - decay)
        else:
            e.copy_(m)
