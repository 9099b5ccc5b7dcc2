"""The unconditional sampler (latent -> image): its GAN steps, its training loop and its job.

What makes a GAN work on 10–200 images, on top of the DCGAN shape: DiffAugment (colour,
translation, cutout) on every image the discriminator sees, real and fake, so it cannot
memorise the few real ones; spectral norm and a lazy R1 penalty on real images to keep the
discriminator smooth; a minibatch-stddev channel against collapse; an EMA generator for
sampling; and, optionally, the product's Gram style loss between generated images and
collection images as an extra generator objective. :func:`train_sampler_loop` is the loop (the
shared :func:`~styleforge.train.loop.train_gan` with this model's two phases);
:func:`train_sampler` the whole job (a folder of pictures in, a sampler file out).

The job's run folder holds what a stylizer run's does (see :mod:`styleforge.train.job`), with
KID in the log every ``kid_every`` steps and a 4×4 grid of the EMA generator's images for fixed
seeds as the preview (so successive previews show the same latents maturing). KID is measured
the way ``styleforge evaluate`` measures a generated set: ``kid_samples`` images from fixed
seeds against the whole collection shrunk to the samples' resolution, on pooled VGG16 features
at 256 px.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import torch
from torch import Tensor, nn
from tqdm import tqdm

from styleforge import collection, images, sheets
from styleforge.errors import UserError
from styleforge.features import VGGEncoder, loss_encoder
from styleforge.features.efficientnet import EfficientNetFeatures
from styleforge.fileio import write_json
from styleforge.infer.sampler import STAGE_PREFIX, SamplerInfo, latents, to_frame
from styleforge.losses import composition_match, layout_match, style_loss
from styleforge.losses.functional import GanLoss
from styleforge.metrics.features import EvalSettings, FeatureBank
from styleforge.nets import PainterConfig
from styleforge.nets.projected import VGG_TAPS, FeatureNet, ProjectedDiscriminator, VGGTaps
from styleforge.nets.sampler import (
    SamplerConfig,
    SamplerDiscriminator,
    SamplerGenerator,
    build_sampler_disc,
)  # fmt: skip
from styleforge.runtime import at_least_float32, autocast, place
from styleforge.train.augment import gaussian_blur
from styleforge.train.config import PaintStageConfig, SamplerTrainConfig
from styleforge.train.data import image_grams, load_pool, random_crops, resize_pool
from styleforge.train.job import JobReport, JobRun, RunResult, TrainingJob, run_job
from styleforge.train.loop import GanState, LoopRun, PhaseLoss, Share, frozen, train_steps
from styleforge.train.paint_stage import StageState, stage_pairs, start_painter, train_stage_loop

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "KID_SEED_BASE",
    "MIN_IMAGES",
    "PREVIEW_SEEDS",
    "SAMPLER_COLUMNS",
    "SamplerState",
    "describe_sampler",
    "feature_net",
    "new_sampler_state",
    "paint_record",
    "style_rows",
    "train_sampler",
    "train_sampler_loop",
]

#: The paint stage's checkpoint in a sampler's run folder.
STAGE_CHECKPOINT = "stage_checkpoint.pt"
#: The paint stage's progress in a sampler's run folder: ``{"step": k, "steps": n}`` (what the
#: web app shows while the stage trains, after the sampler's last step).
STAGE_PROGRESS = "stage_progress.json"
#: Seeds of the fixed preview grid (the same images at every preview).
PREVIEW_SEEDS = tuple(range(16))
#: A sampler needs at least this many pictures (fewer can only be copied, not learned).
MIN_IMAGES = 4
#: Short side (px) of the copies of the collection the painter's style vector is read from.
PAINT_LOOK_SIDE = 256
#: KID samples use seeds KID_SEED_BASE, KID_SEED_BASE + 1, ... (apart from the preview seeds).
KID_SEED_BASE = 10_000
SAMPLER_COLUMNS = (
    "step", "d_loss", "g_loss", "g_adv", "style", "match", "r1", "d_real", "d_fake", "kid",
    "lr_scale", "composition",
)  # fmt: skip


class SamplerState(GanState[SamplerGenerator, SamplerDiscriminator | ProjectedDiscriminator]):
    """Everything that changes during sampler training; what a checkpoint saves."""

    KIND = "sampler"


def feature_net(
    net: SamplerConfig, device: torch.device, vgg: VGGEncoder | None = None
) -> FeatureNet:
    """The frozen feature network a projected discriminator reads (``net.features``):
    EfficientNet-Lite0 fed the images at ``net.feature_side``, or a VGG16 cut
    from ``vgg`` when that one reaches :data:`~styleforge.nets.projected.VGG_TAPS` (else one is
    loaded)."""
    if net.features == "vgg":
        return VGGTaps(loss_encoder(VGG_TAPS, device, vgg))
    features = EfficientNetFeatures(input_size=net.feature_side)
    return place(features, device, channels_last=True)


def new_sampler_state(
    config: SamplerTrainConfig, device: torch.device, vgg: VGGEncoder | None = None
) -> SamplerState:
    """Fresh networks and optimisers, seeded by ``config.seed``; a projected discriminator's
    feature network comes from :func:`feature_net`."""
    features = feature_net(config.net, device, vgg) if config.net.disc != "conv" else None
    torch.manual_seed(config.seed)
    # channels_last on every device: on the CPU too its convolutions run faster (the feature
    # network's depthwise ones most; bench/README.md, issue #41).
    gen = place(SamplerGenerator(config.net), device, channels_last=True)
    disc = place(build_sampler_disc(config.net, features), device, channels_last=True)
    lr, betas = (config.lr_g, config.lr_d), (config.beta1, 0.99)
    state = SamplerState.fresh(gen, disc, lr, betas, config.seed)
    state.ema.eval()
    return state


def _r1_penalty(disc: nn.Module, real: Tensor) -> Tensor:
    """E‖∇ₓD(x)‖² over the batch, for (N,3,R,R) real images (float32)."""
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(at_least_float32(disc(x)).sum(), x, create_graph=True)
    return at_least_float32(grad).square().sum(dim=(1, 2, 3)).mean()


def style_rows(batch: int, n_style: int) -> list[int]:
    """The rows of a generator batch that get the style loss: ``n_style`` rows spread evenly
    over the batch, so data-parallel processes share the VGG work."""
    n = min(n_style, batch)
    return list(range(0, batch, batch // n))[:n]


class _Inputs(NamedTuple):
    """One step's inputs, this process's n rows: (n,3,R,R) real crops on the device, the
    generator's (n,3,R,R) images of this step (one pass, with its graph: the discriminator's
    phase reads them detached, the generator's phase backpropagates through them), and for
    each style row of the whole batch the collection image its Gram targets come from; with a
    composition bank, the (n,3,s,s) compositions the generated images were drawn from."""

    real: Tensor
    fake: Tensor
    picks: Tensor
    compositions: Tensor | None = None


@dataclass(frozen=True)
class _SamplerSteps:
    """The sampler's draw and its two steps over a fixed collection (see
    :func:`train_sampler_loop`) on this process's ``share``. ``mine``: (row in the share,
    index among all style rows) of its style rows."""

    config: SamplerTrainConfig
    state: SamplerState
    share: Share
    pool: Sequence[Tensor]
    encoder: VGGEncoder | None
    grams: list[Tensor]  # per style layer (len(pool), C, C)
    device: torch.device
    mine: list[tuple[int, int]]
    n_style: int

    def draw(self, step: int) -> _Inputs:
        """Real crops, the step's generated images and the style rows' targets. The generator
        runs once a step: both phases judge the same images (the discriminator's phase no
        longer pays a pass of its own: about a tenth of a CPU step)."""
        c, rng, rows = self.config, self.state.data_gen, self.share.rows
        real = random_crops(self.pool, c.batch, c.resolution, rng, keep=rows)
        z = torch.randn(c.batch, c.net.latent_dim, generator=rng)[rows].to(self.device)
        picks = torch.randint(max(1, len(self.pool)), (self.n_style,), generator=rng)
        with autocast(self.device):
            fake = at_least_float32(self.share.generator(z))
        real = real.to(self.device, memory_format=torch.channels_last)
        drawn = self.state.generator.composition(z) if c.net.compositions else None
        return _Inputs(real, fake, picks, drawn)

    def d_loss(self, x: _Inputs, step: int) -> PhaseLoss:
        """Real vs generated, both augmented; a lazy R1 penalty on the augmented reals."""
        c = self.config
        fake = x.fake.detach()
        real_aug = self.judged(x.real, step)
        with autocast(self.device):
            d_real = at_least_float32(self.share.disc(real_aug))
            d_fake = at_least_float32(self.share.disc(self.judged(fake, step)))
        d_loss = GanLoss(c.gan_loss).d(d_real, d_fake)
        logs = {"d_real": d_real.mean().item(), "d_fake": d_fake.mean().item()}
        if c.r1_gamma > 0 and step % c.r1_every == 0:
            r1 = _r1_penalty(self.share.disc, real_aug)
            logs["r1"] = r1.item()
            d_loss = d_loss + 0.5 * c.r1_gamma * c.r1_every * r1
        logs["d_loss"] = d_loss.item()
        return PhaseLoss(d_loss, logs)

    def g_loss(self, x: _Inputs, step: int) -> PhaseLoss:
        """Fool the discriminator (+ the optional Gram style loss toward random images)."""
        # D is called unwrapped and frozen: only the generator's gradients are averaged.
        fake = x.fake
        with frozen(self.state.disc), autocast(self.device):
            g_logits = at_least_float32(self.state.disc(self.judged(fake, step)))
        c = self.config
        g_loss = GanLoss(c.gan_loss).g(g_logits)
        logs = {"g_adv": g_loss.item()}
        if x.compositions is not None and c.composition_weight > 0:
            match = composition_match(fake, x.compositions)
            logs["composition"] = match.item()
            g_loss = g_loss + c.composition_weight * match
        if c.match_weight > 0:
            match = layout_match(fake, x.real, c.match_side)
            logs["match"] = match.item()
            g_loss = g_loss + c.match_weight * match
        if self.encoder is not None:
            s = self._style(fake, x.picks)
            logs["style"] = s.item()
            g_loss = g_loss + s
        logs["g_loss"] = g_loss.item()
        return PhaseLoss(g_loss, logs)

    def _style(self, fake: Tensor, picks: Tensor) -> Tensor:
        """The style loss of this process's style rows of ``fake``, weighted so that DDP's
        average over the processes is the mean over all style rows of the batch."""
        if not self.mine or self.encoder is None:
            return fake.new_zeros(())
        local = torch.tensor([r for r, _ in self.mine], device=self.device)
        with autocast(self.device):
            feats = self.encoder(fake[local])
        idx = picks[[k for _, k in self.mine]].to(self.device)
        targets = [layer[idx] for layer in self.grams]
        share = len(self.mine) / self.n_style * self.share.processes
        layers = self.config.style_layers
        return (self.config.style_weight * share) * style_loss([feats[n] for n in layers], targets)

    def blur(self, step: int) -> float:
        """The blur (σ, px) the discriminator's images get at ``step``: fading linearly from
        ``blur_sigma`` to 0 over the first ``blur_fade`` of the steps."""
        c = self.config
        return max(0.0, c.blur_sigma * (1.0 - step / (c.blur_fade * c.steps)))

    def judged(self, images: Tensor, step: int) -> Tensor:
        """What the discriminator sees of (n,3,R,R) images at ``step``: blurred, augmented."""
        return self.share.augment(gaussian_blur(images, self.blur(step)))

    def ema_decay(self, step: int) -> float:
        """The config's decay with a ramp-up: early on the average follows the generator."""
        return min(self.config.ema_decay, (1 + step) / (10 + step))


