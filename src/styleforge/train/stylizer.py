"""The stylizer (photo -> painted photo): its GAN steps, its training loop and its job.

The generator objective is adversarial (spectral-norm PatchGAN on DiffAugmented crops of the
user's images) + Gram style loss toward *one style image per sample* (not a collection average,
which oversmooths) + content loss toward the input photo + total variation, after a content-only
warm-up that teaches the network to reproduce photos; with ``stability_weight`` > 0 also a
temporal-stability term (:mod:`styleforge.video.stability`) at every step.
:func:`train_stylizer_loop` is the loop (the shared :func:`~styleforge.train.loop.train_gan`
with this model's two phases); :func:`train_stylizer` is the whole job (folders in, model file
out) used by the CLI.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import Tensor

from styleforge import images, sheets
from styleforge.distributed import World
from styleforge.features import VGGEncoder, loss_encoder
from styleforge.infer.model_file import ModelInfo
from styleforge.losses import content_loss, gram_matrix, style_loss, total_variation
from styleforge.losses.functional import GanLoss
from styleforge.metrics.features import EvalSettings, FeatureBank
from styleforge.nets import (
    AnyStylizer,
    AnyStylizerConfig,
    PainterConfig,
    PatchDiscriminator,
    StylizerNet,
    build_stylizer,
)
from styleforge.runtime import at_least_float32, autocast, memory_format, place
from styleforge.train.config import StylizerTrainConfig
from styleforge.train.data import (
    center_square,
    image_grams,
    load_pool,
    random_crops,
    sample_photos,
)
from styleforge.train.job import JobReport, JobRun, RunResult, TrainingJob, run_job
from styleforge.train.loop import GanState, LoopRun, PhaseLoss, Share, frozen, train_steps

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "STYLIZER_COLUMNS",
    "Feedback",
    "StylizerState",
    "describe_stylizer",
    "new_stylizer_state",
    "train_stylizer",
    "train_stylizer_loop",
]

#: Photos restyled in every preview (the first ones of the content set, in name order).
PREVIEW_PHOTOS = 4
#: Fewer style images than this get a note that augmentation carries the small set.
FEW_IMAGES = 10
#: The ``log.csv`` columns (``stab`` stays empty unless the stability term is on).
STYLIZER_COLUMNS = ("step", "d_loss", "content", "style", "adv", "tv", "stab", "lr_scale")
#: Mixed with the config's seed and the step into the seed of the step's stability draw.
_STABILITY_SALT = 0x5EED_57AB


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


class StylizerState(GanState[AnyStylizer, PatchDiscriminator]):
    """Everything that changes during stylizer training; what a checkpoint saves."""

    KIND = "stylizer"


def new_stylizer_state(
    config: StylizerTrainConfig,
    device: torch.device,
    photos: Sequence[Tensor] = (),
    styles: Sequence[Tensor] = (),
    start: Mapping[str, Tensor] | None = None,
) -> StylizerState:
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
    disc = place(PatchDiscriminator(config.disc), device)
    lr = (config.lr_g, config.lr_d)
    return StylizerState.fresh(place(net, device), disc, lr, (0.5, 0.999), config.seed)


def _initial_generator(
    net: AnyStylizerConfig, photos: Sequence[Tensor], styles: Sequence[Tensor]
) -> AnyStylizer:
    if not isinstance(net, PainterConfig):
        return StylizerNet(net)
    from styleforge.infer import prior

    if not styles:
        raise ValueError("fine-tuning the painter prior needs the style images")
    with torch.no_grad():
        style = prior.style_vectors([images.tensor_to_pil(t) for t in styles]).mean(0)
        neutral = prior.neutral_vector([images.tensor_to_pil(t) for t in photos] or None)
    return prior.prior_painter(style, neutral)


class _Inputs(NamedTuple):
    """One step's inputs, this process's n rows: (n,3,S,S) photo and real crops on the device,
    the (n,) style image each sample's Gram targets come from, (n,3,S,S) disliked crops (or
    ``None``), the generator's (n,3,S,S) output for the photos (with its graph) and, with the
    stability term on, its (n,3,S,S) output for the perturbed photos and their (dy, dx) shift
    (else ``None`` and (0, 0))."""

    photo: Tensor
    real: Tensor
    picks: Tensor
    disliked: Tensor | None
    fake: Tensor
    moved_fake: Tensor | None = None
    shift: tuple[int, int] = (0, 0)


def _stability_generator(seed: int, step: int) -> torch.Generator:
    """The CPU generator of step ``step``'s stability perturbation: seeded from the run's seed
    and the step alone, so the term leaves every other draw of the run as it was, and a resumed
    or rolled-back run draws the same perturbations again."""
    mixed = (seed * 1_000_003 + step) ^ _STABILITY_SALT
    return torch.Generator().manual_seed(mixed % 2**63)


@dataclass(frozen=True)
class _StylizerSteps:
    """The stylizer's draw and its two steps over fixed training data (see
    :func:`train_stylizer_loop`) on this process's ``share``; ``generator`` is the share's
    generator as it runs (compiled on a GPU when asked)."""

    config: StylizerTrainConfig
    state: StylizerState
    share: Share
    photos: Sequence[Tensor]
    pool: Sequence[Tensor]  # the style images, then the liked results
    n_styles: int
    feedback: Feedback
    encoder: VGGEncoder
    targets: VGGEncoder  # the no-grad passes' cut of ``encoder`` (see _target_encoder)
    grams: list[Tensor]  # per style layer (len(pool), C, C); empty for crop targets
    generator: Callable[[Tensor], Tensor]
    device: torch.device

    def draw(self, step: int) -> _Inputs:
        """Crops, Gram-target picks and the generator's output for one step."""
        c, rng, fmt = self.config, self.state.data_gen, memory_format(self.device)
        rows = self.share.rows
        weights = self.feedback.style_weights(self.n_styles)
        photo = random_crops(self.photos, c.batch, c.size, rng, keep=rows)
        real = random_crops(self.pool, c.batch, c.size, rng, keep=rows, weights=weights)
        if weights is None:
            picks = torch.randint(self.n_styles, (c.batch,), generator=rng)[rows]
        else:
            picks = torch.multinomial(weights, c.batch, replacement=True, generator=rng)[rows]
        bad = self.feedback.disliked
        disliked = random_crops(bad, c.batch, c.size, rng, keep=rows) if bad else None
        photo = photo.to(self.device, memory_format=fmt)
        real = real.to(self.device, memory_format=fmt)
        if c.stability_weight <= 0:
            with autocast(self.device):
                fake = at_least_float32(self.generator(photo))
            return _Inputs(photo, real, picks, disliked, fake)
        from styleforge.video.stability import perturb

        gen = _stability_generator(c.seed, step)
        moved, shift = perturb(photo, gen, rows=rows, of=c.batch)
        # One pass over both (instance norm: each image alone), so DDP sees one forward.
        with autocast(self.device):
            both = at_least_float32(self.generator(torch.cat([photo, moved])))
        fake, moved_fake = both.split(photo.shape[0])
        return _Inputs(photo, real, picks, disliked, fake, moved_fake, shift)

    def d_loss(self, x: _Inputs, step: int) -> PhaseLoss | None:
        """Real crops vs the generator's output (and the disliked results); none in warm-up."""
        if step < self.config.warmup:
            return None
        augment = self.share.augment
        batches = [augment(x.real), augment(x.fake.detach())]
        if x.disliked is not None:  # what the user disliked counts as fake too
            bad = x.disliked.to(self.device, memory_format=memory_format(self.device))
            batches.append(augment(bad))
        # One pass over all of them (D judges each picture alone), not one per kind.
        with autocast(self.device):
            logits = at_least_float32(self.share.disc(torch.cat(batches)))
        d_real, d_fake = logits[: x.real.shape[0]], logits[x.real.shape[0] :]
        d_loss = GanLoss(self.config.gan_loss).d(d_real, d_fake)
        return PhaseLoss(d_loss, {"d_loss": d_loss.item()})

    def g_loss(self, x: _Inputs, step: int) -> PhaseLoss:
        """Content loss (and the stability term when on); after the warm-up also style,
        adversarial and total variation."""
        c, adversarial = self.config, step >= self.config.warmup
        with torch.no_grad(), autocast(self.device):
            photo_feats = self.targets(x.photo)
            real_feats = self.targets(x.real) if adversarial and not self.grams else {}
        with autocast(self.device):
            feats = self.encoder(x.fake)
        loss = c.content_weight * content_loss(feats[c.content_layer], photo_feats[c.content_layer])
        logs = {"content": loss.item()}
        if x.moved_fake is not None:
            from styleforge.video.stability import stability_loss

            stab = c.stability_weight * stability_loss(x.fake, x.moved_fake, shift=x.shift)
            loss = loss + stab
            logs["stab"] = stab.item()
        if adversarial:
            if self.grams:
                targets = [layer[x.picks.to(self.device)] for layer in self.grams]
            else:
                targets = [gram_matrix(real_feats[n]) for n in c.style_layers]
            s = c.style_weight * style_loss([feats[n] for n in c.style_layers], targets)
            # D is called unwrapped and frozen: only the generator's gradients are averaged.
            with frozen(self.state.disc), autocast(self.device):
                g_logits = at_least_float32(self.state.disc(self.share.augment(x.fake)))
            a = c.adv_weight * GanLoss(c.gan_loss).g(g_logits)
            t = c.tv_weight * total_variation(x.fake)
            loss = loss + s + a + t
            logs |= {"style": s.item(), "adv": a.item(), "tv": t.item()}
        return PhaseLoss(loss, logs)

    def ema_decay(self, step: int) -> float:
        """The config's decay once adversarial; in the warm-up the EMA copies the generator."""
        return self.config.ema_decay if step >= self.config.warmup else 0.0


