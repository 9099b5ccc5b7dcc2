"""Training the unconditional sampler (latent -> image) on a style collection.

What makes a GAN work on 10–200 images, on top of the DCGAN shape: DiffAugment (colour,
translation, cutout) on every image the discriminator sees, real and fake, so it cannot
memorise the few real ones; spectral norm and a lazy R1 penalty on real images to keep the
discriminator smooth; a minibatch-stddev channel against collapse; an EMA generator for
sampling; and, optionally, the product's Gram style loss between generated images and
collection images as an extra generator objective. :func:`train_sampler_loop` is the loop.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from styleforge import configs
from styleforge.augment import AugmentPolicy, diff_augment
from styleforge.distributed import World
from styleforge.errors import UserError
from styleforge.losses import gram_matrix, style_loss
from styleforge.losses.functional import GanKind, GanLoss
from styleforge.nets.sampler import (
    RESOLUTIONS,
    SamplerConfig,
    SamplerDiscriminator,
    SamplerGenerator,
)
from styleforge.runtime import at_least_float32, autocast, memory_format, place
from styleforge.train.checkpoint import save_checkpoint
from styleforge.train.common import (
    SINGLE,
    GanState,
    StopRequest,
    finish_step,
    roll_back,
    start_from,
    update_ema,
)
from styleforge.train.stylizer import random_crops

__all__ = [
    "PREVIEW_SEEDS",
    "SamplerState",
    "SamplerTrainConfig",
    "new_sampler_state",
    "style_rows",
    "train_sampler_loop",
]

#: Seeds of the fixed preview grid (the same images at every preview).
PREVIEW_SEEDS = tuple(range(16))


@dataclass(frozen=True)
class SamplerTrainConfig:
    """Hyper-parameters of one sampler training run (paths and devices are passed apart).

    Real images are the collection's pictures resized so their short side is
    ``pool_scale × resolution``, cut into random ``resolution``² crops with random flips.
    ``r1_gamma``: weight of the R1 penalty ``γ/2 · E‖∇D(x)‖²`` on (augmented) real images,
    applied every ``r1_every`` steps with its weight scaled by that interval (lazy R1).
    ``style_weight``: weight of the Gram style loss between generated images and random
    collection images (0 disables). It is computed on the first ``style_batch`` images of each
    generator batch only: the VGG pass costs more than both networks together at 64 px.
    ``style_weight`` is scaled for Gram matrices of 0–255 Caffe-preprocessed VGG features at
    the sampler's resolution (the loss is ~1e9–1e10 there).
    The defaults are the ``quick`` preset (64 px, minutes on a 2-core CPU).
    """

    steps: int = 1500
    batch: int = 16
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    gan_loss: GanKind = "bce"
    r1_gamma: float = 0.1
    r1_every: int = 4
    style_weight: float = 3e-10
    style_batch: int = 4
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1")
    pool_scale: float = 1.15
    ema_decay: float = 0.998
    checkpoint_every: int = 250
    preview_every: int = 250
    kid_every: int = 500
    kid_samples: int = 64
    seed: int = 0
    net: SamplerConfig = field(default_factory=SamplerConfig)
    augment: AugmentPolicy = field(default_factory=AugmentPolicy)

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "checkpoint_every", "preview_every", "kid_every",
                     "r1_every", "style_batch"):  # fmt: skip
            if getattr(self, name) < 1:
                raise UserError(f"{name.replace('_', ' ')} must be at least 1")
        if self.kid_samples < 2:
            raise UserError("kid samples must be at least 2")
        for name in ("style_weight", "r1_gamma"):
            if not getattr(self, name) >= 0:
                raise UserError(f"{name.replace('_', ' ')} must be ≥ 0")
        if not (self.lr_g > 0 and self.lr_d > 0):
            raise UserError("learning rates must be positive")

    @property
    def resolution(self) -> int:
        """Side of the generated images in px."""
        return self.net.resolution

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for checkpoints and model metadata)."""
        d = asdict(self)
        d["net"], d["augment"] = self.net.to_dict(), self.augment.to_dict()
        d["style_layers"] = list(self.style_layers)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SamplerTrainConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["net"] = SamplerConfig.from_dict(d.get("net", {}))
        d["augment"] = AugmentPolicy.from_dict(d.get("augment", {}))
        d["style_layers"] = tuple(d.get("style_layers", cls.style_layers))
        return configs.from_dict(cls, d)

    @classmethod
    def preset(cls, name: str, resolution: int | None = None) -> SamplerTrainConfig:
        """``quick``: 64 px in minutes on a 2-core CPU; ``standard`` and ``max``: for a GPU.
        ``resolution`` overrides the preset's (the network grows a stage per doubling)."""
        if resolution is not None and resolution not in RESOLUTIONS:
            raise UserError(
                f"--resolution {resolution} is not supported; choose "
                f"{', '.join(map(str, RESOLUTIONS))}"
            )
        if name == "quick":
            cfg = cls()
        elif name == "standard":
            cfg = cls(
                steps=30_000, batch=32, net=SamplerConfig(resolution=128,
                width=64, max_width=512), checkpoint_every=2000, preview_every=1000,
                kid_every=2000, kid_samples=256,
            )  # fmt: skip
        elif name == "max":
            cfg = cls(
                steps=80_000, batch=32, net=SamplerConfig(resolution=256, width=32,
                max_width=512), checkpoint_every=4000, preview_every=2000, kid_every=4000,
                kid_samples=256,
            )  # fmt: skip
        else:
            raise UserError(f"unknown preset {name!r}; choose from quick, standard, max")
        if resolution is not None:
            cfg = replace(cfg, net=replace(cfg.net, resolution=resolution))
        return cfg