def train_sampler_loop(
    config: SamplerTrainConfig,
    images: Sequence[Tensor],
    device: torch.device,
    checkpoint: Path | None = None,
    *,
    vgg: VGGEncoder | None = None,
    **run: Unpack[LoopRun[SamplerState]],
) -> SamplerState:
    """Train until ``config.steps`` (or ``stop_at``, or a stop request); returns the state.

    ``images``: the collection as (1,3,H,W) tensors in [0,1] with both sides ≥ the resolution.
    ``vgg``: an encoder already loaded whose weights the style loss may share. Checkpoints,
    exact resume, NaN rollback and stop requests are :func:`~styleforge.train.loop.train_gan`'s,
    run as ``run`` (:class:`~styleforge.train.loop.LoopRun`) says.

    Under torchrun (``world``), ``config.batch`` is the global batch: every process draws the
    same random numbers for the whole batch (crops, latents, augmentation) from the shared
    generator and computes its own rows; DDP averages the gradients. Without batch-dependent
    layers (``net.mbstd_group=1``) a step is then the step one process would take on the
    whole batch, for any number of processes. The default minibatch-stddev channel is
    computed over each process's own rows, so there the step changes a little with the
    number of processes (the groups differ); what is learned stays the same in kind.
    """
    state = new_sampler_state(config, device, vgg)
    # A resumed run's compositions are its checkpoint's (the collection may have changed since).
    if config.net.compositions and not run.get("resume"):
        if config.net.compositions != len(images):
            raise ValueError(
                f"a bank of {config.net.compositions} compositions for {len(images)} pictures"
            )
        bank = composition_bank(images, config.net.composition_side).to(device)
        for net in (state.generator, state.ema):
            net.bank.copy_(bank)

    def steps_for(share: Share) -> _SamplerSteps:
        # Global style rows -> this process's rows of its share, and their index among all.
        every, rows = style_rows(config.batch, config.style_batch), share.rows
        mine = [(i - rows.start, k) for k, i in enumerate(every) if rows.start <= i < rows.stop]
        encoder, grams = None, []
        if config.style_weight > 0:
            encoder = loss_encoder(config.style_layers, device, vgg)
            small = resize_pool(images, config.resolution)  # at about the sampler's scale
            grams = image_grams(encoder, small, config.style_layers, device)
        return _SamplerSteps(config, state, share, images, encoder, grams, device, mine, len(every))

    return train_steps(state, config, device, steps_for, checkpoint, **run)