def train_stylizer_loop(
    config: StylizerTrainConfig,
    photos: Sequence[Tensor],
    styles: Sequence[Tensor],
    device: torch.device,
    checkpoint: Path | None = None,
    *,
    start: Mapping[str, Tensor] | None = None,
    feedback: Feedback | None = None,
    vgg: VGGEncoder | None = None,
    **run: Unpack[LoopRun[StylizerState]],
) -> StylizerState:
    """Train until ``config.steps`` (or ``stop_at``, or a stop request); returns the state.

    ``photos`` and ``styles`` are (1,3,H,W) images in [0,1] with both sides ≥ ``config.size``.
    ``start``: the generator's first weights (see :func:`new_stylizer_state`); ``feedback``: the
    user's liked and disliked results (:class:`Feedback`); ``vgg``: an encoder already loaded
    whose weights the loss network may share. Checkpoints, exact resume, NaN rollback, stop
    requests and torchrun (``config.batch`` is the global batch, split across the processes
    with every random draw made for all of it) are :func:`~styleforge.train.loop.train_gan`'s,
    run as ``run`` (:class:`~styleforge.train.loop.LoopRun`) says.
    """
    state = new_stylizer_state(config, device, photos, styles, start)
    fb = feedback or Feedback()

    def steps_for(share: Share) -> _StylizerSteps:
        encoder = loss_encoder([*config.style_layers, config.content_layer], device, vgg)
        pool = [*styles, *fb.liked]
        generator: Callable[[Tensor], Tensor] = share.generator
        if config.compile and device.type == "cuda":
            generator = torch.compile(share.generator)  # the GPU path only; CPU stays eager
        per_image = config.style_target == "image"
        if per_image:  # Gram targets once; then each step's content target alone
            grams = image_grams(_target_encoder(encoder, config.style_layers, device), pool,
                                config.style_layers, device)  # fmt: skip
            targets = _target_encoder(encoder, [config.content_layer], device)
        else:
            grams, targets = [], _target_encoder(encoder, encoder.layers, device)
        return _StylizerSteps(config, state, share, photos, pool, len(styles), fb, encoder,
                              targets, grams, generator, device)  # fmt: skip

    return train_steps(state, config, device, steps_for, checkpoint, **run)


