"""The training configs of both models, their presets, and the one builder of each.

:class:`StylizerTrainConfig` (``styleforge train``) and :class:`SamplerTrainConfig`
(``styleforge train-sampler``) are frozen: a preset is a config, and ``with_overrides`` is how the
CLI, the demo and the web app change one (so they all follow the same rules). Paths and devices
are not part of a config; they are passed to the jobs apart.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any, Literal

from styleforge import configs
from styleforge.errors import UserError
from styleforge.losses.functional import GanKind
from styleforge.nets import (
    AnyStylizerConfig,
    DiscriminatorConfig,
    PainterConfig,
    StylizerConfig,
    stylizer_config_from_dict,
)
from styleforge.nets.sampler import RESOLUTIONS, SamplerConfig
from styleforge.train.augment import AugmentPolicy

__all__ = [
    "AUTO_WHOLE_BELOW",
    "FRAMINGS",
    "PAINTER_PRESETS",
    "PRESETS",
    "Framing",
    "PaintStageConfig",
    "Preset",
    "SamplerTrainConfig",
    "StylizerTrainConfig",
]

Preset = Literal["quick", "standard", "max"]
#: How a sampler sees the collection's pictures (see SamplerTrainConfig.framing).
Framing = Literal["crop", "whole", "auto"]
FRAMINGS: tuple[Framing, ...] = ("crop", "whole", "auto")
#: ``framing="auto"`` draws whole pictures when the collection's median aspect (width / height)
#: is below this: portrait-shaped pictures (busts, figures, vases), whose square crops would cut
#: the subject; landscapes and square pictures are cropped.
AUTO_WHOLE_BELOW = 0.9
PRESETS: tuple[str, ...] = ("quick", "standard", "max")


@dataclass(frozen=True)
class StylizerTrainConfig:
    """Hyper-parameters of one stylizer training run (paths and devices are passed apart).

    Sizes: photos and style images are resized so their short side is ``pool_scale × size``,
    then random ``size``×``size`` crops are drawn, so a crop shows a part of a picture at about
    the scale the model is later applied to.

    ``style_target``: each sample's Gram target is that of a whole style image drawn at random
    (``image``, precomputed once) or of the random crop the discriminator also sees (``crop``).

    ``net``: a :class:`~styleforge.nets.PainterConfig` fine-tunes the painter prior (the
    presets' default: the network starts out painting, with the collection's mean style vector
    as its style, see :mod:`styleforge.infer.prior`); a :class:`~styleforge.nets.StylizerConfig`
    trains the classic network from scratch (``--from-scratch``). ``paint_size``: the long side
    a trained model paints at by default when applied (recorded in the model file); ``None``:
    the scale it learned at, :attr:`learned_paint_size`.

    The field defaults are the from-scratch ``quick`` preset, balanced by looking at previews on
    Hokusai's prints: content at relu4_2 with style weight 1e-4 lost the photo (paper and
    outlines only); relu3_3 with 1e-5 or 6e-5 gave only a paper tone; relu3_3 with 1.5e-4 gives
    the print look.

    ``stability_weight``: weight of the temporal-stability term (Gupta et al. 2017, see
    :mod:`styleforge.video.stability`): the mean squared difference between the generator's
    output on a batch of photos and on a copy with a little noise and a shift of a few pixels
    (re-aligned). 0 (the default) turns it off; above 0 each step runs the generator on twice
    the photos. 1e8 is the suggested value: the quick preset for 150 steps on the Hokusai
    prints gave per-frame video (``bench/video.py``, 90 frames) a warping error of 0.0052
    instead of 0.0108, at style gain 2.70 instead of 2.84.
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
    stability_weight: float = 0.0
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
    paint_size: int | None = None

    def __post_init__(self) -> None:
        for name in ("steps", "size", "batch", "checkpoint_every", "preview_every"):
            if getattr(self, name) < 1:
                raise UserError(f"{name.replace('_', ' ')} must be at least 1")
        if self.size < 32:
            raise UserError(f"training size must be at least 32 px, got {self.size}")
        weights = ("content_weight", "style_weight", "adv_weight", "tv_weight", "stability_weight")
        for name in weights:
            if not getattr(self, name) >= 0:
                raise UserError(f"{name.replace('_', ' ')} must be ≥ 0")
        if not (self.lr_g > 0 and self.lr_d > 0):
            raise UserError("learning rates must be positive")

    @property
    def pool_side(self) -> int:
        """The short side (px) photos and style images are resized to before cropping."""
        return max(self.size, round(self.size * self.pool_scale))

    @property
    def learned_paint_size(self) -> int:
        """The long side (px) the model paints at when applied: ``paint_size``, else the long
        side of a 4:3 picture whose short side is :attr:`pool_side`, the scale the training
        crops were cut at, so strokes come out as big, relative to the picture, as they were
        learned. (Quick preset: 427. Painting the Monet model at 512 / 427 / 384 gave style
        gain 2.18 / 2.36 / 2.49: smaller strokes than learned read as less paint.)"""
        return self.paint_size if self.paint_size is not None else round(self.pool_side * 4 / 3)

    def settled_as(self, saved: StylizerTrainConfig) -> StylizerTrainConfig:
        """This config as ``saved``'s run settled it (a stylizer run works out nothing for
        itself: this config)."""
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for checkpoints and model metadata); ``paint_size`` resolved."""
        d = asdict(self)
        d["paint_size"] = self.learned_paint_size
        d["net"], d["disc"] = self.net.to_dict(), self.disc.to_dict()
        d["augment"] = self.augment.to_dict()
        d["style_layers"] = list(self.style_layers)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StylizerTrainConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["net"] = stylizer_config_from_dict(d.get("net", {}))
        d["disc"] = DiscriminatorConfig.from_dict(d.get("disc", {}))
        d["augment"] = AugmentPolicy.from_dict(d.get("augment", {}))
        d["style_layers"] = tuple(d.get("style_layers", cls.style_layers))
        return configs.from_dict(cls, d)

    @classmethod
    def preset(cls, name: str, from_scratch: bool = False) -> StylizerTrainConfig:
        """``quick``: minutes on a 2-core CPU; ``standard`` and ``max``: for a GPU. Each
        fine-tunes the painter prior unless ``from_scratch``."""
        if name not in PRESETS:
            raise UserError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
        if from_scratch:
            return cls._scratch_preset(name)
        return cls(**PAINTER_PRESETS[name])

    def with_overrides(self, **overrides: Any) -> StylizerTrainConfig:
        """This config with the non-``None`` overrides applied: the one place the CLI, the demo
        and the web app build a stylizer training config. A ``steps`` shorter than the preset's
        also shortens the content-only warm-up to at most half the run (``--steps 80`` trains
        adversarially for its last 40 steps instead of never leaving the warm-up) and brings
        ``preview_every`` down to at most ``steps``, unless those are given too."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if "steps" in given:
            given.setdefault("warmup", min(self.warmup, given["steps"] // 2))
            given.setdefault("preview_every", min(self.preview_every, given["steps"]))
        return replace(self, **given)

    @classmethod
    def _scratch_preset(cls, name: str) -> StylizerTrainConfig:
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
#: ``quick`` (issue #45) takes half the steps it did (300): 150 at 160 px with an EMA window
#: halved with the run (0.99^150 ≈ 0.995^300 ≈ 0.22: the saved average holds as much of the
#: prior as before). At 128 px it was 0.32× the time, but on the ukiyoe portraits KID went
#: from 0.775 to 0.865 and content error from 0.852 to 0.897 (lr_g 3e-4 instead of 2e-4
#: changed neither); bench/README.md (#45) compares old and new on the shared collections.
_PAINTER: dict[str, Any] = dict(lr_d=1e-4, warmup=0, style_weight=1.5e-3, net=PainterConfig())
PAINTER_PRESETS: dict[str, dict[str, Any]] = {
    "quick": _PAINTER | dict(
        steps=150, size=160, batch=4, lr_g=2e-4, ema_decay=0.99, checkpoint_every=50,
        preview_every=50,
    ),
    "standard": _PAINTER | dict(
        steps=5000, size=256, batch=8, lr_g=2e-4, disc=DiscriminatorConfig(width=64),
        checkpoint_every=500, preview_every=250,
    ),
    "max": _PAINTER | dict(
        steps=20000, size=384, batch=8, lr_g=1e-4, disc=DiscriminatorConfig(width=64, n_layers=4),
        checkpoint_every=1000, preview_every=500,
    ),
}  # fmt: skip


@dataclass(frozen=True)
class PaintStageConfig:
    """Hyper-parameters of a sampler's second stage (``steps = 0``: no stage).

    ``scale``: how many times larger the stage paints than the sampler draws (4: 64 -> 256 px).
    ``band``: the side (px, painted) of the cells whose mean colour the stage takes from its
    input (:class:`~styleforge.nets.stage.PaintStage`); the detail finer is painted.
    ``size``: side (px, at the painted scale) of the training crops. The weights are those of
    the stylizer's quick preset (content relu3_3 at 1, Gram 1.5e-3, adversarial 3e3, TV 10),
    with each crop's Gram target its own original's. The low frequencies need no term: the
    stage takes them from its input (:class:`~styleforge.nets.stage.PaintStage`; with a loss
    term instead, on the portraits, the Gram pulled every dark ground to the collection's
    mean beige).
    """

    steps: int = 0
    scale: int = 4
    band: int = 4
    size: int = 128
    batch: int = 4
    lr_g: float = 2e-4
    lr_d: float = 1e-4
    content_weight: float = 1.0
    style_weight: float = 1.5e-3
    adv_weight: float = 3e3
    tv_weight: float = 10.0
    ema_decay: float = 0.99
    checkpoint_every: int = 50
    seed: int = 0
    content_layer: str = "relu3_3"
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    disc: DiscriminatorConfig = field(default_factory=lambda: DiscriminatorConfig(width=32))
    augment: AugmentPolicy = field(default_factory=AugmentPolicy)

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise UserError("stage steps must be 0 (no stage) or more")
        if self.scale not in (2, 4, 8):
            raise UserError(f"stage scale must be 2, 4 or 8, got {self.scale}")
        if self.band < 1:
            raise UserError(f"stage band must be at least 1 px, got {self.band}")
        for name in ("size", "batch", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise UserError(f"stage {name.replace('_', ' ')} must be at least 1")
        if self.size % self.scale or self.size < 8 * self.scale:
            raise UserError(
                f"stage size must be a multiple of {self.scale}, at least {8 * self.scale}"
            )
        for name in ("content_weight", "style_weight", "adv_weight", "tv_weight"):
            if not getattr(self, name) >= 0:
                raise UserError(f"stage {name.replace('_', ' ')} must be ≥ 0")
        if not (self.lr_g > 0 and self.lr_d > 0):
            raise UserError("stage learning rates must be positive")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (checkpoints and the sampler file's training record)."""
        d = asdict(self)
        d["disc"], d["augment"] = self.disc.to_dict(), self.augment.to_dict()
        d["style_layers"] = list(self.style_layers)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PaintStageConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["disc"] = DiscriminatorConfig.from_dict(d.get("disc", {}))
        d["augment"] = AugmentPolicy.from_dict(d.get("augment", {}))
        d["style_layers"] = tuple(d.get("style_layers", cls.style_layers))
        return configs.from_dict(cls, d)


#: The R1 weight of the pixel discriminator (the projected one needs none).
_R1_CONV = 0.1
#: The quick preset's budget with the projected discriminator (64 px): 800 steps of 16 at
#: 0.45 s a step on a 2-core CPU, about 6 minutes, at a learning rate of 2e-3 for both networks
#: (10x the GAN default: in a few hundred steps the default's generator is still drawing
#: camouflage; at 2e-3 the portraits' KID at 500 steps is what 2e-4 reaches at 1500, and a
#: head with hair over a robe forms; bench/README.md, issue #41). 900 steps of 8 with
#: EfficientNet-Lite0 at 96 px (1.9x the steps a minute) drew van Gogh and Monet worse.
_QUICK_STEPS, _QUICK_BATCH, _QUICK_LR = 800, 16, 2e-3
#: The quick preset's paint stage: 200 steps of 4 crops of 128 px (about 2 minutes on a 2-core
#: CPU; on the portraits' held-out pictures, KID at 256 px 0.11 against bicubic's 1.29).
_QUICK_STAGE = 200


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
    ``paint_size``: the side (px) ``generate`` paints the images at by default with the painter
    prior in the collection's style (every sampler file records the collection's style vector;
    0: the network's own pixels unless ``generate --paint-size`` asks).
    ``framing``: ``crop`` cuts the square crops from each picture at its own aspect (a wide
    print gives a part of its scene to each crop); ``whole`` first squeezes each picture to a
    square, so every crop holds nearly the whole composition, and the sampler file records the
    collection's median aspect (width / height), at which ``generate`` draws its images;
    ``auto`` (the presets') is ``whole`` for a collection of portrait-shaped pictures (median
    aspect below :data:`AUTO_WHOLE_BELOW`) and ``crop`` otherwise (see :meth:`framing_for`).
    ``blur_sigma``: the discriminator sees real and generated images alike blurred by a
    Gaussian of this standard deviation (px at the resolution) at the start, fading linearly
    to none over the first ``blur_fade`` of the steps (after StyleGAN3's ``blur_init_sigma``):
    while it cannot judge edges and texture it judges the layout, so the composition is
    learned before the texture (without it the generator learns sharp flat-colour blobs first
    and never a head). 0 turns it off.
    ``compose``: the generator holds the collection's compositions (one per picture, shrunk to
    ``net.composition_side``², filled when training starts: :meth:`composed` sets
    ``net.compositions`` to the number of pictures), each latent draws one, and each generated
    image is pulled toward the composition it was drawn from with weight
    ``composition_weight`` (:func:`~styleforge.losses.composition_match`): the sampler draws
    the collection's kinds of composition (a head over shoulders) from the first steps, and
    the adversarial game has only the detail to find (issue #41).
    ``match_weight``: weight of the layout match (:func:`~styleforge.losses.layout_match`):
    the generator's batch, seen as ``match_side``² layouts, is paired one to one with the real
    crops of the step and pulled toward them; 0 turns it off.
    The defaults are the ``quick`` preset of earlier versions (64 px, pixel discriminator,
    minutes on a 2-core CPU); :meth:`preset` gives today's presets.
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
    paint_size: int = 0
    framing: Framing = "crop"
    blur_sigma: float = 0.0
    blur_fade: float = 0.5
    match_weight: float = 0.0
    match_side: int = 16
    compose: bool = False
    composition_weight: float = 10.0
    net: SamplerConfig = field(default_factory=SamplerConfig)
    augment: AugmentPolicy = field(default_factory=AugmentPolicy)
    stage: PaintStageConfig = field(default_factory=PaintStageConfig)

    def __post_init__(self) -> None:
        if not self.blur_sigma >= 0:
            raise UserError("blur sigma must be ≥ 0")
        if not self.match_weight >= 0:
            raise UserError("match weight must be ≥ 0")
        if not 2 <= self.match_side <= self.resolution:
            raise UserError(f"match side must be between 2 and {self.resolution}")
        if not 0 < self.blur_fade <= 1:
            raise UserError("blur fade must be in (0, 1]")
        if self.paint_size < 0 or 0 < self.paint_size < 8:
            raise UserError("paint size must be 0 (no painting) or at least 8 px")
        if self.framing not in FRAMINGS:
            raise UserError(f"framing must be one of {', '.join(FRAMINGS)}, got {self.framing!r}")
        for name in ("steps", "batch", "checkpoint_every", "preview_every", "kid_every",
                     "r1_every", "style_batch"):  # fmt: skip
            if getattr(self, name) < 1:
                raise UserError(f"{name.replace('_', ' ')} must be at least 1")
        if self.kid_samples < 2:
            raise UserError("kid samples must be at least 2")
        for name in ("style_weight", "r1_gamma", "composition_weight"):
            if not getattr(self, name) >= 0:
                raise UserError(f"{name.replace('_', ' ')} must be ≥ 0")
        if not (self.lr_g > 0 and self.lr_d > 0):
            raise UserError("learning rates must be positive")

    @property
    def resolution(self) -> int:
        """Side of the generated images in px."""
        return self.net.resolution

    def framing_for(self, aspects: Sequence[float]) -> Literal["crop", "whole"]:
        """The framing this run uses for pictures of these aspects (width / height)."""
        if self.framing != "auto":
            return self.framing
        portrait = bool(aspects) and statistics.median(aspects) < AUTO_WHOLE_BELOW
        return "whole" if portrait else "crop"

    def composed(self, pictures: int) -> SamplerTrainConfig:
        """With ``compose``, this config with a composition bank for ``pictures`` pictures
        (``net.compositions``); without, this config."""
        if not self.compose:
            return self
        return replace(self, net=replace(self.net, compositions=pictures))

    def settled_as(self, saved: SamplerTrainConfig) -> SamplerTrainConfig:
        """This config with what ``saved``'s run worked out from its collection rather than
        chose (the size of its composition bank): what a resume compares with the saved
        settings."""
        return self.composed(saved.net.compositions) if saved.net.compositions else self

    @property
    def pool_side(self) -> int:
        """The short side (px) the collection's pictures are resized to before cropping."""
        return max(self.resolution, round(self.resolution * self.pool_scale))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for checkpoints and model metadata)."""
        d = asdict(self)
        d["net"], d["augment"] = self.net.to_dict(), self.augment.to_dict()
        d["style_layers"] = list(self.style_layers)
        d["stage"] = self.stage.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SamplerTrainConfig:
        """Inverse of :meth:`to_dict` (a config from before the paint stage has none)."""
        d = dict(d)
        d["net"] = SamplerConfig.from_dict(d.get("net", {}))
        d["stage"] = PaintStageConfig.from_dict(d.get("stage", {}))
        d["augment"] = AugmentPolicy.from_dict(d.get("augment", {}))
        d["style_layers"] = tuple(d.get("style_layers", cls.style_layers))
        return configs.from_dict(cls, d)

    @classmethod
    def preset(cls, name: str, resolution: int | None = None) -> SamplerTrainConfig:
        """``quick``: 64 px in minutes on a 2-core CPU; ``standard`` and ``max``: for a GPU;
        ``classic``: the quick preset of earlier versions (pixel discriminator with R1, plain
        DCGAN generator, 1500 steps of 16), kept for comparison. ``resolution`` overrides the
        preset's (the network grows a stage per doubling)."""
        if resolution is not None and resolution not in RESOLUTIONS:
            raise UserError(
                f"--resolution {resolution} is not supported; choose "
                f"{', '.join(map(str, RESOLUTIONS))}"
            )
        # Every preset: the FastGAN-style generator against the projected discriminator on
        # frozen EfficientNet-Lite0 features, hinge loss, Adam (0, 0.99), no R1, the Gram loss
        # toward random collection pictures kept (it brings the textures the features do not
        # judge: KID 0.31 with it, 0.40 without, on the Hokusai prints). Painting is not the
        # default: by KID it helps on Monet and hurts on the prints (bench/README.md).
        fast = partial(SamplerConfig, sle=True, disc="projected", width=32, max_width=256)
        # Framing ``auto``: a collection of portrait-shaped pictures is drawn whole (square
        # crops of a bust cut its head or its shoulders; issue #41).
        common: dict[str, Any] = {
            "r1_gamma": 0.0, "gan_loss": "hinge", "beta1": 0.0, "framing": "auto",
        }  # fmt: skip
        if name == "classic":
            cfg = cls()
        elif name == "quick":
            cfg = cls(
                steps=_QUICK_STEPS, batch=_QUICK_BATCH, lr_g=_QUICK_LR, lr_d=_QUICK_LR,
                net=fast(), preview_every=100, checkpoint_every=100, kid_every=400,
                stage=PaintStageConfig(steps=_QUICK_STAGE), compose=True,
                **common,
            )  # fmt: skip
        elif name == "standard":
            cfg = cls(
                steps=30_000, batch=32, net=fast(resolution=128, width=32, max_width=512),
                checkpoint_every=2000, preview_every=1000, kid_every=2000, kid_samples=256,
                stage=PaintStageConfig(steps=3000, size=256, batch=8, checkpoint_every=500),
                **common,
            )  # fmt: skip
        elif name == "max":
            cfg = cls(
                steps=80_000, batch=32, net=fast(resolution=256, width=16, max_width=512),
                checkpoint_every=4000, preview_every=2000, kid_every=4000, kid_samples=256,
                stage=PaintStageConfig(steps=6000, size=256, batch=8, checkpoint_every=500),
                **common,
            )  # fmt: skip
        else:
            raise UserError(f"unknown preset {name!r}; choose from quick, standard, max, classic")
        if resolution is not None and resolution != cfg.net.resolution:
            # The feature network's side follows the resolution (the default's 2×, ≤ 256).
            cfg = replace(cfg, net=replace(cfg.net, resolution=resolution, feature_size=0))
        return cfg

    def with_overrides(
        self, *, latent_dim: int | None = None,
        disc: Literal["conv", "projected", "projected+conv"] | None = None,
        features: Literal["efficientnet", "vgg"] | None = None, generator: str | None = None,
        upsample: Literal["nearest", "bilinear"] | None = None, layout: int | None = None,
        stage_steps: int | None = None, **overrides: Any,
    ) -> SamplerTrainConfig:  # fmt: skip
        """This config with the non-``None`` overrides applied (``latent_dim``, ``disc``,
        ``features`` and ``generator`` are the network's): the one place the CLI, the demo and
        the web app build a sampler training config. A ``steps`` shorter than the preset's also
        brings ``preview_every`` and ``kid_every`` down to at most ``steps``, unless those are
        given too. ``disc``: ``projected``, ``projected+conv`` or ``conv`` (the pixel
        discriminator of earlier versions alone, which then gets its R1 penalty back unless
        ``r1_gamma`` is given); ``features``: the projected discriminator's feature network
        (``efficientnet`` or ``vgg``); ``generator``: ``fastgan`` (skip-layer excitation) or
        ``dcgan``; ``upsample``: the generator's ``nearest`` or ``bilinear`` doubling;
        ``layout``: the side of the projected discriminator's layout judge (0: none);
        ``stage_steps``: the paint stage's steps (0: no stage; default: the preset's, cut in
        proportion when ``steps`` is shorter than the preset's)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        net = self.net
        if latent_dim is not None:
            net = replace(net, latent_dim=latent_dim)
        if disc is not None:
            net = replace(net, disc=disc)
            given.setdefault("r1_gamma", _R1_CONV if disc == "conv" else 0.0)
        if features is not None:
            net = replace(net, features=features)
        if upsample is not None:
            net = replace(net, upsample=upsample)
        if layout is not None:
            try:
                net = replace(net, layout=layout)
            except ValueError as err:
                raise UserError(f"--layout: {err}") from None
        if generator is not None:
            if generator not in ("fastgan", "dcgan"):
                raise UserError(f"generator must be fastgan or dcgan, got {generator!r}")
            net = replace(net, sle=generator == "fastgan")
        if net != self.net:
            given["net"] = net
        if stage_steps is not None:
            given["stage"] = replace(self.stage, steps=stage_steps)
        elif "steps" in given and given["steps"] < self.steps and self.stage.steps:
            # A shorter run is shorter in both phases (a test's or a demo's budget).
            share = max(1, round(self.stage.steps * given["steps"] / self.steps))
            given["stage"] = replace(self.stage, steps=share)
        if "steps" in given:
            given.setdefault("preview_every", min(self.preview_every, given["steps"]))
            given.setdefault("kid_every", min(self.kid_every, given["steps"]))
        return replace(self, **given)