def composition_bank(images: Sequence[Tensor], side: int) -> Tensor:
    """The pictures (1,3,H,W) each -> their compositions (len(images),3,side,side): the
    centre square of each (the whole of a squeezed one), area-averaged to side²."""
    out = []
    for t in images:
        h, w = t.shape[-2:]
        k = min(h, w)
        top, left = (h - k) // 2, (w - k) // 2
        square = t[..., top : top + k, left : left + k].float()
        out.append(torch.nn.functional.adaptive_avg_pool2d(square, side).cpu())
    return torch.cat(out)


class KidProbe:
    """KID of the EMA generator's fixed-seed samples against the collection, measured as
    ``styleforge evaluate`` measures a generated set (collection shrunk to the resolution)."""

    def __init__(
        self,
        bank: FeatureBank,
        collection: Sequence[Tensor],
        resolution: int | None,
        samples: int,
        aspect: float = 1.0,
    ) -> None:
        """``collection``: the style images, (1,3,H,W) each, shrunk to a long side of
        ``resolution`` here (``None``: as given); ``aspect``: the frame the samples are
        stretched to first (:func:`~styleforge.infer.sampler.to_frame`)."""
        from styleforge.metrics.evaluate import matched_collection

        self.bank = bank
        self.collection = matched_collection(bank, collection, resolution)
        self.samples = samples
        self.aspect = aspect

    def measure(self, state: SamplerState) -> dict[str, float]:
        """KID (and its stderr) and the memorization figures of the EMA generator's samples
        for the fixed KID seeds vs the collection."""
        from styleforge.metrics.kid import kid
        from styleforge.metrics.memorization import memorization

        batch = _ema_images(state, range(KID_SEED_BASE, KID_SEED_BASE + self.samples))
        batch = to_frame(batch, self.aspect)
        pooled = self.bank.pooled(list(batch[:, None]))
        value, stderr = kid(pooled, self.collection)
        mem = memorization(pooled, self.collection)
        return {
            "kid": value,
            "kid_stderr": stderr,
            "memorization_median": mem["median"],
            "memorization_copies": float(mem["copies"]),
        }