def _target_encoder(encoder: VGGEncoder, layers: Sequence[str], device: torch.device) -> VGGEncoder:
    """A copy of the loss encoder cut after ``layers``, for the passes without gradients (the
    Gram targets, once; each step's content target, which needs no deeper layer than its
    own). In channels_last on the CPU too: there its forward is about a sixth faster, while a
    backward through it is slower, which is why the loss encoder itself stays contiguous
    (bench/README.md, issue #45)."""
    return place(encoder.cut(layers), device, channels_last=device.type in ("cpu", "cuda"))


class _Photo(NamedTuple):
    """What a job keeps of a content photo: its training-pool copy, its preview square and
    its copy at the evaluation size."""

    pool: Tensor
    square: Tensor
    small: Tensor


def train_stylizer(
    config: StylizerTrainConfig, style_dir: Path, output: Path, *,
    content_dir: Path | None = None, evaluate_result: bool = True, **run: Unpack[JobRun],
) -> RunResult:  # fmt: skip
    """Learn the style of the images in ``style_dir``; write the model to ``output``.

    ``content_dir``: the user's own photos (default: scikit-image's sample photos).
    ``evaluate_result``: the model's style gain and content error on the preview photos.
    ``run`` (:class:`~styleforge.train.job.JobRun`): ``run_dir`` holds previews, logs and
    checkpoints (default ``<output>.run``, see :mod:`styleforge.train.job`); ``resume``
    continues the run in it from its checkpoint. Stopping with Ctrl-C or SIGTERM saves a
    checkpoint and returns with ``stopped_early`` (and no model file); so does setting
    ``stop.requested`` from another thread (how the web app cancels a job).

    Under torchrun (``world``), every process trains on its share of each batch; process 0
    checks the run folder, reads the folders' listing and writes everything.
    """
    job = TrainingJob.open(config, style_dir, output, **run)
    config, short, world = job.config, job.config.pool_side, job.world
    evaluating = evaluate_result and world.is_main
    eval_side = EvalSettings().size if evaluating else None

    def keep_style(t: Tensor) -> tuple[Tensor, Tensor | None]:
        at_eval = images.resize_to(t, eval_side) if eval_side is not None else None
        return images.resize_to(t, short, "short"), at_eval

    styles, kept = load_pool(style_dir, "training", keep_style, job.max_pixels, world)
    if len(styles.images) < FEW_IMAGES and world.is_main:
        print(
            f"note: {len(styles.images)} style images is a small set; augmentation keeps "
            "the discriminator from memorising it, and more images give a richer style",
            file=sys.stderr,
        )
    style_pool = [pool for pool, _ in kept]
    photos = _content_photos(content_dir, short, job.max_pixels, world)
    bank = FeatureBank(device=job.device) if evaluating else None  # the one VGG of the job
    shown = photos[:PREVIEW_PHOTOS]
    preview = torch.cat([p.square for p in shown])
    strip = sheets.collection_strip(style_pool[:24], preview.shape[0] * preview.shape[-1],
                                    height=max(16, preview.shape[-1] // 2))  # fmt: skip

    def metrics(state: StylizerState, _: dict[str, float]) -> dict[str, Any]:
        figures = _final_losses(state.history)
        if bank is not None:
            at_eval = [e for _, e in kept if e is not None]
            figures |= _evaluate(state, bank, at_eval, [p.small for p in shown])
        return figures

    def loop(on_step: Callable[[StylizerState], None] | None) -> StylizerState:
        vgg = bank.encoder if bank is not None else None
        return train_stylizer_loop(config, [p.pool for p in photos], style_pool, job.device,
                                   job.checkpoint, vgg=vgg, **job.loop_run(on_step))  # fmt: skip

    report = JobReport(
        STYLIZER_COLUMNS, STYLIZER_COLUMNS[1:-1],
        lambda state: _save_preview(state, preview, job.run_dir, strip), metrics, ModelInfo,
    )  # fmt: skip
    return run_job(job, styles, loop, report, job.progress)


def _content_photos(
    content_dir: Path | None, short: int, max_pixels: int, world: World
) -> list[_Photo]:
    """The training photos (``content_dir``'s, else the sample photos), each kept as a
    :class:`_Photo`: its pool copy (short side ``short``), a preview square and a 256 px copy."""
    side = min(256, short)

    def keep(t: Tensor) -> _Photo:
        return _Photo(images.resize_to(t, short, "short"), center_square(t, side),
                      images.resize_to(t, 256))  # fmt: skip

    if content_dir is not None:
        return load_pool(content_dir, "training (--content)", keep, max_pixels, world)[1]
    if world.is_main:
        print(
            "note: training on styleforge's few sample photos; pass --content with a folder "
            "of your own photos (20 or more) for a model that suits them better",
            file=sys.stderr,
        )
    return [keep(t) for t in sample_photos().values()]


def _save_preview(state: StylizerState, photos: Tensor, run_dir: Path, strip: Tensor) -> Path:
    """Restyle the fixed preview photos with the EMA generator: a strip of the collection over
    the photo row over the result row."""
    state.ema.eval()
    with torch.no_grad():
        out = state.ema(photos.to(next(state.ema.parameters()).device)).float().cpu()
    rows = [strip, torch.cat(list(photos), -1)[None], torch.cat(list(out), -1)[None]]
    grid = sheets.stack_rows(rows)
    images.save_image(grid, run_dir / "previews" / f"step_{state.step:06d}.png")
    return images.save_image(grid, run_dir / "preview.png")


def _final_losses(history: Sequence[dict[str, float]], last: int = 50) -> dict[str, float]:
    """Mean of each logged loss over the last ``last`` steps."""
    tail = history[-last:]
    keys = sorted({k for h in tail for k in h} - {"step"})
    return {
        f"final_{k}": round(
            sum(h[k] for h in tail if k in h) / max(1, sum(k in h for h in tail)), 4
        )
        for k in keys
    }


def _evaluate(
    state: StylizerState, bank: FeatureBank, styles: Sequence[Tensor], photos: Sequence[Tensor]
) -> dict[str, Any]:
    """Style gain and content error of the EMA generator on ``photos`` ((1,3,H,W) at the
    evaluation size) against ``styles``, in memory, with ``bank``'s encoder."""
    from styleforge.metrics.evaluate import evaluate_images

    state.ema.eval()
    with torch.no_grad():
        results = [state.ema(p.to(bank.device)).float().cpu() for p in photos]
    names = [f"photo_{i}" for i in range(len(photos))]
    ev = evaluate_images(bank, styles, results, photos, names)
    keys = ("mean_style_gain", "mean_content_error", "mean_ssim", "kid")
    return {k: round(float(ev.summary[k]), 4) for k in keys if ev.summary.get(k) is not None}


def describe_stylizer(result: RunResult) -> str:
    """One line for the terminal about a finished stylizer run."""
    m = result.metrics
    gain = m.get("mean_style_gain")
    figures = "" if gain is None else f"style gain {gain:.2f}, SSIM {m.get('mean_ssim', 0):.2f}"
    return result.line(figures, "previews and logs")