class SamplerState(GanState[SamplerGenerator, SamplerDiscriminator]):
    """Everything that changes during sampler training; what a checkpoint saves."""

    KIND = "sampler"


def new_sampler_state(config: SamplerTrainConfig, device: torch.device) -> SamplerState:
    """Fresh networks and optimisers, seeded by ``config.seed``."""
    torch.manual_seed(config.seed)
    gen = place(SamplerGenerator(config.net), device)
    disc = place(SamplerDiscriminator(config.net), device)
    ema = copy.deepcopy(gen).eval().requires_grad_(False)
    betas = (config.beta1, 0.99)
    return SamplerState(
        generator=gen,
        ema=ema,
        disc=disc,
        opt_g=torch.optim.Adam(gen.parameters(), lr=config.lr_g, betas=betas),
        opt_d=torch.optim.Adam(disc.parameters(), lr=config.lr_d, betas=betas),
        data_gen=torch.Generator().manual_seed(config.seed),
    )


def _r1_penalty(disc: torch.nn.Module, real: Tensor) -> Tensor:
    """E‖∇ₓD(x)‖² over the batch, for (N,3,R,R) real images (float32)."""
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(at_least_float32(disc(x)).sum(), x, create_graph=True)
    return at_least_float32(grad).square().sum(dim=(1, 2, 3)).mean()