@torch.no_grad()
def _ema_images(state: SamplerState, seeds: Sequence[int] | range) -> Tensor:
    """EMA generator images for ``seeds`` (latents as in ``infer.sampler.latents``)."""
    ema = state.ema.eval()
    device = next(ema.parameters()).device
    z = latents(seeds, ema.config.latent_dim)
    out = []
    for chunk in z.split(16):
        with autocast(device):
            out.append(ema(chunk.to(device)).float().cpu())
    return torch.cat(out).clamp(0, 1)


def _save_preview(state: SamplerState, run_dir: Path, aspect: float = 1.0) -> Path:
    grid = sheets.dream_grid(to_frame(_ema_images(state, PREVIEW_SEEDS), aspect), cols=4)
    images.save_image(grid, run_dir / "previews" / f"step_{state.step:06d}.png")
    return images.save_image(grid, run_dir / "preview.png")


def train_sampler(
    config: SamplerTrainConfig,
    style_dir: Path,
    output: Path,
    *,
    measure_kid: bool = True,
    **run: Unpack[JobRun],
) -> RunResult:
    """Learn to draw new images like those in ``style_dir``; write the sampler to ``output``.

    ``measure_kid``: log KID every ``kid_every`` steps and at the end. ``run``
    (:class:`~styleforge.train.job.JobRun`): ``run_dir`` holds previews, logs and checkpoints
    (default ``<output>.run``); ``resume`` continues that run from its checkpoint. Ctrl-C /
    SIGTERM (or ``stop.requested``, set from another thread) saves a checkpoint and returns
    with ``stopped_early``.

    Under torchrun (``world``) every process trains on its share of each batch (see
    :func:`train_sampler_loop`); process 0 checks the run folder, lists the collection and
    writes everything (checkpoints, logs, previews, KID, the sampler file).
    """
    job = TrainingJob.open(config, style_dir, output, **run)
    world = job.world
    config = job.config
    short = config.pool_side
    # ``auto`` framing is decided once the pictures' shapes are known: each picture keeps the
    # copies of both framings until then (they are small).
    framings: tuple[Literal["crop", "whole"], ...] = (
        ("crop", "whole") if config.framing == "auto" else (config.framing,)
    )
    measuring = measure_kid and world.is_main
    at_kid = min(config.resolution, EvalSettings().size) if measuring else None

    painting = world.is_main  # the painter's record is written by process 0
    stage = config.stage
    # The paint stage trains on process 0 alone, on the pictures at scale × the resolution.
    stage_side = stage.scale * config.resolution if stage.steps and world.is_main else None

    def keep(t: Tensor) -> _Kept:
        """The picture's copies a sampler run needs (see :class:`_Kept`)."""
        pooled: dict[str, Tensor] = {}
        small: dict[str, Tensor] = {}
        for kind in framings:
            if kind == "whole":  # squeezed to a square
                pooled[kind] = images.resize_tensor(t, short, short)
            else:
                pooled[kind] = images.resize_to(t, short, "short")
            if at_kid is not None:
                # Samples are compared at their frame: a crop sampler's R² squares with
                # pictures of long side R, a whole-picture one's frames (short side R) with
                # pictures of short side R.
                small[kind] = images.resize_to(t, at_kid, _KID_SIDE[kind])
        look = images.resize_to(t, PAINT_LOOK_SIDE, "short") if painting else None
        big = images.resize_to(t, stage_side, "short") if stage_side is not None else None
        return _Kept(pooled, small, look, t.shape[-1] / t.shape[-2], big)

    coll, kept = load_pool(style_dir, "a sampler", keep, job.max_pixels, world, _enough)
    framing = config.framing_for([k.aspect for k in kept])
    whole = framing == "whole"
    if config.framing == "auto" and world.is_main:
        shape = "portrait-shaped" if whole else "not portrait-shaped"
        print(f"framing: {framing} (the pictures are {shape})", file=sys.stderr)
    pool = [k.pool[framing] for k in kept]
    if job.resume and config.net.compositions:  # the bank is the checkpoint's
        if config.net.compositions != len(pool) and world.is_main:
            print(
                f"note: {style_dir} holds {len(pool)} usable pictures now; the resumed run "
                f"keeps the {config.net.compositions} compositions it started with",
                file=sys.stderr,
            )
    else:  # with ``compose``: one composition per picture
        config = config.composed(len(pool))
        job = replace(job, config=config)
    aspect = round(statistics.median(k.aspect for k in kept), 4) if whole else 1.0
    paint = paint_record([k.look for k in kept if k.look is not None], config.paint_size)
    bank = FeatureBank(device=job.device) if measuring else None  # the one VGG of the job
    probe = None
    if bank is not None:
        shrunk = [k.small[framing] for k in kept]
        side = None if whole else config.resolution
        probe = KidProbe(bank, shrunk, side, config.kid_samples, aspect)

    def loop(on_step: Callable[[SamplerState], None] | None) -> SamplerState:
        vgg = bank.encoder if bank is not None else None
        return train_sampler_loop(config, pool, job.device, job.checkpoint, vgg=vgg,
                                  **job.loop_run(on_step))  # fmt: skip

    report = JobReport(
        SAMPLER_COLUMNS, ("d_loss", "g_adv", "kid"),
        lambda state: _save_preview(state, job.run_dir, aspect),
        lambda _, measured: {k: round(v, 5) for k, v in measured.items()},
        partial(SamplerInfo, paint=paint, aspect=aspect, stage=stage_record(stage)),
        measure=probe.measure if probe is not None else None, measure_every=config.kid_every,
        finish=None if stage_side is None else partial(
            _train_stage, job, stage, [k.big for k in kept if k.big is not None],
            bank.encoder if bank is not None else None,
        ),
    )  # fmt: skip
    return run_job(job, coll, loop, report, job.progress)


