"""Training a feed-forward stylizer on a style collection.

The generator objective is adversarial (spectral-norm PatchGAN on DiffAugmented crops of the
user's images) + Gram style loss toward *one style image per sample* (not a collection average,
which oversmooths) + content loss toward the input photo + total variation, after a content-only
warm-up that teaches the network to reproduce photos. :func:`train_stylizer_loop` is the loop;
:func:`train_stylizer` is the whole job (folders in, model file out) used by the CLI.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from styleforge import configs, images
from styleforge.augment import AugmentPolicy, diff_augment
from styleforge.distributed import World
from styleforge.errors import UserError
from styleforge.features import load_encoder
from styleforge.infer.apply import DEFAULT_PAINT_SIZE
from styleforge.losses import content_loss, gram_matrix, style_loss, total_variation
from styleforge.losses.functional import GanKind, GanLoss
from styleforge.nets import (
    AnyStylizer,
    AnyStylizerConfig,
    DiscriminatorConfig,
    PainterConfig,
    PatchDiscriminator,
    StylizerConfig,
    StylizerNet,
    build_stylizer,
    stylizer_config_from_dict,
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

Preset = Literal["quick", "standard", "max"]
PRESETS: tuple[str, ...] = ("quick", "standard", "max")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one stylizer training run (paths and devices are passed apart).

    Sizes: photos and style images are resized so their short side is ``pool_scale × size``,
    then random ``size``×``size`` crops are drawn, so a crop shows a part of a picture at about
    the scale the model is later applied to.

    ``style_target``: each sample's Gram target is that of a whole style image drawn at random
    (``image``, precomputed once) or of the random crop the discriminator also sees (``crop``).

    ``net``: a :class:`~styleforge.nets.PainterConfig` fine-tunes the painter prior (the
    presets' default: the network starts out painting, with the collection's mean style vector
    as its style, see :mod:`styleforge.prior`); a :class:`~styleforge.nets.StylizerConfig`
    trains the classic network from scratch (``--from-scratch``). ``paint_size``: the long side
    a trained model paints at by default when applied (recorded in the model file).

    The field defaults are the from-scratch ``quick`` preset, balanced by looking at previews on
    Hokusai's prints: content at relu4_2 with style weight 1e-4 lost the photo (paper and
    outlines only); relu3_3 with 1e-5 or 6e-5 gave only a paper tone; relu3_3 with 1.5e-4 gives
    the print look.
    """

    steps: int = 600
    size: int = 128
    batch: int = 4
    pool_scale: float = 2.0
    lr_g: float = 1e-3
    lr_d: float = 1e-4
    content_weight: float = 1.0
    style_weight: float = 1.5e-4
    adv_weight: float = 3e3
    tv_weight: float = 10.0
    gan_loss: GanKind = "hinge"
    warmup: int = 100
    ema_decay: float = 0.995
    checkpoint_every: int = 100
    preview_every: int = 100
    seed: int = 0
    content_layer: str = "relu3_3"
    style_target: Literal["image", "crop"] = "image"
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    net: AnyStylizerConfig = field(default_factory=StylizerConfig.quick)
    disc: DiscriminatorConfig = field(default_factory=lambda: DiscriminatorConfig(width=32))
    augment: AugmentPolicy = field(default_factory=AugmentPolicy)
    compile: bool = False
    paint_size: int = DEFAULT_PAINT_SIZE

    def __post_init__(self) -> None:
        for name in ("steps", "size", "batch", "checkpoint_every", "preview_every"):
            if getattr(self, name) < 1:
                raise UserError(f"{name.replace('_', ' ')} must be at least 1")
        if self.size < 32:
            raise UserError(f"training size must be at least 32 px, got {self.size}")
        for name in ("content_weight", "style_weight", "adv_weight", "tv_weight"):
            if not getattr(self, name) >= 0:
                raise UserError(f"{name.replace('_', ' ')} must be ≥ 0")
        if not (self.lr_g > 0 and self.lr_d > 0):
            raise UserError("learning rates must be positive")

    @property
    def pool_side(self) -> int:
        """The short side (px) photos and style images are resized to before cropping."""
        return max(self.size, round(self.size * self.pool_scale))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for checkpoints and model metadata)."""
        d = asdict(self)
        d["net"], d["disc"] = self.net.to_dict(), self.disc.to_dict()
        d["augment"] = self.augment.to_dict()
        d["style_layers"] = list(self.style_layers)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["net"] = stylizer_config_from_dict(d.get("net", {}))
        d["disc"] = DiscriminatorConfig.from_dict(d.get("disc", {}))
        d["augment"] = AugmentPolicy.from_dict(d.get("augment", {}))
        d["style_layers"] = tuple(d.get("style_layers", cls.style_layers))
        return configs.from_dict(cls, d)

    @classmethod
    def preset(cls, name: str, from_scratch: bool = False) -> TrainConfig:
        """``quick``: minutes on a 2-core CPU; ``standard`` and ``max``: for a GPU. Each
        fine-tunes the painter prior unless ``from_scratch``."""
        if name not in PRESETS:
            raise UserError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
        if from_scratch:
            return cls._scratch_preset(name)
        return cls(**PAINTER_PRESETS[name])

    @classmethod
    def _scratch_preset(cls, name: str) -> TrainConfig:
        if name == "standard":
            return cls(
                steps=20_000, size=256, batch=8, warmup=1000, net=StylizerConfig.standard(),
                disc=DiscriminatorConfig(width=64), checkpoint_every=1000, preview_every=500,
            )  # fmt: skip
        if name == "max":
            return cls(
                steps=60_000, size=384, batch=8, warmup=2000, net=StylizerConfig.max(),
                disc=DiscriminatorConfig(width=64, n_layers=4), checkpoint_every=2000,
                preview_every=1000,
            )  # fmt: skip
        return cls()


#: The presets that fine-tune the painter prior: no content warm-up (the prior already gives
#: back the photo, painted), a small learning rate (it must not forget how to paint), a style
#: weight 10× the from-scratch one (measured on the Hokusai prints, held-out photos: 1.5e-4
#: gave style gain 1.83, 5e-4 2.12, 1.5e-3 2.23 at content error 0.64 / 0.76 / 0.84).
PAINTER_PRESETS: dict[str, dict[str, Any]] = {
    "quick": dict(
        steps=300,
        size=160,
        batch=4,
        lr_g=2e-4,
        lr_d=1e-4,
        warmup=0,
        style_weight=1.5e-3,
        net=PainterConfig(),
        checkpoint_every=100,
        preview_every=50,
    ),
    "standard": dict(
        steps=5000,
        size=256,
        batch=8,
        lr_g=2e-4,
        lr_d=1e-4,
        warmup=0,
        style_weight=1.5e-3,
        net=PainterConfig(),
        disc=DiscriminatorConfig(width=64),
        checkpoint_every=500,
        preview_every=250,
    ),
    "max": dict(
        steps=20000,
        size=384,
        batch=8,
        lr_g=1e-4,
        lr_d=1e-4,
        warmup=0,
        style_weight=1.5e-3,
        net=PainterConfig(),
        disc=DiscriminatorConfig(width=64, n_layers=4),
        checkpoint_every=1000,
        preview_every=500,
    ),
}


def random_crops(
    pool: Sequence[Tensor],
    n: int,
    size: int,
    gen: torch.Generator,
    keep: slice | None = None,
    weights: Tensor | None = None,
) -> Tensor:
    """``n`` random ``size``×``size`` crops, each from a random image of ``pool`` (each
    (1,3,H,W) with both sides ≥ size), with random horizontal flips. Returns (n,3,size,size),
    or with ``keep`` only those rows (one process's share: the draws are made for all ``n``, so
    every process's generator stays in step). ``weights``: (len(pool),) how often each image
    is drawn (default: all alike)."""
    kept = range(n)[keep] if keep is not None else range(n)
    crops = []
    for i in range(n):
        if weights is None:
            img = pool[int(torch.randint(len(pool), (1,), generator=gen))]
        else:
            img = pool[int(torch.multinomial(weights, 1, generator=gen))]
        h, w = img.shape[-2:]
        top = int(torch.randint(h - size + 1, (1,), generator=gen))
        left = int(torch.randint(w - size + 1, (1,), generator=gen))
        flip = float(torch.rand(1, generator=gen)) < 0.5
        if i in kept:
            crop = img[..., top : top + size, left : left + size]
            crops.append(crop.flip(-1) if flip else crop)
    return torch.cat(crops)


@dataclass(frozen=True)
class Feedback:
    """Results the user liked and disliked (``styleforge tune --refine``): (1,3,H,W) images in
    [0,1], both sides ≥ the training size. The liked ones join the style images at a lower
    weight: a ``liked_share`` of the discriminator's real crops and of the Gram targets come
    from them. The disliked ones are shown to the discriminator as extra fakes, so the
    generator is pushed away from what they look like."""

    liked: Sequence[Tensor] = ()
    disliked: Sequence[Tensor] = ()
    liked_share: float = 0.25

    def __post_init__(self) -> None:
        if not 0.0 <= self.liked_share < 1.0:
            raise ValueError(f"liked_share must be in [0, 1), got {self.liked_share}")

    def style_weights(self, n_styles: int) -> Tensor | None:
        """How often each of the style images, then each liked image, is drawn: a
        (n_styles + len(liked),) vector summing to 1; ``None`` without liked images."""
        if not self.liked:
            return None
        share = self.liked_share
        return torch.tensor(
            [(1 - share) / n_styles] * n_styles + [share / len(self.liked)] * len(self.liked),
            dtype=torch.float64,
        )


class TrainState(GanState[AnyStylizer, PatchDiscriminator]):
    """Everything that changes during stylizer training; what a checkpoint saves."""

    KIND = "stylizer"


def new_state(
    config: TrainConfig,
    device: torch.device,
    photos: Sequence[Tensor] = (),
    styles: Sequence[Tensor] = (),
    start: Mapping[str, Tensor] | None = None,
) -> TrainState:
    """Fresh networks and optimisers, seeded by ``config.seed``. A painter-prior generator
    starts from the pretrained weights with the mean style vector of ``styles`` as its style
    and that of ``photos`` as its neutral ((1,3,H,W) images in [0,1]); with ``start`` (a model
    file's weights, for ``tune --refine``) the generator starts from those instead."""
    torch.manual_seed(config.seed)
    if start is not None:
        net = build_stylizer(config.net)
        net.load_state_dict(start)
    else:
        net = _initial_generator(config.net, photos, styles)
    gen = place(net, device)
    disc = place(PatchDiscriminator(config.disc), device)
    ema = copy.deepcopy(gen).requires_grad_(False)
    return TrainState(
        generator=gen,
        ema=ema,
        disc=disc,
        opt_g=torch.optim.Adam(gen.parameters(), lr=config.lr_g, betas=(0.5, 0.999)),
        opt_d=torch.optim.Adam(disc.parameters(), lr=config.lr_d, betas=(0.5, 0.999)),
        data_gen=torch.Generator().manual_seed(config.seed),
    )


def _initial_generator(
    net: AnyStylizerConfig, photos: Sequence[Tensor], styles: Sequence[Tensor]
) -> AnyStylizer:
    if not isinstance(net, PainterConfig):
        return StylizerNet(net)
    from styleforge import prior

    if not styles:
        raise ValueError("fine-tuning the painter prior needs the style images")
    with torch.no_grad():
        style = prior.style_vectors([images.tensor_to_pil(t) for t in styles]).mean(0)
        neutral = prior.neutral_vector([images.tensor_to_pil(t) for t in photos] or None)
    return prior.prior_painter(style, neutral)


def train_stylizer_loop(
    config: TrainConfig,
    photos: Sequence[Tensor],
    styles: Sequence[Tensor],
    device: torch.device,
    checkpoint: Path | None = None,
    resume: bool = False,
    stop_at: int | None = None,
    on_step: Callable[[TrainState], None] | None = None,
    stop: StopRequest | None = None,
    world: World = SINGLE,
    start: Mapping[str, Tensor] | None = None,
    feedback: Feedback | None = None,
) -> TrainState:
    """Train until ``config.steps`` (or ``stop_at``, or a stop request); returns the state.

    ``photos`` and ``styles`` are (1,3,H,W) images in [0,1] with both sides ≥ ``config.size``.
    ``start``: the generator's first weights (see :func:`new_state`); ``feedback``: the user's
    liked and disliked results (:class:`Feedback`).
    With ``checkpoint``, state is saved there every ``checkpoint_every`` steps and at the end;
    ``resume`` continues exactly from it. A NaN or infinite loss rolls back to the last good
    state with half the learning rate; a second one raises :class:`TrainingDiverged`.

    Under torchrun (``world``), ``config.batch`` is the global batch, split as in
    :func:`styleforge.train.sampler.train_sampler_loop`: a step is the same for any number of
    processes (up to float rounding), and only process 0 writes the checkpoint.
    """
    rows = world.rows(config.batch)
    state = new_state(config, device, photos, styles, start)
    last_good = start_from(state, config, checkpoint, resume, world)
    save_to = checkpoint if world.is_main else None
    encoder = load_encoder([*config.style_layers, config.content_layer], device=device)
    gen_train, disc_train = world.wrap(state.generator, device), world.wrap(state.disc, device)
    generator: Callable[[Tensor], Tensor] = gen_train
    if config.compile and device.type == "cuda":
        generator = torch.compile(gen_train)  # the GPU path only; CPU stays eager
    gan = GanLoss(config.gan_loss)
    fmt = memory_format(device)
    rng = state.data_gen
    feedback = feedback or Feedback()
    pool = [*styles, *feedback.liked]  # the style images, then the liked results
    draw = feedback.style_weights(len(styles))
    image_grams = (
        _image_grams(encoder, pool, config, device) if config.style_target == "image" else []
    )

    def augment(x: Tensor) -> Tensor:
        return diff_augment(x, config.augment, rng, rows=rows, of=config.batch)

    end = min(config.steps, stop_at) if stop_at is not None else config.steps
    while state.step < end and not world.any(stop is not None and stop.requested):
        photo = random_crops(photos, config.batch, config.size, rng, keep=rows)
        real = random_crops(pool, config.batch, config.size, rng, keep=rows, weights=draw)
        if draw is None:
            picks = torch.randint(len(styles), (config.batch,), generator=rng)[rows]
        else:
            picks = torch.multinomial(draw, config.batch, replacement=True, generator=rng)[rows]
        disliked = (
            random_crops(feedback.disliked, config.batch, config.size, rng, keep=rows)
            if feedback.disliked
            else None
        )
        photo = photo.to(device, memory_format=fmt)
        real = real.to(device, memory_format=fmt)
        logs: dict[str, float] = {"step": float(state.step)}
        adversarial = state.step >= config.warmup
        with autocast(device):
            fake = at_least_float32(generator(photo))
        if adversarial:
            with autocast(device):
                d_real = at_least_float32(disc_train(augment(real)))
                d_fake = at_least_float32(disc_train(augment(fake.detach())))
                if disliked is not None:  # what the user disliked counts as fake too
                    d_bad = at_least_float32(
                        disc_train(augment(disliked.to(device, memory_format=fmt)))
                    )
                    d_fake = torch.cat([d_fake, d_bad])
            d_loss = gan.d(d_real, d_fake)
            logs |= world.mean({"d_loss": d_loss.item()})
            if not math.isfinite(logs["d_loss"]):
                last_good = roll_back(state, config, last_good)
                continue
            state.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            state.opt_d.step()
        with torch.no_grad(), autocast(device):
            photo_feats = encoder(photo)
            real_feats = encoder(real) if adversarial and not image_grams else {}
        with autocast(device):
            feats = encoder(fake)
        c = config.content_weight * content_loss(
            feats[config.content_layer], photo_feats[config.content_layer]
        )
        loss = c
        g_logs = {"content": c.item()}
        if adversarial:
            if image_grams:
                targets = [layer[picks.to(device)] for layer in image_grams]
            else:
                targets = [gram_matrix(real_feats[n]) for n in config.style_layers]
            s = config.style_weight * style_loss([feats[n] for n in config.style_layers], targets)
            # D is called unwrapped and frozen: only the generator's gradients are averaged.
            state.disc.requires_grad_(False)
            with autocast(device):
                g_logits = at_least_float32(state.disc(augment(fake)))
            state.disc.requires_grad_(True)
            a = config.adv_weight * gan.g(g_logits)
            t = config.tv_weight * total_variation(fake)
            loss = loss + s + a + t
            g_logs |= {"style": s.item(), "adv": a.item(), "tv": t.item()}
        g_logs["loss"] = loss.item()
        logs |= world.mean(g_logs)
        if not math.isfinite(logs.pop("loss")):
            last_good = roll_back(state, config, last_good)
            continue
        state.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        state.opt_g.step()
        update_ema(state.ema, state.generator, config.ema_decay if adversarial else 0.0)
        last_good = finish_step(state, config, logs, last_good, save_to, on_step)
    if save_to is not None:
        save_checkpoint(state.to_checkpoint(config), save_to)
    return state


@torch.no_grad()
def _image_grams(
    encoder: nn.Module, styles: Sequence[Tensor], config: TrainConfig, device: torch.device
) -> list[Tensor]:
    """Per style layer, the Gram matrices of every whole style image: (S, C_l, C_l) float32."""
    per_image = []
    for image in styles:
        with autocast(device):
            feats = encoder(image.to(device))
        per_image.append([gram_matrix(feats[n])[0] for n in config.style_layers])
    return [torch.stack(layer) for layer in zip(*per_image, strict=True)]


def with_overrides(config: TrainConfig, **overrides: Any) -> TrainConfig:
    """``config`` with the non-``None`` overrides applied: the one place the CLI, the demo and
    the web app build a training config. A ``steps`` shorter than the preset's also shortens
    the content-only warm-up to at most half the run (``--steps 80`` trains adversarially for
    its last 40 steps instead of never leaving the warm-up), unless ``warmup`` is given."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if "steps" in given and "warmup" not in given:
        given["warmup"] = min(config.warmup, given["steps"] // 2)
    return replace(config, **given)