def style_rows(batch: int, n_style: int) -> list[int]:
    """The rows of a generator batch that get the style loss: ``n_style`` rows spread evenly
    over the batch, so data-parallel processes share the VGG work."""
    n = min(n_style, batch)
    return list(range(0, batch, batch // n))[:n]


def train_sampler_loop(
    config: SamplerTrainConfig,
    images: Sequence[Tensor],
    device: torch.device,
    checkpoint: Path | None = None,
    resume: bool = False,
    stop_at: int | None = None,
    on_step: Callable[[SamplerState], None] | None = None,
    stop: StopRequest | None = None,
    world: World = SINGLE,
) -> SamplerState:
    """Train until ``config.steps`` (or ``stop_at``, or a stop request); returns the state.

    ``images``: the collection as (1,3,H,W) tensors in [0,1] with both sides ≥ the resolution.
    Checkpoints, resume and NaN rollback work as in the stylizer's loop.

    Under torchrun (``world``), ``config.batch`` is the global batch: every process draws the
    same random numbers for the whole batch (crops, latents, augmentation) from the shared
    generator and computes its own rows; DDP averages the gradients, so a step is the step one
    process would take on the whole batch, for any number of processes. Only process 0 writes
    the checkpoint; logged values are means over the processes.
    """
    rows = world.rows(config.batch)
    state = new_sampler_state(config, device)
    last_good = start_from(state, config, checkpoint, resume, world)
    save_to = checkpoint if world.is_main else None
    gen_train, disc_train = world.wrap(state.generator, device), world.wrap(state.disc, device)
    gan = GanLoss(config.gan_loss)
    fmt = memory_format(device)
    rng = state.data_gen
    batch, res, zdim = config.batch, config.resolution, config.net.latent_dim
    # Global style rows -> this process's rows of its share, and their index among all.
    all_style = style_rows(batch, config.style_batch)
    mine = [(i - rows.start, k) for k, i in enumerate(all_style) if rows.start <= i < rows.stop]
    encoder = None
    style_grams: list[Tensor] = []
    if config.style_weight > 0:
        from styleforge.features import load_encoder

        encoder = load_encoder(config.style_layers, device=device)
        style_grams = _collection_grams(encoder, images, config, device)
    end = min(config.steps, stop_at) if stop_at is not None else config.steps
    while state.step < end and not world.any(stop is not None and stop.requested):
        real = random_crops(images, batch, res, rng, keep=rows).to(device, memory_format=fmt)
        z_d = torch.randn(batch, zdim, generator=rng)[rows].to(device)
        z_g = torch.randn(batch, zdim, generator=rng)[rows].to(device)
        picks = torch.randint(max(1, len(images)), (len(all_style),), generator=rng)

        def augment(x: Tensor) -> Tensor:
            return diff_augment(x, config.augment, rng, rows=rows, of=batch)

        # Discriminator: real vs generated, both augmented; lazy R1 on augmented reals.
        with torch.no_grad(), autocast(device):
            fake = at_least_float32(state.generator(z_d))
        real_aug = augment(real)
        with autocast(device):
            d_real = at_least_float32(disc_train(real_aug))
            d_fake = at_least_float32(disc_train(augment(fake)))
        d_loss = gan.d(d_real, d_fake)
        d_logs = {"d_real": d_real.mean().item(), "d_fake": d_fake.mean().item()}
        if config.r1_gamma > 0 and state.step % config.r1_every == 0:
            r1 = _r1_penalty(disc_train, real_aug)
            d_logs["r1"] = r1.item()
            d_loss = d_loss + 0.5 * config.r1_gamma * config.r1_every * r1
        d_logs["d_loss"] = d_loss.item()
        logs = {"step": float(state.step), **world.mean(d_logs)}
        if not math.isfinite(logs["d_loss"]):
            last_good = roll_back(state, config, last_good)
            continue
        state.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        state.opt_d.step()

        # Generator: fool the discriminator (+ optional Gram style loss toward random images).
        # D is called unwrapped and frozen: only the generator's gradients are averaged.
        state.disc.requires_grad_(False)
        with autocast(device):
            fake = at_least_float32(gen_train(z_g))
            g_logits = at_least_float32(state.disc(augment(fake)))
        state.disc.requires_grad_(True)
        g_loss = gan.g(g_logits)
        g_logs = {"g_adv": g_loss.item()}
        if encoder is not None:
            s = fake.new_zeros(())
            if mine:
                local = torch.tensor([r for r, _ in mine], device=device)
                with autocast(device):
                    feats = encoder(fake[local])
                idx = picks[[k for _, k in mine]].to(device)
                targets = [layer[idx] for layer in style_grams]
                # Mean over this process's style rows, weighted so that DDP's average over
                # the processes is the mean over all style rows of the batch.
                share = len(mine) / len(all_style) * world.size
                s = (config.style_weight * share) * style_loss(
                    [feats[n] for n in config.style_layers], targets
                )
            g_logs["style"] = s.item()
            g_loss = g_loss + s
        g_logs["g_loss"] = g_loss.item()
        logs |= world.mean(g_logs)
        if not math.isfinite(logs["g_loss"]):
            last_good = roll_back(state, config, last_good)
            continue
        state.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        state.opt_g.step()
        # EMA with a ramp-up: early on the average follows the generator closely.
        decay = min(config.ema_decay, (1 + state.step) / (10 + state.step))
        update_ema(state.ema, state.generator, decay)
        last_good = finish_step(state, config, logs, last_good, save_to, on_step)
    if save_to is not None:
        save_checkpoint(state.to_checkpoint(config), save_to)
    return state


@torch.no_grad()
def _collection_grams(
    encoder: torch.nn.Module,
    images: Sequence[Tensor],
    config: SamplerTrainConfig,
    device: torch.device,
) -> list[Tensor]:
    """Per style layer, the Gram matrices of every collection image at about the sampler's
    scale (short side = resolution): (S, C_l, C_l) float32."""
    from styleforge.images import resize_to

    per_image = []
    for image in images:
        small = resize_to(image, config.resolution, "short").to(device)
        with autocast(device):
            feats = encoder(small)
        per_image.append([gram_matrix(feats[n])[0] for n in config.style_layers])
    return [torch.stack(layer) for layer in zip(*per_image, strict=True)]