#: The side a picture is shrunk by to be compared (KID) with a sampler's images, per framing.
_KID_SIDE: dict[str, Literal["long", "short"]] = {"crop": "long", "whole": "short"}


class _Kept(NamedTuple):
    """A collection picture's copies in a sampler run: per framing, the ``pool`` copy the crops
    are cut from and the ``small`` one KID compares with (none when KID is not measured); the
    ``look`` the painter's style vector is read from, its ``aspect`` (width / height) and the
    ``big`` copy the paint stage learns from."""

    pool: dict[str, Tensor]
    small: dict[str, Tensor]
    look: Tensor | None
    aspect: float
    big: Tensor | None


def stage_record(stage: PaintStageConfig) -> dict[str, Any]:
    """What a sampler file says of its paint stage (``{}``: none)."""
    if not stage.steps:
        return {}
    return {"net": PainterConfig().to_dict(), "scale": stage.scale, "band": stage.band}


def _train_stage(
    job: TrainingJob[SamplerTrainConfig],
    config: PaintStageConfig,
    pictures: Sequence[Tensor],
    vgg: VGGEncoder | None,
    _: SamplerState,
) -> dict[str, Tensor] | None:
    """The sampler's second phase: its paint stage (:mod:`~styleforge.train.paint_stage`), with
    its own progress bar and checkpoint; the stage's tensors for the sampler file, or ``None``
    when it was stopped (its checkpoint then resumes it)."""
    checkpoint = job.run_dir / STAGE_CHECKPOINT
    pairs = stage_pairs(pictures, config.scale * job.config.resolution, config.scale)
    start = start_painter([p[:, 3:] for p in pairs], config.scale, config.band)
    bar = tqdm(
        total=config.steps, desc="paint stage", disable=not job.progress, unit="step",
        dynamic_ncols=True, file=sys.stderr,
    )  # fmt: skip
    progress = job.run_dir / STAGE_PROGRESS

    def on_step(state: StageState) -> None:
        bar.update(state.step - bar.n)
        if state.step % 10 == 0 or state.step == config.steps:
            write_json(progress, {"step": state.step, "steps": config.steps})

    try:
        state = train_stage_loop(
            config, pairs, start, job.device, checkpoint, vgg=vgg,
            resume=job.resume and checkpoint.exists(), stop=job.stop, on_step=on_step,
        )  # fmt: skip
    finally:
        bar.close()
    if state.step < config.steps:
        print(
            f"stopped in the paint stage at step {state.step}/{config.steps}; checkpoint saved "
            f"in {checkpoint} (continue with --resume)",
            file=sys.stderr,
        )
        return None
    return {STAGE_PREFIX + k: v for k, v in state.ema.state_dict().items()}


def paint_record(pictures: Sequence[Tensor], size: int) -> dict[str, Any]:
    """What a sampler file needs to paint its images with the painter prior: the mean style
    vector of ``pictures`` ((1,3,H,W) each), the neutral (photo) vector, and the side ``size``
    (px) ``generate`` paints at by default (0: not unless asked); ``{}`` without pictures."""
    if not pictures:
        return {}
    from styleforge.infer import prior

    style = prior.style_vectors([images.tensor_to_pil(p) for p in pictures]).mean(0)
    neutral = prior.neutral_vector()
    return {"style": style.tolist(), "neutral": neutral.tolist(), "size": size}


def _enough(coll: collection.Collection) -> None:
    """Refuse a collection with fewer than :data:`MIN_IMAGES` usable pictures."""
    if len(coll.images) < MIN_IMAGES:
        raise UserError(
            f"{coll.root}: {len(coll.images)} usable image(s); a sampler learns from at least "
            f"{MIN_IMAGES} (fewer can only be copied). To paint photos like one picture, use "
            "`styleforge transfer`"
        )


def describe_sampler(result: RunResult) -> str:
    """One line for the terminal about a finished sampler run."""
    m = result.metrics
    kid = m.get("kid")
    figures = "" if kid is None else f"KID {kid:.3f}, memorization {m['memorization_median']:.2f}"
    return result.line(figures, "sample grids and logs")
